import Glibc
import Testing
import VigilCore

@testable import Collectors

@Suite struct SockstatTests {
    @Test func collectsEveryFieldOfARecordedHost() throws {
        let collected = try collect(SockstatCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.failures.isEmpty)
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        var expected: [String: Double] = [:]
        for file in ["proc/net/sockstat", "proc/net/sockstat6"] {
            for line in try fixtureText("debian12/" + file).split(separator: "\n") {
                let fields = words(line)
                let proto = fields[0].dropLast()
                for pair in stride(from: 1, to: fields.count, by: 2) {
                    let value = Double(fields[pair + 1])!
                    if proto == "sockets" {
                        expected["sockets_used"] = value
                        continue
                    }
                    expected["\(proto)_\(fields[pair])"] = value
                    if fields[pair] == "mem" { expected["\(proto)_mem_bytes"] = value * pageSize }
                }
            }
        }
        #expect(expected.count == 20)
        #expect(Set(collected.families.map(\.name)) == Set(expected.keys.map { "node_sockstat_" + $0 }))
        for (key, value) in expected {
            #expect(collected.value("node_sockstat_" + key) == value, "\(key)")
            #expect(collected[family: "node_sockstat_" + key]?.type == "gauge")
        }
        #expect(collected[family: "node_sockstat_TCP_tw"]?.help == "Number of TCP sockets in state tw.")
        #expect(collected[family: "node_sockstat_sockets_used"]?.help == "Number of IPv4 sockets in use.")
    }

    @Test func matchesNodeExporter() throws {
        let collected = try collect(SockstatCollector.descriptor, roots: fixtureRoots("debian12"))
        expectSameFamilies(collected.families, try golden("debian12-sockstat"))
    }

    @Test func brokenLinesCostTheirOwnSamples() throws {
        let collected = try collect(SockstatCollector.descriptor, roots: fixtureRoots("net-odd"))
        // "UDPLITE inuse 0" lacks its colon, "RAW: inuse" its value; there is no sockstat6.
        #expect(collected.failures.count == 2)
        #expect(collected.value("node_sockstat_sockets_used") == 290)
        #expect(collected.value("node_sockstat_TCP_orphan") == 1)
        #expect(collected.value("node_sockstat_TCP_mem_bytes") == 4 * Double(sysconf(Int32(_SC_PAGESIZE))))
        #expect(collected.value("node_sockstat_UDP_mem") == Double(UInt64.max))
        #expect(collected[family: "node_sockstat_UDPLITE_inuse"] == nil)
        #expect(collected[family: "node_sockstat_RAW_inuse"] == nil)
        // A field node_exporter does not know is left out; FRAG's memory is bytes already.
        #expect(collected[family: "node_sockstat_FRAG_future"] == nil)
        #expect(collected.value("node_sockstat_FRAG_memory") == 0)
        #expect(collected[family: "node_sockstat_FRAG_memory_bytes"] == nil)
        #expect(!collected.families.contains { $0.name.contains("6_") })
    }

    @Test func aProtocolSeenTwiceIsWrittenOnce() {
        var shape = NumberShape()
        shape.append(file: ArraySlice("TCP: inuse 1 mem 2\nTCP: inuse 3\n".utf8))
        shape.append(file: ArraySlice("TCP: inuse 4\nsockets: used 5\n".utf8))
        let layout = sockstatLayout(shape, pageSize: 4096)
        #expect(
            (0..<layout.numberCount).map { layout.families(ofNumber: $0).map(\.name) } == [
                ["node_sockstat_TCP_inuse"], ["node_sockstat_TCP_mem", "node_sockstat_TCP_mem_bytes"], [], [], [],
            ]
        )
        #expect(layout.families(ofNumber: 1).last?.scale == 4096)
    }

    @Test func neitherFileMeansNoData() {
        #expect(throws: CollectorError.self) {
            try collect(SockstatCollector.descriptor, roots: fixtureRoots("does-not-exist"))
        }
    }
}
