import Testing
import VigilCore

@testable import Collectors

@Suite struct SchedstatTests {
    @Test func parsesTheCPULines() {
        let (cpus, broken) = parseSchedstat(
            ArraySlice(
                """
                version 15
                timestamp 4295118492
                cpu0 0 0 0 0 0 0 1873650992671 84238574412 10357092
                domain0 00000000,00000003 50 50 0 0 0 0 0 50
                cpu1 0 0 0 0 0 0 18446744073709551615 1 2 3
                cpu2 0 0 0 0 0 0 1 2
                cpu3 0 0 0 0 0 0 1 x 3
                cpu1 0 0 0 0 0 0 1 2 3

                """.utf8
            )
        )
        #expect(
            cpus == [
                SchedstatCPU(
                    cpu: 0,
                    runningNanoseconds: 1_873_650_992_671,
                    waitingNanoseconds: 84_238_574_412,
                    timeslices: 10_357_092
                ),
                SchedstatCPU(cpu: 1, runningNanoseconds: UInt64.max, waitingNanoseconds: 1, timeslices: 2),
            ]
        )
        // Too short, garbage, and a repeated CPU.
        #expect(broken == 3)
    }

    @Test func reportsSecondsAndTimeslicesPerCPU() throws {
        let collected = try collect(SchedstatCollector.descriptor, roots: fixtureRoots("handmade"))
        let lines = try fixtureText("handmade/proc/schedstat").split(separator: "\n").filter { $0.hasPrefix("cpu") }
        for line in lines {
            let fields = line.split(separator: " ")
            let cpu = String(fields[0].dropFirst(3))
            #expect(
                collected.value("node_schedstat_running_seconds_total", ["cpu": cpu]) == Double(UInt64(fields[7])!)
                    / 1e9
            )
            #expect(
                collected.value("node_schedstat_waiting_seconds_total", ["cpu": cpu]) == Double(UInt64(fields[8])!)
                    / 1e9
            )
            #expect(collected.value("node_schedstat_timeslices_total", ["cpu": cpu]) == Double(fields[9]))
        }
        #expect(collected.families.allSatisfy { $0.samples.count == lines.count && $0.type == "counter" })
        expectSameFamilies(collected.families, try golden("handmade-schedstat"))
    }

    @Test func noFileMeansNoData() throws {
        // The recording host's kernel has no CONFIG_SCHEDSTATS: node_exporter has nothing either.
        #expect(try golden("debian12-schedstat").isEmpty)
        #expect(
            performing: { try collect(SchedstatCollector.descriptor, roots: fixtureRoots("debian12")) },
            throws: {
                ($0 as? FileError)?.isNotFound == true
            }
        )
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/schedstat", "version 15\n")
        #expect(throws: CollectorError.self) { try collect(SchedstatCollector.descriptor, roots: tree.roots) }
    }
}
