import Testing
import VigilCore

@testable import Collectors

@Suite struct SoftnetTests {
    @Test func parsesTheColumnsEachKernelWrites() {
        let (cpus, broken) = parseSoftnet(
            ArraySlice(
                """
                0000a1b2 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000003
                0001c3d4 00000000 00000004 00000000 00000000 00000000 00000000 00000000 00000000 00000005
                00000e5f 00000006 00000000 00000000 00000000 00000000 00000000 00000000 00000007 00000008 00000009
                ffffffff 00000000 0000000a 00000000 00000000 00000000 00000000 00000000 00000000 0000000b 0000000c 0000000d
                00000001 00000000 0000000a 00000000 00000000 00000000 00000000 00000000 00000000 0000000b 0000000c 0000000d 00000007 0 0

                """.utf8
            )
        )
        #expect(
            cpus == [
                SoftnetCPU(cpu: 0, processed: 0xa1b2, dropped: 1, timesSqueezed: 2, cpuCollision: 3),
                SoftnetCPU(cpu: 1, processed: 0x1c3d4, dropped: 0, timesSqueezed: 4, cpuCollision: 0, receivedRPS: 5),
                SoftnetCPU(
                    cpu: 2,
                    processed: 0xe5f,
                    dropped: 6,
                    timesSqueezed: 0,
                    cpuCollision: 7,
                    receivedRPS: 8,
                    flowLimitCount: 9
                ),
                // 12 columns: the backlog length needs the CPU column after it.
                SoftnetCPU(
                    cpu: 3,
                    processed: 0xffff_ffff,
                    dropped: 0,
                    timesSqueezed: 10,
                    cpuCollision: 0,
                    receivedRPS: 11,
                    flowLimitCount: 12
                ),
                // Linux 5.14+ names the CPU: cpus 4 to 6 are offline.
                SoftnetCPU(
                    cpu: 7,
                    processed: 1,
                    dropped: 0,
                    timesSqueezed: 10,
                    cpuCollision: 0,
                    receivedRPS: 11,
                    flowLimitCount: 12,
                    backlogLength: 13
                ),
            ]
        )
        #expect(broken == 0)
    }

    @Test func aBrokenLineCostsOnlyThatCPU() {
        let (cpus, broken) = parseSoftnet(
            ArraySlice(
                """
                00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000
                0000000g 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
                00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
                00000004 0 0 0 0 0 0 0 0 0 0 0 00000001
                12345678901234567 0 0 0 0 0 0 0 0

                """.utf8
            )
        )
        // The CPU is the line's position where the kernel does not write it.
        #expect(cpus.map(\.cpu) == [2])
        #expect(cpus[0].processed == 3)
        // Too short, not hexadecimal, a CPU number going back, more than 64 bits.
        #expect(broken == 4)
    }

    @Test func reportsARecordedHost() throws {
        let collected = try collect(SoftnetCollector.descriptor, roots: fixtureRoots("debian12"))
        let lines = try fixtureText("debian12/proc/net/softnet_stat").split(separator: "\n").map {
            $0.split(separator: " ")
        }
        #expect(lines.allSatisfy { $0.count >= 13 })
        let columns = [
            ("node_softnet_processed_total", 0), ("node_softnet_dropped_total", 1),
            ("node_softnet_times_squeezed_total", 2), ("node_softnet_cpu_collision_total", 8),
            ("node_softnet_received_rps_total", 9), ("node_softnet_flow_limit_count_total", 10),
            ("node_softnet_backlog_len", 11),
        ]
        for line in lines {
            let cpu = String(UInt64(line[12], radix: 16)!)
            for (family, column) in columns {
                #expect(collected.value(family, ["cpu": cpu]) == Double(UInt64(line[column], radix: 16)!), "\(family)")
            }
        }
        #expect(collected.families.count == 7)
        #expect(collected[family: "node_softnet_backlog_len"]?.type == "gauge")
        #expect(collected[family: "node_softnet_processed_total"]?.type == "counter")
    }

    @Test(arguments: ["debian12", "handmade"])
    func matchesNodeExporter(tree: String) throws {
        let collected = try collect(SoftnetCollector.descriptor, roots: fixtureRoots(tree))
        // node_exporter 1.5.0 wrote only processed, dropped and times_squeezed; 1.12 writes all seven.
        let newer: Set<String> = [
            "node_softnet_backlog_len", "node_softnet_cpu_collision_total", "node_softnet_flow_limit_count_total",
            "node_softnet_received_rps_total",
        ]
        #expect(newer.isSubset(of: collected.families.map(\.name)))
        expectSameFamilies(collected.families.dropping(newer), try golden("\(tree)-softnet"))
    }

    @Test func olderKernelsGetTheFamiliesTheirLinesHave() throws {
        let collected = try collect(SoftnetCollector.descriptor, roots: fixtureRoots("handmade"))
        func cpus(_ family: String) -> [String] {
            collected[family: "node_softnet_" + family]?.samples.compactMap { $0[label: "cpu"] } ?? []
        }
        #expect(cpus("processed_total") == ["0", "1", "2", "3"])
        #expect(cpus("cpu_collision_total") == ["0", "1", "2", "3"])
        #expect(cpus("received_rps_total") == ["1", "2", "3"])
        #expect(cpus("flow_limit_count_total") == ["2", "3"])
        #expect(cpus("backlog_len") == ["3"])
    }
}
