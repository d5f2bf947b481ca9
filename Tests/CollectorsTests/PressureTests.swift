import Testing
import VigilCore

@testable import Collectors

@Suite struct PressureTests {
    @Test func parsesSomeAndFullTotals() {
        let totals = parsePressure(
            ArraySlice(
                "some avg10=43.90 avg60=11.86 avg300=6.24 total=45342779\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551615\n"
                    .utf8
            )
        )
        #expect(totals == PressureTotals(some: 45_342_779, full: UInt64.max))
        #expect(parsePressure(ArraySlice("full avg10=0.00 total=7\n".utf8)) == PressureTotals(some: nil, full: 7))
        #expect(parsePressure(ArraySlice("some avg10=1 total=x\ngarbage\n".utf8)) == PressureTotals())
        #expect(parsePressure([]) == PressureTotals())
    }

    @Test(arguments: ["debian12", "handmade"])
    func reportsTotalsInSeconds(tree: String) throws {
        let collected = try collect(PressureCollector.descriptor, roots: fixtureRoots(tree))
        func total(_ resource: String, _ kind: String) throws -> Double? {
            let line = try fixtureText("\(tree)/proc/pressure/\(resource)").split(separator: "\n").first {
                $0.hasPrefix(kind)
            }
            return line.flatMap { UInt64($0.split(separator: "=").last!) }.map { Double($0) / 1000 / 1000 }
        }
        #expect(collected.value("node_pressure_cpu_waiting_seconds_total") == (try total("cpu", "some")))
        #expect(collected.value("node_pressure_io_waiting_seconds_total") == (try total("io", "some")))
        #expect(collected.value("node_pressure_io_stalled_seconds_total") == (try total("io", "full")))
        #expect(collected.value("node_pressure_memory_waiting_seconds_total") == (try total("memory", "some")))
        #expect(collected.value("node_pressure_memory_stalled_seconds_total") == (try total("memory", "full")))
        #expect(collected.families.allSatisfy { $0.type == "counter" })
        #expect(collected.failures.isEmpty)
        // Only the handmade tree has irq pressure (Linux 6.1+), which node_exporter 1.5.0 does not read.
        let irq = "node_pressure_irq_stalled_seconds_total"
        #expect(collected.value(irq) == (tree == "handmade" ? try total("irq", "full") : nil))
        expectSameFamilies(collected.families.dropping([irq]), try golden("\(tree)-pressure"))
    }

    @Test func withoutPSIThereIsNoData() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/loadavg", "0 0 0 1/1 1\n")
        #expect(throws: CollectorError.self) { try collect(PressureCollector.descriptor, roots: tree.roots) }
    }

    @Test func aMissingLineCostsItsFamily() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/pressure/io", "some avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\n")
        let collected = try collect(PressureCollector.descriptor, roots: tree.roots)
        #expect(collected.families.map(\.name) == ["node_pressure_io_waiting_seconds_total"])
        #expect(collected.value("node_pressure_io_waiting_seconds_total") == 2)
        #expect(collected.failures.count == 1)
    }
}
