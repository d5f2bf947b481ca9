import Testing
import VigilCore

@testable import Collectors

@Suite struct ConntrackTests {
    /// The per-CPU rows of a tree's `/proc/net/stat/nf_conntrack` summed by column name, worked out here.
    private func sums(_ tree: String) throws -> [String: Double] {
        let lines = try fixtureText(tree + "/proc/net/stat/nf_conntrack").split(separator: "\n")
        let names = words(lines[0])
        var sums: [String: Double] = [:]
        for line in lines.dropFirst() where words(line).count == names.count {
            for (name, value) in zip(names, words(line)) { sums[name, default: 0] += Double(Int(value, radix: 16)!) }
        }
        return sums
    }

    @Test func collectsARecordedHost() throws {
        let collected = try collect(ConntrackCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.failures.isEmpty)
        let count = try fixtureText("debian12/proc/sys/net/netfilter/nf_conntrack_count")
        let max = try fixtureText("debian12/proc/sys/net/netfilter/nf_conntrack_max")
        #expect(collected.value("node_nf_conntrack_entries") == Double(count.dropLast()))
        #expect(collected.value("node_nf_conntrack_entries_limit") == Double(max.dropLast()))
        let sums = try self.sums("debian12")
        for column in ["found", "invalid", "ignore", "insert", "insert_failed", "drop", "early_drop", "search_restart"]
        {
            #expect(collected.value("node_nf_conntrack_stat_" + column) == sums[column], "\(column)")
            #expect(collected[family: "node_nf_conntrack_stat_" + column]?.type == "gauge")
        }
        #expect(collected.families.count == 10)
    }

    @Test func matchesNodeExporter() throws {
        let collected = try collect(ConntrackCollector.descriptor, roots: fixtureRoots("debian12"))
        expectSameFamilies(collected.families, try golden("debian12-conntrack"))
    }

    @Test func anOlderKernelsColumnsAndABrokenRow() throws {
        let collected = try collect(ConntrackCollector.descriptor, roots: fixtureRoots("net-odd"))
        // The third row is short: it is left out of the sums and reported.
        #expect(collected.failures.count == 1)
        let sums = try self.sums("net-odd")
        #expect(sums["found"] == Double(0xa + 0xffff_ffff as Int))
        for column in ["found", "invalid", "ignore", "insert", "insert_failed", "drop", "early_drop"] {
            #expect(collected.value("node_nf_conntrack_stat_" + column) == sums[column], "\(column)")
        }
        // This kernel has no search_restart column.
        #expect(collected[family: "node_nf_conntrack_stat_search_restart"] == nil)
        #expect(collected.value("node_nf_conntrack_entries") == 7)
    }

    @Test func sumsByHeaderName() {
        let totals = sumConntrackStatistics(
            ArraySlice("drop found extra\n00000001 0000000a ff\n00000002 0000000b zz\n00000003 0000000c 00\n".utf8)
        )
        let index = { (name: String) in conntrackStatistics.firstIndex { $0.column == name }! }
        #expect(totals.values[index("drop")] == 4)
        #expect(totals.values[index("found")] == 0x16)
        #expect(totals.values[index("invalid")] == nil)
        #expect(totals.brokenRows == 1)
        #expect(sumConntrackStatistics([]).values.allSatisfy { $0 == nil })
    }

    @Test func withoutConntrackThereIsNoData() {
        #expect(throws: FileError.self) {
            try collect(ConntrackCollector.descriptor, roots: fixtureRoots("does-not-exist"))
        }
    }
}
