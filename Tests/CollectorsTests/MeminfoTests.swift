import Testing
import VigilCore

@testable import Collectors

@Suite struct MeminfoTests {
    /// The families the layout of `text` writes for it, without their `node_memory_` prefix.
    private func parse(_ text: String) throws -> [(name: String, value: Double)] {
        let bytes = ArraySlice(text.utf8)
        var shape = NumberShape()
        shape.append(file: bytes)
        var writer = MetricWriter(format: .text)
        #expect(meminfoLayout(shape).write([bytes], into: &writer))
        return try parseExposition(writer.bytes[...]).map { family in
            (String(family.name.dropFirst("node_memory_".count)), family.samples[0].value)
        }
    }

    @Test func namesAndScalesFieldsAsNodeExporter() throws {
        let fields = try self.parse(
            "MemTotal:       24684092 kB\nActive(anon):     1516 kB\nHugePages_Total:       0\n"
        )
        #expect(fields.map(\.name) == ["MemTotal_bytes", "Active_anon_bytes", "HugePages_Total"])
        #expect(fields.map(\.value) == [24_684_092 * 1024, 1516 * 1024, 0])
    }

    @Test func skipsBrokenLinesAndKeepsTheRest() throws {
        let fields = try self.parse(
            "MemTotal: 100 kB\ngarbage line 7\nMemFree: x kB\nBuffers: 5 MB\nCached: 18446744073709551615 kB\n:\n"
                + "MemTotal: 200 kB\n"
        )
        // The repeated MemTotal is written once: a family twice would make the exposition invalid.
        #expect(fields.map(\.name) == ["MemTotal_bytes", "Cached_bytes"])
        #expect(fields[1].value == Double(UInt64.max) * 1024)
    }

    @Test func aChangedFileIsReadAfresh() throws {
        let tree = try TemporaryTree(files: ["proc/meminfo": "MemTotal: 100 kB\nHugePages_Total: 3\n"])
        let collector = try makeCollector(MeminfoCollector.descriptor, roots: tree.roots)
        #expect(try collect(collector, roots: tree.roots).value("node_memory_HugePages_Total") == 3)
        try tree.write("proc/meminfo", "MemTotal: 100 kB\nMemFree: 40 kB\nHugePages_Total: 4\n")
        let collected = try collect(collector, roots: tree.roots)
        #expect(collected.value("node_memory_MemFree_bytes") == 40_960)
        #expect(collected.value("node_memory_HugePages_Total") == 4)
        try tree.write("proc/meminfo", "nothing to see\n")
        #expect(throws: CollectorError.self) { try collect(collector, roots: tree.roots) }
    }

    @Test func collectsEveryFieldOfARecordedHost() throws {
        let collected = try collect(MeminfoCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.value("node_memory_MemTotal_bytes") != nil)
        #expect(collected.value("node_memory_HugePages_Total") != nil)
        let lines = try FileReader().read(fixturesDirectory + "/debian12/proc/meminfo").lines.filter { !$0.isEmpty }
        #expect(collected.families.count == lines.count)
    }
}
