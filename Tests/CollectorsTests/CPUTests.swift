import Testing
import VigilCore

@testable import Collectors

@Suite struct CPUTests {
    /// The modes in the column order of /proc/stat.
    static let modes = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]

    @Test func parsesCPULinesOfEveryKernelAge() throws {
        let current = try #require(parseCPULine(ArraySlice("cpu1 13815 1 3230 91153 1208 2 67 745 12 3".utf8)))
        #expect(current.cpu == 1)
        #expect(current.times.user == 138.15)
        #expect(current.times.idle == 911.53)
        #expect(current.times.steal == 7.45)
        #expect(current.times.guest == 0.12)
        #expect(current.times.guestNice == 0.03)
        // Linux 2.4 wrote only user, nice, system and idle; the rest counts as 0.
        let old = try #require(parseCPULine(ArraySlice("cpu12\t1 2 3 4".utf8)))
        #expect(old.cpu == 12)
        #expect(old.times == CPUTimes(user: 0.01, nice: 0.02, system: 0.03, idle: 0.04))
        // Columns a future kernel adds are ignored.
        #expect(parseCPULine(ArraySlice("cpu0 1 2 3 4 5 6 7 8 9 10 11 12".utf8))?.times.guestNice == 0.1)
        let huge = parseCPULine(ArraySlice("cpu0 18446744073709551615 0 0 9007199254740993".utf8))
        #expect(huge?.times.user == Double(UInt64.max) / 100)
        #expect(huge?.times.idle == Double(9_007_199_254_740_993 as UInt64) / 100)
    }

    @Test func rejectsTheAggregateShortAndBrokenLines() {
        for line in [
            "cpu  1 2 3 4 5", "cpu0 1 2 3", "cpu0 1 2 x 4", "cpuX 1 2 3 4", "cpu0 1 2 3 -4", "",
            "cpu0 1 2 3 18446744073709551616",
        ] {
            #expect(parseCPULine(ArraySlice(line.utf8)) == nil, "\(line)")
        }
    }

    @Test func reportsEveryModeOfARecordedHost() throws {
        let collected = try collect(CPUCollector.descriptor, roots: fixtureRoots("debian12"))
        let lines = try fixtureText("debian12/proc/stat").split(separator: "\n")
            .filter { $0.hasPrefix("cpu") && !$0.hasPrefix("cpu ") }
        #expect(lines.count == 2)
        for line in lines {
            let fields = line.split(separator: " ")
            let cpu = String(fields[0].dropFirst(3))
            for (column, mode) in Self.modes.enumerated() {
                let value = collected.value("node_cpu_seconds_total", ["cpu": cpu, "mode": mode])
                #expect(value == Double(fields[column + 1])! / 100, "cpu \(cpu) \(mode)")
            }
            #expect(
                collected.value("node_cpu_guest_seconds_total", ["cpu": cpu, "mode": "user"]) == Double(fields[9])!
                    / 100
            )
            #expect(
                collected.value("node_cpu_guest_seconds_total", ["cpu": cpu, "mode": "nice"]) == Double(fields[10])!
                    / 100
            )
        }
        #expect(collected[family: "node_cpu_seconds_total"]?.samples.count == lines.count * 8)
        #expect(collected[family: "node_cpu_seconds_total"]?.type == "counter")
        #expect(collected.failures.isEmpty)
        // No thermal_throttle directories and no isolated CPUs on this host: no other families.
        #expect(collected.families.map(\.name) == ["node_cpu_seconds_total", "node_cpu_guest_seconds_total"])
    }

    @Test(arguments: ["debian12", "handmade"])
    func matchesNodeExporter(tree: String) throws {
        let collected = try collect(CPUCollector.descriptor, roots: fixtureRoots(tree))
        // node_exporter 1.5.0 reports the gap before cpu3 in the handmade tree (an offline CPU) as a CPU
        // with all zeros; 1.12 (procfs keeps CPUs in a map) and vigil do not.
        let reference = try golden("\(tree)-cpu")
        let offline = reference.flatMap(\.samples).filter { $0[label: "cpu"] == "2" }
        #expect(offline.count == (tree == "handmade" ? 10 : 0))
        #expect(offline.allSatisfy { $0.value == 0 })
        expectSameFamilies(collected.families, reference.droppingSamples { $0[label: "cpu"] == "2" })
    }

    @Test func guestTimeCanBeTurnedOff() throws {
        let collected = try collect(
            CPUCollector.descriptor,
            roots: fixtureRoots("debian12"),
            settings: ["collector.cpu.guest": .bool(false)]
        )
        #expect(collected[family: "node_cpu_guest_seconds_total"] == nil)
        #expect(collected[family: "node_cpu_seconds_total"] != nil)
    }

    @Test func countsThermalThrottlingPerCoreAndPackage() throws {
        let collected = try collect(CPUCollector.descriptor, roots: fixtureRoots("handmade"))
        func count(_ file: String) throws -> Double? {
            Double(try fixtureText("handmade/sys/devices/system/cpu/" + file).split(separator: "\n")[0])
        }
        let cores = "node_cpu_core_throttles_total"
        // cpu0 and cpu2 are the hyper-threads of package 0 core 0: one series.
        #expect(
            collected.value(cores, ["package": "0", "core": "0"])
                == (try count("cpu0/thermal_throttle/core_throttle_count"))
        )
        #expect(
            collected.value(cores, ["package": "0", "core": "1"])
                == (try count("cpu1/thermal_throttle/core_throttle_count"))
        )
        #expect(
            collected.value(cores, ["package": "1", "core": "0"])
                == (try count("cpu3/thermal_throttle/core_throttle_count"))
        )
        // cpu4 has no counters, cpu5 reports package -1: neither is counted.
        #expect(collected[family: cores]?.samples.count == 3)
        let packages = "node_cpu_package_throttles_total"
        #expect(
            collected.value(packages, ["package": "0"]) == (try count("cpu0/thermal_throttle/package_throttle_count"))
        )
        // Package 1's kernel has core counts only.
        #expect(collected[family: packages]?.samples.count == 1)
        #expect(collected[family: packages]?.type == "counter")
    }

    @Test func listsIsolatedCPUs() throws {
        #expect(parseCPUList(ArraySlice("0-2,5,7-8\n".utf8)) == [0, 1, 2, 5, 7, 8])
        #expect(parseCPUList(ArraySlice("\n".utf8)) == [])
        for odd in ["3-1", "1,,2", "x", "0-4294967295", "-1"] {
            #expect(parseCPUList(ArraySlice(odd.utf8)) == nil, "\(odd)")
        }
        let collected = try collect(CPUCollector.descriptor, roots: fixtureRoots("handmade"))
        let listed = try fixtureText("handmade/sys/devices/system/cpu/isolated")
        #expect(listed == "1,3-4\n")
        #expect(collected[family: "node_cpu_isolated"]?.samples.map { $0[label: "cpu"] } == ["1", "3", "4"])
        #expect(collected[family: "node_cpu_isolated"]?.samples.allSatisfy { $0.value == 1 } == true)
        // The recording host isolates none: an empty list, no family.
        #expect(try fixtureText("debian12/sys/devices/system/cpu/isolated") == "\n")
    }

    @Test func countersNeverGoBackwards() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write(
            "proc/stat",
            "cpu  300 0 110 30000 1100 0 30 0\ncpu0 100 0 50 10000 500 0 10 0\ncpu1 200 0 60 20000 600 0 20 0\nintr 1\n"
        )
        let collector = try makeCollector(CPUCollector.descriptor, roots: tree.roots)
        func seconds(_ collected: Collected, _ cpu: String, _ mode: String) -> Double? {
            collected.value("node_cpu_seconds_total", ["cpu": cpu, "mode": mode])
        }
        let first = try collect(collector, roots: tree.roots)
        #expect(seconds(first, "0", "iowait") == 5)

        // iowait steps back half a second (the kernel's estimate moved), the rest advances.
        try tree.write("proc/stat", "cpu0 110 0 55 10100 450 0 11 0\ncpu1 200 0 60 19990 600 0 20 0\n")
        let second = try collect(collector, roots: tree.roots)
        #expect(seconds(second, "0", "iowait") == 5)
        #expect(seconds(second, "0", "user") == 1.1)
        #expect(seconds(second, "0", "idle") == 101)
        // Idle 0.1 s lower is a step back, not a hot-plug.
        #expect(seconds(second, "1", "idle") == 200)

        // Idle 4 s lower: cpu0 was hot-plugged, its counters start again from the reading.
        try tree.write("proc/stat", "cpu0 1 0 1 9700 400 0 1 0\ncpu1 210 0 60 20010 600 0 20 0\n")
        let third = try collect(collector, roots: tree.roots)
        #expect(seconds(third, "0", "idle") == 97)
        #expect(seconds(third, "0", "iowait") == 4)
        #expect(seconds(third, "0", "user") == 0.01)
        #expect(seconds(third, "1", "user") == 2.1)

        // cpu1 goes offline (its series go), and comes back with lower counters (taken as they are).
        try tree.write("proc/stat", "cpu0 2 0 1 9800 400 0 1 0\n")
        let fourth = try collect(collector, roots: tree.roots)
        #expect(fourth[family: "node_cpu_seconds_total"]?.samples.count == 8)
        try tree.write("proc/stat", "cpu0 3 0 1 9900 400 0 1 0\ncpu1 5 0 1 100 1 0 0 0\n")
        let fifth = try collect(collector, roots: tree.roots)
        #expect(seconds(fifth, "1", "user") == 0.05)
        #expect(fifth.failures.isEmpty)
    }

    @Test func followsCPUsGoingOfflineAndOnline() {
        var counters = CPUCounters()
        func cpus(_ stat: String) -> [Int] {
            _ = counters.update(from: ArraySlice(stat.utf8))
            return counters.cpus.map(\.cpu)
        }
        #expect(cpus("cpu0 1 1 1 1\ncpu1 1 1 1 1\ncpu2 1 1 1 1\ncpu3 1 1 1 1\n") == [0, 1, 2, 3])
        #expect(cpus("cpu0 2 1 1 1\ncpu2 2 1 1 1\ncpu3 2 1 1 1\n") == [0, 2, 3])
        #expect(counters.cpus.map(\.times.user) == [0.02, 0.02, 0.02])
        #expect(cpus("cpu0 3 1 1 1\ncpu1 3 1 1 1\ncpu2 3 1 1 1\ncpu3 3 1 1 1\n") == [0, 1, 2, 3])
        #expect(cpus("cpu5 1 1 1 1\n") == [5])
        #expect(cpus("") == [])
    }

    @Test func aBrokenLineCostsOnlyThatCPU() throws {
        var counters = CPUCounters()
        // A repeated or out-of-order CPU would repeat a series: it counts as broken.
        let broken = counters.update(
            from: ArraySlice("cpu  9 9 9 9\ncpu0 1 2 3 4\ncpu1 x\ncpu1 1 2 3 4\ncpu0 5 6 7 8\ncpu2 1\nintr 5\n".utf8)
        )
        #expect(broken == 3)
        #expect(counters.cpus.map(\.cpu) == [0, 1])

        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/stat", "cpu0 1 2 3 4\ncpu1 garbage\n")
        let collected = try collect(CPUCollector.descriptor, roots: tree.roots)
        #expect(collected[family: "node_cpu_seconds_total"]?.samples.count == 8)
        #expect(collected.failures.count == 1)
    }

    @Test func aStatWithoutCPUsFails() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/stat", "")
        #expect(throws: CollectorError.self) { try collect(CPUCollector.descriptor, roots: tree.roots) }
        #expect(throws: FileError.self) { try collect(CPUCollector.descriptor, roots: fixtureRoots("does-not-exist")) }
    }

    @Test func concurrentScrapesShareTheCounters() async throws {
        let roots = fixtureRoots("handmade")
        let collector = try makeCollector(CPUCollector.descriptor, roots: roots)
        let expected = try collect(collector, roots: roots).text
        try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask { try (0..<25).map { _ in try collect(collector, roots: roots).text } }
            }
            for try await texts in group {
                #expect(texts.allSatisfy { $0 == expected })
            }
        }
    }
}
