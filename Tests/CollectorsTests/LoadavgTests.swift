import Testing
import VigilCore

@testable import Collectors

@Suite struct LoadavgTests {
    @Test func parsesTheThreeAverages() throws {
        let loads = parseLoadavg(ArraySlice("0.42 1.50 12.05 3/1105 9977\n".utf8))
        #expect(loads?.0 == 0.42)
        #expect(loads?.1 == 1.5)
        #expect(loads?.2 == 12.05)
    }

    @Test func rejectsGarbageAndShortLines() {
        #expect(parseLoadavg(ArraySlice("".utf8)) == nil)
        #expect(parseLoadavg(ArraySlice("0.1 0.2\n".utf8)) == nil)
        #expect(parseLoadavg(ArraySlice("a b c".utf8)) == nil)
    }

    @Test func collectsFromARecordedHost() throws {
        let collected = try collect(LoadavgCollector.descriptor, roots: fixtureRoots("debian12"))
        let recorded = try String(
            decoding: FileReader().read(fixturesDirectory + "/debian12/proc/loadavg"),
            as: UTF8.self
        )
        let fields = recorded.split(separator: " ")
        #expect(collected.value("node_load1") == Double(fields[0]))
        #expect(collected.value("node_load5") == Double(fields[1]))
        #expect(collected.value("node_load15") == Double(fields[2]))
        #expect(collected[family: "node_load1"]?.type == "gauge")
    }

    @Test func aMissingFileMeansNoData() {
        #expect(throws: FileError.self) {
            try collect(LoadavgCollector.descriptor, roots: fixtureRoots("does-not-exist"))
        }
    }
}
