import Foundation
import Testing
import VigilCore

@testable import Collectors

@Suite struct MountinfoTests {
    @Test func parsesEveryLineOfARecordedHost() throws {
        let bytes = try FileReader().read(fixturesDirectory + "/debian12/proc/1/mountinfo")
        let mounts = parseMountinfo(bytes)
        #expect(mounts.count == bytes.lines.filter { !$0.isEmpty }.count)
        let root = try #require(mounts.first { $0.mountPoint == "/" })
        #expect(
            root
                == MountinfoEntry(
                    mountID: 27,
                    parentID: 1,
                    major: 254,
                    minor: 0,
                    root: "/",
                    mountPoint: "/",
                    mountOptions: "rw,relatime",
                    fsType: "ext4",
                    source: "/dev/vda",
                    superOptions: "rw,discard,resv_strict,resuid=65534,resgid=65534"
                )
        )
        #expect(!root.isReadOnly)
        #expect(mounts.first { $0.fsType == "tmpfs" && $0.mountOptions.hasPrefix("ro,") }?.isReadOnly == true)
    }

    @Test func decodesEscapesAndOptionalFieldsAndSkipsBrokenLines() throws {
        let mounts = parseMountinfo(try FileReader().read(fixturesDirectory + "/mountinfo-odd/proc/self/mountinfo"))
        let points = mounts.map(\.mountPoint)
        // "garbage …", "38 1 8:4 / /short" and "x:y" are not mounts; all other lines are.
        #expect(mounts.count == 18)
        #expect(!points.contains("/short") && !points.contains("/bad-major-minor"))
        #expect(points.contains("/mnt/my disk"))
        #expect(points.contains("/mnt/back\\slash"))
        let nfs = try #require(mounts.first { $0.fsType == "nfs4" })
        #expect(nfs.mountPoint == "/srv/nfs\ttab")
        #expect(nfs.source == "server:/export dir")
        #expect(nfs.superOptions.hasPrefix("rw,vers=4.2"))
        let bind = try #require(mounts.first { $0.mountPoint == "/var/lib/data" })
        #expect(bind.root == "/data" && bind.major == 253 && bind.minor == 0)
        #expect(mounts.first { $0.mountPoint == "/empty-source" }?.source == "")
    }

    @Test func readOnlyFromMountOrSuperblockOptionsOrEmergencyRO() throws {
        let mounts = parseMountinfo(try FileReader().read(fixturesDirectory + "/mountinfo-odd/proc/self/mountinfo"))
        let readOnly = Set(mounts.filter(\.isReadOnly).map(\.mountPoint))
        #expect(readOnly == ["/mnt/my disk", "/run/credentials/systemd-sysusers.service", "/var/log", "/media/cdrom"])
        // "errors=remount-ro" or "ro" inside another option does not count.
        let entry = MountinfoEntry(
            mountID: 1,
            parentID: 0,
            major: 8,
            minor: 1,
            root: "/",
            mountPoint: "/",
            mountOptions: "rw,relatime",
            fsType: "ext4",
            source: "/dev/sda1",
            superOptions: "rw,errors=remount-ro,roflag"
        )
        #expect(!entry.isReadOnly)
    }

    @Test func unescapesOnlyOctalTriples() {
        #expect(unescapeOctal(ArraySlice(#"/a\040b\011c\012d\134e"#.utf8)) == "/a b\tc\nd\\e")
        #expect(unescapeOctal(ArraySlice(#"/keep\x\04\999\"#.utf8)) == #"/keep\x\04\999\"#)
        #expect(unescapeOctal(ArraySlice("/plain".utf8)) == "/plain")
    }

    @Test func neverCrashesOnGarbage() {
        let garbage: [String] = [
            "", "\n\n", "1 2 3 4 5 6 7 8 9 10", "a b c:d / / rw - ext4 x rw", "1 0 1:2 / / rw -",
            "1 0 99999999999999999999:1 / / rw - ext4 /dev/x rw", "1 0 1:2 / / rw - ext4 /dev/x",
        ]
        for text in garbage {
            #expect(parseMountinfo(ArraySlice(text.utf8)).isEmpty, "\(text)")
        }
    }

    /// A real mount table: a child in its own mount namespace mounts a tmpfs when told to, and the
    /// kernel reports it on the open mountinfo file, which is otherwise quiet.
    @Test func theKernelReportsMountsOnTheOpenFile() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        child.arguments = [
            "--mount", "--propagation", "private", "sh", "-c",
            "read line; mount -t tmpfs vigil-sys-test /mnt; exec sleep 30",
        ]
        let input = Pipe()
        child.standardInput = input
        try child.run()
        // SIGKILL: the test runner's threads block SIGTERM, and the child inherits that mask.
        defer {
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
        }
        // Wait until the child lives in its own mount namespace.
        let ours = try FileSystem.readLink("/proc/self/ns/mnt")
        let started = ContinuousClock.now + .seconds(5)
        while (try? FileSystem.readLink("/proc/\(child.processIdentifier)/ns/mnt")) == ours
            && ContinuousClock.now < started
        {
            usleep(5000)
        }
        let file = KeptOpenFile("/proc/\(child.processIdentifier)/mountinfo")
        let reader = FileReader()
        #expect(file.hasChanged())  // not open yet
        #expect(!parseMountinfo(try reader.read(file)).contains { $0.source == "vigil-sys-test" })
        #expect(!file.hasChanged())
        try input.fileHandleForWriting.write(contentsOf: Data("mount\n".utf8))
        let giveUp = ContinuousClock.now + .seconds(5)
        while !file.hasChanged() && ContinuousClock.now < giveUp { usleep(10_000) }
        #expect(
            parseMountinfo(try reader.read(file)).contains { $0.source == "vigil-sys-test" && $0.mountPoint == "/mnt" }
        )
        #expect(!file.hasChanged())
    }

    @Test func aTableFromARegularFileIsReadEveryTime() throws {
        let tree = try TemporaryTree(files: ["proc/self/mountinfo": "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"])
        let table = MountTable.forProcfs(PathRoots(procfs: tree.path + "/proc"))
        #expect(try table.mounts(reader: FileReader()).map(\.source) == ["/dev/sda1"])
        try tree.write("proc/self/mountinfo", "1 0 8:2 / / rw - ext4 /dev/sdb1 rw\n")
        #expect(try table.mounts(reader: FileReader()).map(\.source) == ["/dev/sdb1"])
    }

    @Test func isReadOncePerScrapeAndFallsBackToSelf() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let context = scrapeContext(roots)
        let first = try context.mountinfo()
        #expect(first.count == 18)
        // The second caller gets the value of the first (same scrape), not a new read.
        #expect(context.shared.value("mountinfo") { [MountinfoEntry]() } == first)
    }
}
