import Foundation
import Synchronization
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

    /// A kept interface's `uevent` tells whether its files are still those of the name they are kept
    /// under; where there is none (recorded trees), they count as such.
    @Test func keptFilesAreOfTheInterfaceTheirUeventNames() throws {
        let tree = try TemporaryTree(files: [
            "eth0/mtu": "1500\n", "eth0/uevent": "DEVTYPE=vlan\nINTERFACE=eth0\nIFINDEX=2\n", "eth1/mtu": "1500\n",
        ])
        let context = scrapeContext(PathRoots())
        func files(_ name: String) throws -> KeptOpenAttributes {
            try KeptOpenAttributes(["mtu", "uevent"], in: OpenDirectory(tree.path + "/" + name))
        }
        #expect(filesAreNamed("eth0", try files("eth0"), uevent: 1, context: context))
        #expect(!filesAreNamed("eth2", try files("eth0"), uevent: 1, context: context))
        #expect(filesAreNamed("eth1", try files("eth1"), uevent: 1, context: context))
    }

    /// On a real kernel: an interface whose files are kept open is removed and one of the same name
    /// created; the old files answer ENODEV and the new interface's are read. In a network namespace
    /// of its own (with its own sysfs mount), so the host's interfaces are untouched.
    @Test(.enabled(if: canCreateNetworkNamespaces())) func readsAnInterfaceCreatedAgainNotTheRemovedOne() throws {
        let network = try PrivateNetwork()
        try network.ip("link add vigil0 type ifb")
        try network.ip("link set vigil0 mtu 1400")
        let roots = PathRoots(sysfs: try network.mountSysfs())
        let collector = try makeCollector(NetClassCollector.descriptor, roots: roots)
        let before = try collect(collector, roots: roots)
        #expect(before.value("node_network_mtu_bytes", ["device": "vigil0"]) == 1400)
        try network.ip("link del vigil0")
        try network.ip("link add vigil0 type ifb")
        try network.ip("link set vigil0 mtu 1280")
        let after = try collect(collector, roots: roots)
        #expect(after.failures.isEmpty)
        #expect(after.value("node_network_mtu_bytes", ["device": "vigil0"]) == 1280)
        #expect(
            after.value("node_network_iface_id", ["device": "vigil0"])
                != before.value("node_network_iface_id", ["device": "vigil0"])
        )
    }

    /// What rtnetlink reports, written as sysfs has it, is what sysfs says: interfaces up and down,
    /// with and without carrier, linked to a peer, with an alias, a set address and changed queue
    /// length, group and MTU, in a network namespace of their own.
    @Test(.enabled(if: canCreateNetworkNamespaces())) func rtnetlinkGivesWhatSysfsGives() throws {
        let network = try PrivateNetwork()
        // Ten more interfaces than the eight whose files all stay open.
        let more = (10..<20).map { "vigil\($0)" }
        for command in [
            "link set lo up",
            "link add vigil1 type veth peer name vigil2", "link set vigil1 address 02:00:00:00:00:33",
            "link set vigil1 up",
            "link add vigil3 type ifb", "link set vigil3 alias edge-uplink", "link set vigil3 mtu 9000",
            "link set vigil3 txqueuelen 77", "link set vigil3 group 5", "link set vigil3 up",
            "link add vigil4 type bridge", "link set vigil4 up", "link add vigil5 type ifb",
        ] + more.map({ "link add \($0) type ifb" }) {
            try network.ip(command)
        }
        let sysfs = try network.mountSysfs()
        let links = try network.inNamespace { RouteLinks() }
        let reported = try #require(links.dump())
        #expect(Set(reported.keys) == Set(["lo", "vigil1", "vigil2", "vigil3", "vigil4", "vigil5"] + more))

        let roots = PathRoots(sysfs: sysfs)
        let sysfsOnly = netClassCollector(sysfs: sysfs, links: nil)
        let fromSysfs = try collect(sysfsOnly, roots: roots).text
        let collector = netClassCollector(sysfs: sysfs, links: links)
        // Twice: the second scrape reads through the files kept open by the first.
        #expect(try collect(collector, roots: roots).text == fromSysfs)
        #expect(try collect(collector, roots: roots).text == fromSysfs)
        // The dump was used: only the files it has no answer for are kept, so all 16 interfaces' fit in
        // the descriptors that keep 8 interfaces' files without it.
        #expect(keptFiles(collector) == Array(repeating: 8, count: 16))
        #expect(keptFiles(sysfsOnly) == Array(repeating: 23, count: 8))
        #expect(fromSysfs.contains("ifalias=\"edge-uplink\""))
        #expect(fromSysfs.contains("address=\"02:00:00:00:00:33\""))
        #expect(fromSysfs.contains("node_network_carrier{device=\"vigil1\"} 0"))
        #expect(!fromSysfs.contains("node_network_carrier{device=\"vigil2\"}"))
    }

    /// Files kept open and shown to match the dump are not read again to show it while the dump reports
    /// the same index and address; a name that passes to another interface (renamed in its place) is
    /// read from that interface's files, with the dump and without it.
    @Test(.enabled(if: canCreateNetworkNamespaces())) func aNameTakenByAnotherInterfaceIsReadFromItsFiles() throws {
        let network = try PrivateNetwork()
        for command in [
            "link add vigil1 type veth peer name vigil3", "link set vigil1 mtu 1400",
            "link add vigil2 type veth peer name vigil4", "link set vigil2 mtu 1280",
            "link set vigil2 address 02:00:00:00:00:44", "link set vigil2 up",
        ] {
            try network.ip(command)
        }
        let sysfs = try network.mountSysfs()
        let roots = PathRoots(sysfs: sysfs)
        let links = try network.inNamespace { RouteLinks() }
        let collector = netClassCollector(sysfs: sysfs, links: links)
        let sysfsOnly = netClassCollector(sysfs: sysfs, links: nil)
        let first = try collect(collector, roots: roots)
        #expect(try collect(collector, roots: roots).text == first.text)
        #expect(try collect(sysfsOnly, roots: roots).text == first.text)
        #expect(collector.verified.value.withLock { Set($0.keys) } == ["lo", "vigil1", "vigil2", "vigil3", "vigil4"])

        try network.ip("link set vigil1 name vigil9")
        try network.ip("link set vigil2 name vigil1")
        let fromSysfs = try collect(netClassCollector(sysfs: sysfs, links: nil), roots: roots).text
        #expect(try collect(collector, roots: roots).text == fromSysfs)
        #expect(try collect(collector, roots: roots).text == fromSysfs)
        // The files kept for vigil1 and vigil2 are vigil9's and vigil1's now: their uevent says so.
        #expect(try collect(sysfsOnly, roots: roots).text == fromSysfs)
        #expect(try collect(sysfsOnly, roots: roots).text == fromSysfs)
        let after = try collect(collector, roots: roots)
        #expect(after.value("node_network_mtu_bytes", ["device": "vigil1"]) == 1280)
        #expect(after.value("node_network_mtu_bytes", ["device": "vigil9"]) == 1400)
        // Attributes only sysfs has: the address was set (3), and the interface is up (IFF_UP).
        #expect(after.value("node_network_address_assign_type", ["device": "vigil1"]) == 3)
        #expect(after.value("node_network_flags", ["device": "vigil1"]).map { Int($0) & 1 } == 1)
        #expect(after.value("node_network_flags", ["device": "vigil9"]).map { Int($0) & 1 } == 0)
        #expect(
            after.value("node_network_iface_id", ["device": "vigil1"])
                == first.value("node_network_iface_id", ["device": "vigil2"])
        )
    }

    /// netdev's counters from the dump are what `/proc/net/dev` (and sysfs's `rx_nohandler`) say, with
    /// traffic on lo and interfaces that are down.
    @Test(.enabled(if: canCreateNetworkNamespaces())) func netdevFromRtnetlinkIsWhatProcNetDevSays() throws {
        let network = try PrivateNetwork()
        for command in ["link set lo up", "link add vigil1 type veth peer name vigil2", "link add vigil3 type ifb"] {
            try network.ip(command)
        }
        let sent = try network.inNamespace { () -> Int in
            let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(socket) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(9).bigEndian
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            return (0..<5).filter { _ in
                withUnsafePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(socket, "vigil", 5, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                } == 5
            }.count
        }
        #expect(sent == 5)
        let sysfs = try network.mountSysfs()
        let roots = PathRoots(procfs: network.procfs, sysfs: sysfs)
        func netDevCollector(links: RouteLinks?) -> NetDevCollector {
            NetDevCollector(
                file: KeptOpenFile(network.procfs + "/net/dev", end: .roomForLine(1024)),
                interfaces: sysfs + "/class/net",
                devices: NameFilter(include: nil, exclude: nil),
                links: links
            )
        }
        let fromProc = try collect(netDevCollector(links: nil), roots: roots)
        let links = try network.inNamespace { RouteLinks() }
        let fromLinks = try collect(netDevCollector(links: links), roots: roots)
        #expect(fromLinks.text == fromProc.text)
        #expect(fromLinks.failures.isEmpty)
        #expect(try #require(fromProc.value("node_network_transmit_packets_total", ["device": "lo"])) >= 5)
        #expect(fromProc.value("node_network_receive_nohandler_total", ["device": "vigil3"]) == 0)
        #expect(fromProc.value("node_network_receive_bytes_total", ["device": "vigil2"]) == 0)
    }

    /// A sysfs of another network namespace than the netlink socket's (a container's bind mount of
    /// the host's /sys): an interface of the same name is another interface, and sysfs says it all.
    @Test(.enabled(if: canCreateNetworkNamespaces())) func aSysfsOfAnotherNamespaceIsReadWhole() throws {
        let hostLinks = RouteLinks()
        let hostReport = try #require(hostLinks.dump())
        let hostName = try #require(
            hostReport.keys.sorted().first { $0 != "lo" },
            "the host has an interface besides lo"
        )
        let network = try PrivateNetwork()
        try network.ip("link set lo up")
        try network.ip("link add \(hostName) type ifb")
        let sysfs = try network.mountSysfs()
        let roots = PathRoots(sysfs: sysfs)
        let fromSysfs = try collect(netClassCollector(sysfs: sysfs, links: nil), roots: roots).text
        #expect(fromSysfs.contains("node_network_up{device=\"\(hostName)\"} 0"))
        let collector = netClassCollector(sysfs: sysfs, links: hostLinks)
        #expect(try collect(collector, roots: roots).text == fromSysfs)
        #expect(try collect(collector, roots: roots).text == fromSysfs)
        // Every file of both interfaces is kept.
        #expect(keptFiles(collector) == [23, 23])
    }

    /// A dump in two datagrams, with an answer to an earlier request before it; what does not hold
    /// together fails the dump rather than yield a wrong value, and the kernel's refusals keep their errno.
    @Test func parsesAnRtnetlinkDump() {
        func message(type: UInt16, sequence: UInt32, _ body: [UInt8]) -> [UInt8] {
            var bytes = native(UInt32(16 + body.count))
            bytes += native(type)
            bytes += native(UInt16(2))  // NLM_F_MULTI
            bytes += native(sequence)
            bytes += native(UInt32(0))
            bytes += body
            while bytes.count % 4 != 0 { bytes.append(0) }
            return bytes
        }
        func attribute(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
            var bytes = native(UInt16(4 + value.count)) + native(type) + value
            while bytes.count % 4 != 0 { bytes.append(0) }
            return bytes
        }
        func parse(_ bytes: [UInt8], into links: inout [String: LinkReport]) -> NetlinkDumpProgress {
            bytes.withUnsafeBytes { parseNetlinkMessages($0, sequence: 5) { addLinkReport($0, $1, to: &links) } }
        }
        // ifinfomsg: family, pad, type (ARPHRD_ETHER), index 7, flags IFF_UP | IFF_DORMANT, change.
        var info: [UInt8] = [0, 0] + native(UInt16(1))
        info += native(Int32(7)) + native(UInt32(0x20001)) + native(UInt32(0))
        var eth0 = info + attribute(3, Array("eth0\0".utf8))
        eth0 += attribute(1, [0x02, 0, 0, 0, 0, 0xab]) + attribute(4, native(UInt32(1500)))
        eth0 += attribute(16, [6]) + attribute(20, Array("uplink\0".utf8))
        // A nested-flagged attribute is still found by its type.
        eth0 += attribute(0x8000 | 35, native(UInt32(3))) + attribute(33, [1])
        // IFLA_STATS64 of a kernel before 4.6: 23 counters, no rx_nohandler.
        eth0 += attribute(23, (0..<23).flatMap { native(UInt64(100 + $0)) })
        var links: [String: LinkReport] = [:]
        let stale = message(type: 16, sequence: 4, info + attribute(3, Array("old0\0".utf8)))
        #expect(parse(stale + message(type: 16, sequence: 5, eth0), into: &links) == .more)
        #expect(Set(links.keys) == ["eth0"])
        #expect(parse(message(type: 3, sequence: 5, native(Int32(0))), into: &links) == .done)
        let report = links["eth0"]
        #expect(report?.index == 7)
        #expect(report?.address == [0x02, 0, 0, 0, 0, 0xab])
        #expect(report?.mtu == 1500)
        #expect(report?.alias == Array("uplink".utf8))
        #expect(report?.carrierChanges == 3)
        #expect(report?.number(.dormant) == 1)
        #expect(report?.number(.carrier) == 1)
        #expect(report?.number(.iflink) == 7)
        #expect(report?.counter(.rxPackets) == 100)
        #expect(report?.counter(.txCompressed) == 122)
        #expect(report?.counter(.rxNoHandler) == nil)
        var text: [UInt8] = []
        #expect(report?.text(.operstate, into: &text) == true)
        #expect(report?.text(.address, into: &text) == true)
        #expect(String(decoding: text, as: UTF8.self) == "up02:00:00:00:00:ab")

        // An error answer, to the request or at the end of a dump; a message longer than the datagram; an
        // attribute longer than its message.
        #expect(parse(message(type: 2, sequence: 5, native(Int32(-22))), into: &links) == .refused(EINVAL))
        #expect(parse(message(type: 3, sequence: 5, native(Int32(-2))), into: &links) == .refused(ENOENT))
        #expect(parse(Array(message(type: 16, sequence: 5, eth0).dropLast(4)), into: &links) == .failed)
        let broken = info + native(UInt16(40)) + native(UInt16(3)) + Array("eth1".utf8)
        #expect(parse(message(type: 16, sequence: 5, broken), into: &links) == .failed)
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

/// A netclass collector of the interfaces under `sysfs`, taking rtnetlink's reports from `links`.
private func netClassCollector(sysfs: String, links: RouteLinks?) -> NetClassCollector {
    NetClassCollector(
        directory: sysfs + "/class/net",
        ignored: NameFilter(include: nil, exclude: nil),
        ignoreInvalidSpeed: false,
        links: links
    )
}

/// How many files the collector keeps open for each interface, by name.
private func keptFiles(_ collector: NetClassCollector) -> [Int] {
    collector.kept.files.withLock { $0.sorted { $0.key < $1.key }.map(\.value.names.count) }
}

/// Replaces a file's content in place (same inode), as the kernel changes an attribute.
private func overwrite(_ path: String, with text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw FileError(path: path, errno: errno, operation: "open") }
    defer { close(fd) }
    let written = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    guard written == text.utf8.count else { throw FileError(path: path, errno: errno, operation: "write") }
}
