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
