import Testing
import VigilCore

@testable import Collectors

@Suite struct MeminfoTests {
    @Test func namesAndScalesFieldsAsNodeExporter() {
        let fields = parseMeminfo(
            ArraySlice("MemTotal:       24684092 kB\nActive(anon):     1516 kB\nHugePages_Total:       0\n".utf8)
        )
        #expect(
            fields == [
                MeminfoField(name: "MemTotal_bytes", value: 24_684_092 * 1024),
                MeminfoField(name: "Active_anon_bytes", value: 1516 * 1024),
                MeminfoField(name: "HugePages_Total", value: 0),
            ]
        )
    }

    @Test func skipsBrokenLinesAndKeepsTheRest() {
        let fields = parseMeminfo(
            ArraySlice(
                "MemTotal: 100 kB\ngarbage line\nMemFree: x kB\nBuffers: 5 MB\nCached: 18446744073709551615 kB\n".utf8
            )
        )
        #expect(fields.map(\.name) == ["MemTotal_bytes", "Cached_bytes"])
        #expect(fields[1].value == Double(UInt64.max) * 1024)
    }

    @Test func collectsEveryFieldOfARecordedHost() throws {
        let collected = try collect(MeminfoCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.value("node_memory_MemTotal_bytes") != nil)
        #expect(collected.value("node_memory_HugePages_Total") != nil)
        let lines = try FileReader().read(fixturesDirectory + "/debian12/proc/meminfo").lines.filter { !$0.isEmpty }
        #expect(collected.families.count == lines.count)
    }
}
