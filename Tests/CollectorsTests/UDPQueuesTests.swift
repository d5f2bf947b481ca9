import Glibc
import Testing
import VigilCore

@testable import Collectors

@Suite struct UDPQueuesTests {
    /// The `tx_queue:rx_queue` column of a tree's `/proc/net/udp{,6}` summed, worked out here.
    private func sums(_ tree: String, _ file: String) throws -> (tx: Double, rx: Double) {
        var sums = (tx: 0.0, rx: 0.0)
        for line in try fixtureText(tree + "/" + file).split(separator: "\n").dropFirst() {
            let fields = words(line)
            guard fields.count > 4 else { continue }
            let queues = fields[4].split(separator: ":")
            sums.tx += Double(Int(queues[0], radix: 16)!)
            sums.rx += Double(Int(queues[1], radix: 16)!)
        }
        return sums
    }

    @Test func collectsARecordedHost() throws {
        let collected = try collect(UDPQueuesCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.failures.isEmpty)
        for (ip, file) in [("v4", "proc/net/udp"), ("v6", "proc/net/udp6")] {
            let sums = try self.sums("debian12", file)
            #expect(collected.value("node_udp_queues", ["ip": ip, "queue": "tx"]) == sums.tx)
            #expect(collected.value("node_udp_queues", ["ip": ip, "queue": "rx"]) == sums.rx)
        }
        #expect(collected[family: "node_udp_queues"]?.samples.count == 4)
    }

    @Test func matchesNodeExporter() throws {
        let collected = try collect(UDPQueuesCollector.descriptor, roots: fixtureRoots("debian12"))
        expectSameFamilies(collected.families, try golden("debian12-udp_queues"))
    }

    @Test func sumsQueuesAndSkipsBrokenLines() throws {
        let collected = try collect(UDPQueuesCollector.descriptor, roots: fixtureRoots("net-odd"))
        #expect(collected.failures.count == 1)
        let sums = try self.sums("net-odd", "proc/net/udp")
        #expect(sums.tx == 0x10 && sums.rx == 0x200 + 0xffff)
        #expect(collected.value("node_udp_queues", ["ip": "v4", "queue": "tx"]) == sums.tx)
        #expect(collected.value("node_udp_queues", ["ip": "v4", "queue": "rx"]) == sums.rx)
        // No /proc/net/udp6: IPv6 is disabled, its samples are left out.
        #expect(collected[family: "node_udp_queues"]?.samples.count == 2)
    }

    @Test func parsesOnlyTheQueueColumn() {
        let queues = sumUDPQueues(
            ArraySlice(
                """
                  sl  local_address rem_address   st tx_queue rx_queue tr
                   0: 00000000:0044 00000000:0000 07 00000001:00000002 00:00000000
                   1: 00000000:0045 00000000:0000 07 ffffffff:ffffffff 00:00000000

                   2: 00000000:0045 00000000:0000 07 nothex
                   3: short
                """.utf8
            )
        )
        #expect(queues == UDPQueues(tx: 0x1_0000_0000, rx: 0x1_0000_0001, brokenLines: 2))
        #expect(sumUDPQueues([]) == UDPQueues())
    }

    /// `/proc/net/udp` read through a kept-open descriptor that stops at the first read leaving room
    /// for another line: with 300 sockets the file is many pages, and no socket is missed.
    @Test func readsEveryPageOfALongSocketTable() throws {
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        var ports: [String] = []
        for _ in 0..<300 {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            try #require(fd >= 0)
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
                }
            }
            try #require(bound)
            ports.append(
                ":" + String(UInt16(bigEndian: address.sin_port), radix: 16, uppercase: true).leftPadded(to: 4)
            )
        }
        let file = KeptOpenFile("/proc/net/udp", end: .roomForLine(256))
        let reader = FileReader()
        for _ in 0..<2 {
            let text = String(decoding: try reader.read(file), as: UTF8.self)
            #expect(text.utf8.count > 300 * 128)
            let local = Set(
                text.split(separator: "\n").dropFirst().compactMap { words($0).dropFirst().first?.suffix(5) }
            )
            #expect(ports.allSatisfy { local.contains(Substring($0)) })
        }
    }

    /// sock_diag's queues are what `/proc/net/udp{,6}` say: datagrams left unread on IPv4 and IPv6
    /// sockets of a network namespace of their own, asked for both families or one.
    @Test(.enabled(if: canCreateNetworkNamespaces() && kernelAnswersUDPSocketDumps()))
    func socketDiagnosticsGiveWhatTheFilesGive() throws {
        let network = try PrivateNetwork()
        try network.ip("link set lo up")
        let sockets = try network.inNamespace { () -> [Int32] in
            [queueDatagrams(AF_INET, count: 3), queueDatagrams(AF_INET6, count: 2)].flatMap { $0 }
        }
        defer { for fd in sockets { close(fd) } }
        try #require(sockets.count == 4)
        let roots = PathRoots(procfs: network.procfs)
        func collector(_ sockets: UDPSocketDiagnostics?) -> UDPQueuesCollector {
            UDPQueuesCollector(
                files: [
                    UDPSocketFile("v4", AF_INET, KeptOpenFile(network.procfs + "/net/udp", end: .roomForLine(256))),
                    UDPSocketFile("v6", AF_INET6, KeptOpenFile(network.procfs + "/net/udp6", end: .roomForLine(256))),
                ],
                sockets: sockets
            )
        }
        let fromFiles = try collect(collector(nil), roots: roots)
        #expect(try #require(fromFiles.value("node_udp_queues", ["ip": "v4", "queue": "rx"])) > 0)
        #expect(try #require(fromFiles.value("node_udp_queues", ["ip": "v6", "queue": "rx"])) > 0)
        for families in [[AF_INET, AF_INET6], [AF_INET]] {
            let diagnostics = try network.inNamespace { UDPSocketDiagnostics(families: families) }
            #expect(
                diagnostics.queues(AF_INET)?.rx
                    == fromFiles.value("node_udp_queues", ["ip": "v4", "queue": "rx"]).map(UInt64.init)
            )
            #expect(try collect(collector(diagnostics), roots: roots).text == fromFiles.text)
        }
    }

    /// Once the kernel refuses a request (here: a family it has no such thing as), the files are read.
    @Test(.enabled(if: kernelAnswersUDPSocketDumps())) func aRefusalSendsTheCollectorToTheFiles() {
        let diagnostics = UDPSocketDiagnostics(families: [AF_INET, 99])
        #expect(diagnostics.queues(AF_INET) != nil)
        #expect(diagnostics.queues(AF_INET6) == nil)
        #expect(diagnostics.queues(99) == nil)
        #expect(diagnostics.queues(AF_INET) == nil)
    }

    /// A dump's sockets summed; a message too short to hold the queues fails it.
    @Test func sumsTheQueuesOfASocketDump() {
        func socket(rx: UInt32, tx: UInt32) -> [UInt8] {
            [UInt8(AF_INET), 7, 0, 0] + [UInt8](repeating: 0, count: 52) + native(rx) + native(tx)
                + [UInt8](repeating: 0, count: 8)
        }
        var queues = UDPQueues()
        for body in [socket(rx: 768, tx: 0), socket(rx: 0xffff_ffff, tx: 5)] {
            #expect(body.withUnsafeBytes { addUDPQueues(20, $0, to: &queues) })
        }
        #expect(queues == UDPQueues(tx: 5, rx: 0xffff_ffff + 768))
        #expect(Array(socket(rx: 1, tx: 1).prefix(60)).withUnsafeBytes { addUDPQueues(20, $0, to: &queues) } == false)
        // Other messages are passed over.
        #expect([UInt8](repeating: 1, count: 4).withUnsafeBytes { addUDPQueues(3, $0, to: &queues) })
        #expect(queues == UDPQueues(tx: 5, rx: 0xffff_ffff + 768))
    }

    @Test func neitherFileMeansNoData() {
        #expect(throws: CollectorError.self) {
            try collect(UDPQueuesCollector.descriptor, roots: fixtureRoots("does-not-exist"))
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - self.count)) + self
    }
}

/// Whether this kernel answers sock_diag's UDP dumps (`udp_diag` built in, loaded or loadable).
private func kernelAnswersUDPSocketDumps() -> Bool {
    UDPSocketDiagnostics(families: [AF_INET]).queues(AF_INET) != nil
}

/// Sends `count` datagrams to a socket of `family` bound to the loopback address, which reads none; the
/// sender's and receiver's descriptors, or none when a step failed.
private func queueDatagrams(_ family: Int32, count: Int) -> [Int32] {
    let receiver = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
    let sender = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
    var storage = sockaddr_storage()
    var length: socklen_t
    if family == AF_INET {
        length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                address.pointee.sin_family = sa_family_t(AF_INET)
                address.pointee.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            }
        }
    } else {
        length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                address.pointee.sin6_family = sa_family_t(AF_INET6)
                address.pointee.sin6_addr = in6addr_loopback
            }
        }
    }
    let sent = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
            guard bind(receiver, address, length) == 0, getsockname(receiver, address, &length) == 0 else { return 0 }
            return (0..<count).filter { _ in sendto(sender, "vigil", 5, 0, address, length) == 5 }.count
        }
    }
    guard receiver >= 0, sender >= 0, sent == count else {
        close(receiver)
        close(sender)
        return []
    }
    return [receiver, sender]
}
