import Foundation
import Testing
import VigilCore

@testable import Collectors

@Suite struct NetClassTests {
    @Test func collectsEveryInterfaceOfARecordedHost() throws {
        let collected = try collect(NetClassCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.failures.isEmpty)
        let devices = try FileSystem.sortedEntriesIfPresent(of: fixturesDirectory + "/debian12/sys/class/net")
        #expect(devices.count == 4)
        #expect(collected[family: "node_network_up"]?.samples.count == devices.count)
        for device in devices {
            let attribute = { (name: String) in try? fixtureText("debian12/sys/class/net/\(device)/\(name)") }
            let text = { (name: String) in attribute(name)?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "" }
            let number = { (name: String) -> Int64? in
                guard let value = attribute(name)?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
                return value.hasPrefix("0x") ? Int64(value.dropFirst(2), radix: 16) : Int64(value)
            }
            #expect(collected.value("node_network_up", ["device": device]) == (text("operstate") == "up" ? 1 : 0))
            let adminState = number("flags").map { $0 & 1 == 1 ? "up" : "down" } ?? "unknown"
            let info: [String: String] = [
                "device": device, "address": text("address"), "adminstate": adminState, "broadcast": text("broadcast"),
                "duplex": text("duplex"), "ifalias": text("ifalias"), "operstate": text("operstate"),
            ]
            #expect(collected.value("node_network_info", info) == 1)
            for property in netClassProperties {
                var expected = number(property.file).map(Double.init)
                if property.file == "speed" { expected = expected.map { $0 * 1_000_000 / 8 } }
                #expect(
                    collected.value(property.family.nameString, ["device": device]) == expected,
                    "\(property.file) of \(device)"
                )
            }
        }
        #expect(collected.value("node_network_speed_bytes", ["device": "eth0"]) == -125_000)
        #expect(collected[family: "node_network_carrier_changes_total"]?.type == "counter")
        #expect(collected[family: "node_network_mtu_bytes"]?.type == "gauge")
    }

    @Test func matchesNodeExporter() throws {
        let collected = try collect(NetClassCollector.descriptor, roots: fixtureRoots("debian12"))
        // 1.12.1 (the reference) labels node_network_info with `adminstate` too; 1.5.0 did not.
        #expect(collected[family: "node_network_info"]?.samples.allSatisfy { $0[label: "adminstate"] != nil } == true)
        expectSameFamilies(collected.families.removingLabel("adminstate"), try golden("debian12-netclass"))
    }

    @Test func unreadableAttributesCostTheirOwnSamples() throws {
        let collected = try collect(NetClassCollector.descriptor, roots: fixtureRoots("net-odd"))
        // eth9's speed cannot be read (a directory) and its tx_queue_len is not a number.
        #expect(collected.failures.count == 2)
        #expect(collected.failures.contains { $0.contains("eth9/speed") })
        #expect(collected.failures.contains { $0.contains("eth9/tx_queue_len") })
        #expect(collected.value("node_network_speed_bytes", ["device": "eth9"]) == nil)
        #expect(collected.value("node_network_transmit_queue_length", ["device": "eth9"]) == nil)
        #expect(collected.value("node_network_mtu_bytes", ["device": "eth9"]) == 9000)
        #expect(collected.value("node_network_device_id", ["device": "eth9"]) == 0x1f)
        #expect(collected.value("node_network_flags", ["device": "eth9"]) == 0x1002)
        let alias = try fixtureText("net-odd/sys/class/net/eth9/ifalias").trimmingCharacters(in: .newlines)
        #expect(
            collected.value(
                "node_network_info",
                ["device": "eth9", "adminstate": "down", "ifalias": alias, "duplex": "full"]
            )
                == 1
        )
        // veth0 has hardly any attributes: no flags means an unknown admin state.
        #expect(collected.value("node_network_info", ["device": "veth0", "adminstate": "unknown", "address": ""]) == 1)
        #expect(collected.value("node_network_speed_bytes", ["device": "veth0"]) == 1.25e9)
        #expect(collected.value("node_network_up", ["device": "veth0"]) == 1)
        // wan0's driver does not know its speed.
        #expect(collected.value("node_network_speed_bytes", ["device": "wan0"]) == -125_000)
        #expect(collected.value("node_network_up", ["device": "wan0"]) == 0)
        // bonding_masters is a file in class/net, not an interface.
        #expect(collected[family: "node_network_up"]?.samples.map { $0[label: "device"] } == ["eth9", "veth0", "wan0"])
    }

    @Test func ignoresDevicesAndInvalidSpeedsWhenAsked() throws {
        let collected = try collect(
            NetClassCollector.descriptor,
            roots: fixtureRoots("net-odd"),
            settings: [
                "collector.netclass.ignored-devices": .regex("^veth"),
                "collector.netclass.ignore-invalid-speed": .bool(true),
            ]
        )
        #expect(collected[family: "node_network_up"]?.samples.map { $0[label: "device"] } == ["eth9", "wan0"])
        #expect(collected[family: "node_network_speed_bytes"] == nil)
    }

    /// On a real sysfs the kernel answers EINVAL for the speed of `lo`: not an error, just no sample.
    @Test(.enabled(if: kernelRefusesLoopbackSpeed())) func aRefusedAttributeIsNoFailure() throws {
        let collected = try collect(NetClassCollector.descriptor, roots: PathRoots())
        #expect(collected.failures.isEmpty)
        #expect(collected.value("node_network_up", ["device": "lo"]) != nil)
        #expect(collected.value("node_network_mtu_bytes", ["device": "lo"]) != nil)
        #expect(collected.value("node_network_speed_bytes", ["device": "lo"]) == nil)
    }

    @Test func keepsFilesOpenAndForgetsInterfacesThatGo() throws {
        let root = "/tmp/vigil-net-netclass-\(getpid())"
        let net = root + "/sys/class/net"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: net + "/eth0", withIntermediateDirectories: true)
        try "up\n".write(toFile: net + "/eth0/operstate", atomically: false, encoding: .utf8)
        try overwrite(net + "/eth0/mtu", with: "1500\n")
        let roots = PathRoots(procfs: root + "/proc", sysfs: root + "/sys")
        let collector = try makeCollector(NetClassCollector.descriptor, roots: roots)
        #expect(try collect(collector, roots: roots).value("node_network_mtu_bytes", ["device": "eth0"]) == 1500)

        // A kept-open file shows what the kernel (here: a writer) says now.
        try overwrite(net + "/eth0/mtu", with: "9000\n")
        #expect(try collect(collector, roots: roots).value("node_network_mtu_bytes", ["device": "eth0"]) == 9000)

        // The interface goes away, and one of the same name comes: its files are opened afresh.
        try FileManager.default.moveItem(atPath: net + "/eth0", toPath: root + "/old-eth0")
        #expect(try collect(collector, roots: roots)[family: "node_network_up"] == nil)
        try FileManager.default.createDirectory(atPath: net + "/eth0", withIntermediateDirectories: true)
        try overwrite(net + "/eth0/mtu", with: "1280\n")
        #expect(try collect(collector, roots: roots).value("node_network_mtu_bytes", ["device": "eth0"]) == 1280)
    }

    /// On a real kernel: an interface whose files are kept open is removed and one of the same name
    /// created; the old files answer ENODEV and the new interface's are read. In a network namespace
    /// of its own (with its own sysfs mount), so the host's interfaces are untouched.
    @Test(.enabled(if: canCreateNetworkNamespaces())) func readsAnInterfaceCreatedAgainNotTheRemovedOne() throws {
        let namespace = Process()
        namespace.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        namespace.arguments = ["--net", "sleep", "600"]
        try namespace.run()
        // SIGKILL: the test runner's threads block SIGTERM, and the child inherits that mask.
        defer {
            kill(namespace.processIdentifier, SIGKILL)
            namespace.waitUntilExit()
        }
        let ip = { (arguments: String) throws in
            try run("/usr/bin/nsenter", ["--net=/proc/\(namespace.processIdentifier)/ns/net", "ip"] + words(arguments))
        }
        // The namespace exists once unshare has exec'd sleep.
        while (try? FileSystem.readLink("/proc/\(namespace.processIdentifier)/exe"))?.hasSuffix("sleep") != true {
            usleep(10_000)
        }
        try ip("link add vigil0 type ifb")
        try ip("link set vigil0 mtu 1400")
        let sysfs = "/tmp/vigil-net-sysfs-\(getpid())"
        try FileManager.default.createDirectory(atPath: sysfs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: sysfs) }
        // sysfs shows the network namespace of whoever mounts it.
        try run(
            "/usr/bin/nsenter",
            ["--net=/proc/\(namespace.processIdentifier)/ns/net", "mount", "-t", "sysfs", "sysfs", sysfs]
        )
        defer { try? run("/usr/bin/umount", [sysfs]) }

        let roots = PathRoots(sysfs: sysfs)
        let collector = try makeCollector(NetClassCollector.descriptor, roots: roots)
        let before = try collect(collector, roots: roots)
        #expect(before.value("node_network_mtu_bytes", ["device": "vigil0"]) == 1400)
        try ip("link del vigil0")
        try ip("link add vigil0 type ifb")
        try ip("link set vigil0 mtu 1280")
        let after = try collect(collector, roots: roots)
        #expect(after.failures.isEmpty)
        #expect(after.value("node_network_mtu_bytes", ["device": "vigil0"]) == 1280)
        #expect(
            after.value("node_network_iface_id", ["device": "vigil0"])
                != before.value("node_network_iface_id", ["device": "vigil0"])
        )
    }

    @Test func parsesDecimalAndHexadecimalNumbers() {
        #expect(parseNetClassNumber(ArraySlice("1500".utf8)) == 1500)
        #expect(parseNetClassNumber(ArraySlice("-1".utf8)) == -1)
        #expect(parseNetClassNumber(ArraySlice("0x1003".utf8)) == 4099)
        #expect(parseNetClassNumber(ArraySlice("0x0".utf8)) == 0)
        #expect(parseNetClassNumber(ArraySlice("0x".utf8)) == nil)
        #expect(parseNetClassNumber(ArraySlice("0xffffffffffffffff".utf8)) == nil)
        #expect(parseNetClassNumber(ArraySlice("up".utf8)) == nil)
        #expect(parseNetClassNumber([]) == nil)
    }
}

/// Whether reading `/sys/class/net/lo/speed` fails with EINVAL on this machine.
private func kernelRefusesLoopbackSpeed() -> Bool {
    do {
        _ = try FileReader().readAttribute("/sys/class/net/lo/speed")
        return false
    } catch {
        return error.errno == EINVAL
    }
}

/// Whether this test may create network namespaces and mount sysfs (root, with the tools).
private func canCreateNetworkNamespaces() -> Bool {
    getuid() == 0
        && ["/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/umount", "/usr/sbin/ip"].allSatisfy(FileSystem.exists)
}

/// Runs a command to its end; throws when it fails.
private func run(_ executable: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CollectorError.failed(
            "\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)"
        )
    }
}

/// Replaces a file's content in place (same inode), as the kernel changes an attribute.
private func overwrite(_ path: String, with text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw FileError(path: path, errno: errno, operation: "open") }
    defer { close(fd) }
    let written = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    guard written == text.utf8.count else { throw FileError(path: path, errno: errno, operation: "write") }
}
