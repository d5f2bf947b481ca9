import Testing
import VigilCore

@testable import Collectors

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite struct OSReleaseTests {
    @Test func matchesNodeExporterOnDebianAndFedora() throws {
        expectSameFamilies(
            try collect(OSReleaseCollector.descriptor, roots: fixtureRoots("debian12")).families,
            try golden("debian12-os")
        )
        let fedora = try collect(OSReleaseCollector.descriptor, roots: fixtureRoots("os-release-fedora"))
        // node_exporter 1.12 adds the end of support (SUPPORT_END=2025-05-13); 1.5.0 did not have it.
        expectSameFamilies(
            fedora.families.dropping(["node_os_support_end_timestamp_seconds"]),
            try golden("os-release-fedora")
        )
        #expect(fedora.value("node_os_support_end_timestamp_seconds") == 1_747_094_400)
    }

    @Test func prefersEtcAndReadsMajorMinor() throws {
        let ubuntu = try collect(OSReleaseCollector.descriptor, roots: fixtureRoots("os-release-ubuntu"))
        #expect(ubuntu.value("node_os_info", ["id": "ubuntu", "id_like": "debian", "version_id": "22.04"]) == 1)
        #expect(ubuntu.value("node_os_version", ["id": "ubuntu", "id_like": "debian", "name": "Ubuntu"]) == 22.04)
        #expect(ubuntu[family: "node_os_support_end_timestamp_seconds"] == nil)
    }

    @Test func fallsBackToUsrLibAndParsesShellQuoting() throws {
        let odd = try collect(OSReleaseCollector.descriptor, roots: fixtureRoots("os-release-odd"))
        let info = try #require(odd[family: "node_os_info"]?.samples.first)
        #expect(info[label: "name"] == "Odd Linux")
        #expect(info[label: "id"] == "oddlinux")
        #expect(info[label: "id_like"] == "rhel fedora")
        #expect(info[label: "pretty_name"] == "Odd \"Linux\" $HOME `3000`")
        #expect(info[label: "version"] == "3.18.4 (Blue \\ Moon)")
        #expect(info[label: "version_codename"] == "")
        #expect(info[label: "build_id"] == "rolling")
        #expect(info[label: "image_id"] == "image-one")
        #expect(info[label: "image_version"] == "1.2")
        // The unterminated quote costs VARIANT only.
        #expect(info[label: "variant"] == "")
        #expect(info[label: "variant_id"] == "server")
        #expect(odd.value("node_os_version") == 3.18)
        #expect(odd.value("node_os_support_end_timestamp_seconds") == 1_940_544_000)
        #expect(odd.failures.isEmpty)
    }

    @Test func noFileIsNoData() throws {
        expectNoData(OSReleaseCollector.descriptor, roots: fixtureRoots("hwmon-desktop"))
    }

    @Test func versionAndSupportEnd() {
        func version(_ id: String) -> Double? { OSRelease(fields: ["VERSION_ID": id]).majorMinorVersion }
        #expect(version("12") == 12)
        #expect(version("22.04") == 22.04)
        #expect(version("3.18.4") == 3.18)
        #expect(version("2023.") == 2023)
        #expect(version("rolling") == nil)
        #expect(version("") == nil)
        #expect(parseSupportEnd("1970-01-01") == 0)
        #expect(parseSupportEnd("2024-02-29") == 1_709_164_800)
        #expect(parseSupportEnd("2023-02-29") == nil)
        #expect(parseSupportEnd("2025-5-13") == nil)
        #expect(parseSupportEnd("2025-13-01") == nil)
        #expect(parseSupportEnd("soon") == nil)
    }

    @Test func anInvalidSupportEndCostsThatSeriesOnly() throws {
        let directory = try TemporaryTree(files: ["etc/os-release": "ID=x\nVERSION_ID=1\nSUPPORT_END=someday\n"])
        let collected = try collect(OSReleaseCollector.descriptor, roots: PathRoots(rootfs: directory.path))
        #expect(collected.value("node_os_info", ["id": "x"]) == 1)
        #expect(collected[family: "node_os_support_end_timestamp_seconds"] == nil)
        #expect(collected.failures.count == 1)
    }

    @Test func rereadsTheFileOnlyWhenItsModificationTimeChanges() throws {
        let directory = try TemporaryTree(files: ["etc/os-release": "ID=first\n"])
        let roots = PathRoots(rootfs: directory.path)
        let collector = try makeCollector(OSReleaseCollector.descriptor, roots: roots)
        #expect(try collect(collector, roots: roots).value("node_os_info", ["id": "first"]) == 1)
        // Same modification time: the cached content is served (no read, no parse).
        let before = directory.modificationTime("etc/os-release")
        try directory.write("etc/os-release", "ID=other\n")
        directory.setModificationTime("etc/os-release", before)
        #expect(try collect(collector, roots: roots).value("node_os_info", ["id": "first"]) == 1)
        directory.setModificationTime("etc/os-release", timespec(tv_sec: before.tv_sec + 10, tv_nsec: 0))
        #expect(try collect(collector, roots: roots).value("node_os_info", ["id": "other"]) == 1)
    }

    @Test func parserSkipsWhatIsNotAnAssignment() {
        let fields = parseOSRelease(
            ArraySlice(
                """
                # comment
                A=1
                =novalue
                B
                C="unterminated
                D='single \\ kept'
                E="tab\\tand\\nnewline" # comment
                export F = spaced
                G=x#not-a-comment-start
                H="\\q"

                """.utf8
            )
        )
        #expect(
            fields == [
                "A": "1", "D": "single \\ kept", "E": "tab\tand\nnewline", "F": "spaced", "G": "x", "H": "\\q",
            ]
        )
    }
}

/// A directory under /tmp with some files, removed when the value goes away.
final class TemporaryTree {
    let path: String

    init(files: [String: String]) throws {
        self.path = "/tmp/vigil-sys-test-" + UUID().uuidString
        for (name, content) in files { try self.write(name, content) }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: self.path)
    }

    /// Writes a file, creating its directories.
    func write(_ name: String, _ content: String) throws {
        let path = self.path + "/" + name
        try FileManager.default.createDirectory(
            atPath: String(path[..<path.lastIndex(of: "/")!]),
            withIntermediateDirectories: true
        )
        try content.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// The exact modification time of a file.
    func modificationTime(_ name: String) -> timespec {
        var info = stat()
        stat(self.path + "/" + name, &info)
        return info.st_mtim
    }

    /// Sets a file's modification (and access) time.
    func setModificationTime(_ name: String, _ time: timespec) {
        var times = [time, time]
        utimensat(AT_FDCWD, self.path + "/" + name, &times, 0)
    }
}
