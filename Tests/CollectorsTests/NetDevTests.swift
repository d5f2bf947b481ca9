import Testing
import VigilCore

@testable import Collectors

#if canImport(Glibc)
import Glibc
#endif

@Suite struct NetDevTests {
    @Test func collectsEveryDeviceOfARecordedHost() throws {
        let collected = try collect(NetDevCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.failures.isEmpty)
        // Work the expected values out of the file: header column names, then `name: values`.
        let lines = try fixtureText("debian12/proc/net/dev").split(separator: "\n")
        let sections = lines[1].split(separator: "|")
        let receive = words(sections[1])
        let transmit = words(sections[2])
        var samples = 0
        for line in lines.dropFirst(2) {
            let parts = line.split(separator: ":", maxSplits: 1)
            let device = parts[0].trimmingSpaces()
            let values = words(parts[1]).map { Double($0)! }
            for (index, column) in (receive.map { "receive_" + $0 } + transmit.map { "transmit_" + $0 }).enumerated() {
                #expect(collected.value("node_network_\(column)_total", ["device": String(device)]) == values[index])
                samples += 1
            }
        }
        #expect(samples == 16 * (lines.count - 2))
        #expect(collected.families.count == 16)
        #expect(collected.families.allSatisfy { $0.type == "counter" && $0.samples.count == lines.count - 2 })
    }

    @Test func matchesNodeExporter() throws {
        let collected = try collect(NetDevCollector.descriptor, roots: fixtureRoots("debian12"))
        expectSameFamilies(collected.families, try golden("debian12-netdev"))
    }

    @Test func readsColumnsByTheirHeaderNames() throws {
        // An older kernel's header without the compressed and multicast columns: those families are
        // missing rather than filled from the wrong column.
        let table = try #require(
            parseNetDevTable(
                ArraySlice(
                    """
                    Inter-|   Receive                  |  Transmit
                     face |bytes    packets errs drop|bytes    packets colls
                        lo:18446744073709551615 9007199254740993 0 1 5 6 7
                      eth0: 100 2 3 4 300 4 9
                    """.utf8
                )
            )
        )
        #expect(table.names.map(\.string) == ["lo", "eth0"])
        #expect(table.brokenLines == 0)
        let column = { (direction: String, name: String) in
            netDevStatistics.firstIndex { $0.direction == direction && $0.column == name }!
        }
        #expect(table.value(device: 0, statistic: column("receive", "bytes")) == UInt64.max)
        #expect(table.value(device: 0, statistic: column("receive", "packets")) == 9_007_199_254_740_993)
        #expect(table.value(device: 1, statistic: column("receive", "drop")) == 4)
        #expect(table.value(device: 1, statistic: column("transmit", "packets")) == 4)
        #expect(table.value(device: 1, statistic: column("transmit", "colls")) == 9)
        #expect(table.value(device: 1, statistic: column("receive", "multicast")) == nil)
        #expect(table.value(device: 1, statistic: column("transmit", "errs")) == nil)
    }

    @Test func aBrokenLineCostsItsOwnSamples() throws {
        let collected = try collect(NetDevCollector.descriptor, roots: fixtureRoots("net-odd"))
        #expect(collected.failures.count == 1)
        // The header has 6 receive and 7 transmit columns; compressed and multicast are missing.
        #expect(collected.families.count == 13)
        #expect(collected[family: "node_network_receive_multicast_total"] == nil)
        #expect(collected.value("node_network_receive_bytes_total", ["device": "lo"]) == Double(UInt64.max))
        #expect(collected.value("node_network_transmit_carrier_total", ["device": "lo"]) == 13)
        // eth0 lacks its last two values; wlan0 has garbage for frame.
        #expect(collected.value("node_network_transmit_fifo_total", ["device": "eth0"]) == 0)
        #expect(collected.value("node_network_transmit_colls_total", ["device": "eth0"]) == nil)
        #expect(collected.value("node_network_receive_frame_total", ["device": "wlan0"]) == nil)
        #expect(collected.value("node_network_receive_fifo_total", ["device": "wlan0"]) == 5)
        #expect(collected.value("node_network_transmit_carrier_total", ["device": "wlan0"]) == 13)
    }

    @Test func rejectsFilesWithoutHeader() {
        #expect(parseNetDevTable([]) == nil)
        #expect(parseNetDevTable(ArraySlice("Inter-|   Receive\n".utf8)) == nil)
        #expect(parseNetDevTable(ArraySlice("garbage\nmore garbage\n  lo: 1 2 3\n".utf8)) == nil)
        // A header and no devices is an empty table.
        let empty = parseNetDevTable(ArraySlice("Inter-| Receive | Transmit\n face |bytes|bytes\n".utf8))
        #expect(empty?.names.isEmpty == true)
    }

    @Test func filtersDevices() throws {
        let included = try collect(
            NetDevCollector.descriptor,
            roots: fixtureRoots("debian12"),
            settings: ["collector.netdev.device-include": .regex("^eth")]
        )
        #expect(included[family: "node_network_receive_bytes_total"]?.samples.map { $0[label: "device"] } == ["eth0"])
        let excluded = try collect(
            NetDevCollector.descriptor,
            roots: fixtureRoots("debian12"),
            settings: ["collector.netdev.device-exclude": .regex("^(lo|ifb)")]
        )
        #expect(excluded[family: "node_network_receive_bytes_total"]?.samples.map { $0[label: "device"] } == ["eth0"])
        #expect(throws: ConfigurationError.self) {
            try collect(
                NetDevCollector.descriptor,
                roots: fixtureRoots("debian12"),
                settings: [
                    "collector.netdev.device-include": .regex("^eth"), "collector.netdev.device-exclude": .regex("^lo"),
                ]
            )
        }
    }

    @Test func keepsEachInterfacesNoHandlerFileOpenBetweenScrapes() throws {
        let header = "Inter-|   Receive | Transmit\n face |bytes packets|bytes packets\n"
        let tree = try TemporaryTree(files: [
            "proc/net/dev": header + "  eth0: 1 2 3 4\n    lo: 5 6 7 8\n",
            "sys/class/net/eth0/statistics/rx_nohandler": "5\n",
        ])
        let collector = try makeCollector(NetDevCollector.descriptor, roots: tree.roots)
        func noHandler() throws -> Double? {
            try collect(collector, roots: tree.roots).value("node_network_receive_nohandler_total", ["device": "eth0"])
        }
        #expect(try noHandler() == 5)
        // Read again through the descriptor kept open: a new value, even once the path is gone.
        try tree.write("sys/class/net/eth0/statistics/rx_nohandler", "9\n")
        #expect(rename(tree.path + "/sys/class/net/eth0", tree.path + "/sys/class/net/eth0-old") == 0)
        #expect(try noHandler() == 9)
        // An interface that is no longer listed is let go; listed again, it is opened afresh.
        try tree.write("proc/net/dev", header + "    lo: 5 6 7 8\n")
        #expect(try noHandler() == nil)
        try tree.write("proc/net/dev", header + "  eth0: 1 2 3 4\n    lo: 5 6 7 8\n")
        #expect(try noHandler() == nil)
        try tree.write("sys/class/net/eth0/statistics/rx_nohandler", "2\n")
        #expect(try noHandler() == 2)
    }

    @Test func aMissingFileMeansNoData() {
        #expect(throws: FileError.self) {
            try collect(NetDevCollector.descriptor, roots: fixtureRoots("does-not-exist"))
        }
    }
}
