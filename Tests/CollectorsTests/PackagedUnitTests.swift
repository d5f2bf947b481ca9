import Foundation
import Testing
import VigilCore

/// The Debian package `packaging/build-deb.sh` makes (from the test's binary): what it holds, and its
/// unit, configuration and binary run by a real systemd (booted in a private namespace) with every
/// sandboxing directive it ships: no collector may fail inside the sandbox that succeeds outside it.
@Suite(.serialized) struct PackagedUnitTests {
    @Test func thePackageHoldsTheBinaryTheUnitAndTheConfiguration() throws {
        let package = try BuiltPackage.shared.get()
        func field(_ name: String) throws -> String {
            try run("/usr/bin/dpkg-deb", ["--field", package.file, name]).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
        }
        #expect(try field("Package") == "vigil")
        let version = try run(package.root + "/usr/bin/vigil", ["--version"])
        #expect(version.contains("version \(try field("Version"))"))
        let depends = try field("Depends")
        for library in ["libsystemd0", "libisal2", "libyaml-0-2", "libstdc++6"] {
            #expect(depends.contains(library), "Depends: \(depends)")
        }
        for (packaged, source) in [
            ("lib/systemd/system/vigil.service", "packaging/vigil.service"),
            ("etc/vigil/vigil.yml", "packaging/vigil.yml"),
        ] {
            #expect(
                FileManager.default.contentsEqual(
                    atPath: package.root + "/" + packaged,
                    andPath: NamespacedSystemd.packageRoot + "/" + source
                ),
                "\(packaged)"
            )
        }
        let control = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: control) }
        try run("/usr/bin/dpkg-deb", ["--control", package.file, control])
        #expect(try String(contentsOfFile: control + "/conffiles", encoding: .utf8) == "/etc/vigil/vigil.yml\n")
        for script in ["postinst", "prerm", "postrm"] {
            #expect(throws: Never.self, "\(script)") { try run("/bin/sh", ["-n", control + "/" + script]) }
        }
    }

    /// dpkg installs and purges the package in an overlay of this machine's root (in a mount namespace
    /// of its own, so the machine is left as it was): the user is made, the configuration checks out.
    @Test(.enabled(if: NamespacedSystemd.isSupported, "needs root and unshare"))
    func dpkgInstallsAndPurgesThePackage() throws {
        let package = try BuiltPackage.shared.get()
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = try run(
            "/usr/bin/unshare",
            [
                "--mount", "--propagation", "private", "sh", "-euc",
                """
                # The overlay's upper layer on a tmpfs, whatever file system /tmp is on.
                mount -t tmpfs tmpfs $0
                mkdir $0/upper $0/work $0/root
                mount -t overlay overlay -o lowerdir=/,upperdir=$0/upper,workdir=$0/work $0/root
                mount --bind /proc $0/root/proc
                mount --bind /dev $0/root/dev
                cp "$1" $0/root/tmp/vigil.deb
                chroot $0/root sh -euc '
                    dpkg -i /tmp/vigil.deb >/dev/null
                    echo "user: $(getent passwd vigil | cut -d: -f1,6,7)"
                    echo "config: $(vigil check-config /etc/vigil/vigil.yml)"
                    dpkg --purge vigil >/dev/null
                    for path in /usr/bin/vigil /lib/systemd/system/vigil.service /etc/vigil; do
                        [ -e $path ] && echo "left: $path"
                    done
                    true'
                """,
                directory, package.file,
            ]
        )
        #expect(output.contains("user: vigil:/var/lib/vigil:/usr/sbin/nologin"), "\(output)")
        #expect(output.contains("config: /etc/vigil/vigil.yml: OK"), "\(output)")
        #expect(!output.contains("left:"), "\(output)")
    }

    @Test(.enabled(if: NamespacedSystemd.isSupported, "needs root, unshare, nsenter, systemd and dbus"))
    func theSandboxCostsNoCollector() async throws {
        let package = try BuiltPackage.shared.get()
        let (insidePort, outsidePort) = (19590, 19591)
        let systemd = try await blocking {
            try NamespacedSystemd(
                units: ["vp-test.target": "[Unit]\nDefaultDependencies=no\n"],
                target: "vp-test.target"
            )
        }
        defer { systemd.stop() }
        let inside = try await blocking { () throws -> [String: Double] in
            // The package's files go to /run inside, where the unit can reach them (PrivateTmp= hides /tmp).
            let run = "/proc/\(systemd.pid)/root/run"
            try FileManager.default.copyItem(atPath: package.root + "/usr/bin/vigil", toPath: run + "/vigil")
            try FileManager.default.copyItem(atPath: package.root + "/etc/vigil/vigil.yml", toPath: run + "/vigil.yml")
            let unit = try testableUnit(
                String(contentsOfFile: package.root + "/lib/systemd/system/vigil.service", encoding: .utf8),
                port: insidePort
            )
            try unit.write(toFile: run + "/systemd/system/vigil.service", atomically: true, encoding: .utf8)
            try systemd.run(["systemctl", "daemon-reload"])
            try systemd.run(["systemctl", "start", "vigil.service"])
            do {
                try systemd.waitUntil(timeout: .seconds(30), "the packaged vigil.service listens") {
                    (try? httpGet(port: insidePort, path: "/")) != nil
                }
            } catch {
                let state = try? systemd.show("vigil.service", ["ActiveState", "Result", "ExecMainStatus"])
                let log = (try? String(contentsOfFile: run + "/vigil.log", encoding: .utf8)) ?? ""
                throw HarnessError("\(error): vigil.service \(state ?? [:]), its output: \(log)")
            }
            return try collectorSuccess(port: insidePort)
        }

        let outside = try await blocking { () throws -> [String: Double] in
            let vigil = Process()
            vigil.executableURL = URL(fileURLWithPath: package.root + "/usr/bin/vigil")
            vigil.arguments = ["--web.listen-address=127.0.0.1:\(outsidePort)"]
            vigil.standardOutput = FileHandle.nullDevice
            vigil.standardError = FileHandle.nullDevice
            try vigil.run()
            defer {
                vigil.terminate()
                vigil.waitUntilExit()
            }
            try systemd.waitUntil(timeout: .seconds(30), "vigil listens outside") {
                (try? httpGet(port: outsidePort, path: "/")) != nil
            }
            return try collectorSuccess(port: outsidePort)
        }

        #expect(inside["timex"] == 1, "timex needs adjtimex(2), which ProtectClock= denies even to read")
        #expect(inside.keys.sorted() == outside.keys.sorted())
        let lost = outside.filter { $0.value == 1 && inside[$0.key] != 1 }.keys.sorted()
        #expect(lost == [], "collectors that fail only in the packaged unit's sandbox")
    }
}

/// The package built once per test run from the test's binary, and its files extracted, in one directory
/// that the next run replaces (50 MB: not one more per run).
private struct BuiltPackage: Sendable {
    let file: String
    /// Where its files were extracted (`usr/bin/vigil`, `etc/vigil/vigil.yml`, …).
    let root: String

    static let shared = Result { try BuiltPackage() }

    private init() throws {
        let directory = "/tmp/vigil-package-test"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let built = try run(
            "/bin/sh",
            [NamespacedSystemd.packageRoot + "/packaging/build-deb.sh", NamespacedSystemd.vigilBinary, directory]
        )
        self.file = built.trimmingCharacters(in: .whitespacesAndNewlines)
        self.root = directory + "/root"
        try run("/usr/bin/dpkg-deb", ["--extract", self.file, self.root])
    }
}

/// The packaged unit as the test's systemd can run it: the package's binary and configuration (copied to
/// /run), listening on `port` (the flag wins over the file), as `nobody` (the host has no `vigil` user),
/// without the dependencies and the state directory that would reach outside the namespace (the host's
/// network-online units, /var/lib on its disk), its output in /run/vigil.log. Every sandboxing directive
/// stays as shipped.
private func testableUnit(_ shipped: String, port: Int) throws -> String {
    var lines: [String] = []
    for line in shipped.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
        switch line.prefix(while: { $0 != "=" }) {
        case "Wants", "After", "StateDirectory": continue
        case "ExecStart":
            lines.append("ExecStart=/run/vigil --config.file=/run/vigil.yml --web.listen-address=127.0.0.1:\(port)")
        case "User": lines.append("User=nobody")
        case "Group": lines.append("Group=nogroup")
        case "[Unit]": lines += [line, "DefaultDependencies=no"]
        case "[Service]": lines += [line, "StandardOutput=append:/run/vigil.log", "StandardError=inherit"]
        default: lines.append(line)
        }
    }
    return lines.joined(separator: "\n")
}

/// `node_scrape_collector_success` of every collector, by name.
private func collectorSuccess(port: Int) throws -> [String: Double] {
    let families = try parseExposition(try httpGet(port: port, path: "/metrics").body)
    let samples = families.first { $0.name == "node_scrape_collector_success" }?.samples ?? []
    return Dictionary(uniqueKeysWithValues: samples.map { ($0[label: "collector"] ?? "", $0.value) })
}
