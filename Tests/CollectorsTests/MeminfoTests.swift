import Testing
import VigilCore

@testable import Collectors

@Suite struct MeminfoTests {
    private func parse(_ text: String) -> [(name: String, value: Double)] {
        MeminfoFields(ArraySlice(text.utf8)).map { field in
            (
                meminfoName(field.key, inKilobytes: field.inKilobytes),
                field.inKilobytes ? field.value * 1024 : field.value
            )
        }
    }

    @Test func namesAndScalesFieldsAsNodeExporter() {
        let fields = self.parse("MemTotal:       24684092 kB\nActive(anon):     1516 kB\nHugePages_Total:       0\n")
        #expect(fields.map(\.name) == ["MemTotal_bytes", "Active_anon_bytes", "HugePages_Total"])
        #expect(fields.map(\.value) == [24_684_092 * 1024, 1516 * 1024, 0])
    }

    @Test func skipsBrokenLinesAndKeepsTheRest() {
        let fields = self.parse(
            "MemTotal: 100 kB\ngarbage line\nMemFree: x kB\nBuffers: 5 MB\nCached: 18446744073709551615 kB\n:\n"
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
