import Testing
import VigilCore

@testable import Collectors

@Suite struct StatTests {
    @Test func parsesTheSystemWideLines() {
        let stat = parseStat(
            ArraySlice(
                """
                cpu  1 2 3 4
                cpu0 1 2 3 4
                intr 280220 0 0 14
                ctxt 18446744073709551615
                btime 1795643563
                processes 9007199254740993
                procs_running 8
                procs_blocked 0
                softirq 195432 0 29803 5 1364 52684 0 4 52210 0 59362

                """.utf8
            ),
            softirqs: true
        )
        #expect(
            stat
                == SystemStat(
                    interrupts: 280_220,
                    contextSwitches: UInt64.max,
                    bootTime: 1_795_643_563,
                    forks: 9_007_199_254_740_993,
                    running: 8,
                    blocked: 0,
                    softirqs: [0, 29803, 5, 1364, 52684, 0, 4, 52210, 0, 59362]
                )
        )
        #expect(parseStat(ArraySlice("softirq 1 2 3\n".utf8)).softirqs == nil)
    }

    @Test func missingAndBrokenLinesCostTheirValueOnly() {
        // An old kernel without procs_running/procs_blocked, a garbage ctxt, a short softirq line.
        let stat = parseStat(
            ArraySlice("intr 5\nctxt -1\nbtime\nprocesses 7 extra\nsoftirq 10 1 2 3\ngarbage\n\n".utf8),
            softirqs: true
        )
        #expect(stat.interrupts == 5)
        #expect(stat.contextSwitches == nil)
        #expect(stat.bootTime == nil)
        #expect(stat.forks == 7)
        #expect(stat.running == nil)
        #expect(stat.softirqs == [1, 2, 3])
        #expect(stat.broken == 2)
        #expect(parseStat(ArraySlice("softirq 10 1 x\n".utf8), softirqs: true).broken == 1)
        #expect(parseStat([]) == SystemStat())
    }

    @Test func aFileWithoutTheLinesFails() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/stat", "cpu0 1 2 3 4\n")
        #expect(throws: CollectorError.self) { try collect(StatCollector.descriptor, roots: tree.roots) }
        try tree.write("proc/stat", "ctxt x\nbtime 5\n")
        let partial = try collect(StatCollector.descriptor, roots: tree.roots)
        #expect(partial.families.map(\.name) == ["node_boot_time_seconds"])
        #expect(partial.failures.count == 1)
    }

    @Test func reportsARecordedHost() throws {
        let collected = try collect(StatCollector.descriptor, roots: fixtureRoots("debian12"))
        var recorded: [String: Double] = [:]
        for line in try fixtureText("debian12/proc/stat").split(separator: "\n") {
            let fields = line.split(separator: " ")
            recorded[String(fields[0])] = Double(fields[1])
        }
        #expect(collected.value("node_intr_total") == recorded["intr"])
        #expect(collected.value("node_context_switches_total") == recorded["ctxt"])
        #expect(collected.value("node_forks_total") == recorded["processes"])
        #expect(collected.value("node_boot_time_seconds") == recorded["btime"])
        #expect(collected.value("node_procs_running") == recorded["procs_running"])
        #expect(collected.value("node_procs_blocked") == recorded["procs_blocked"])
        #expect(collected[family: "node_intr_total"]?.type == "counter")
        #expect(collected[family: "node_procs_running"]?.type == "gauge")
        // Softirqs only when asked for.
        #expect(collected[family: "node_softirqs_total"] == nil)
        #expect(collected.families.count == 6)
        #expect(collected.failures.isEmpty)
    }

    @Test func reportsSoftirqsPerVectorWhenAsked() throws {
        let collected = try collect(
            StatCollector.descriptor,
            roots: fixtureRoots("debian12"),
            settings: ["collector.stat.softirq": .bool(true)]
        )
        let line = try fixtureText("debian12/proc/stat").split(separator: "\n").first { $0.hasPrefix("softirq ") }!
        let counts = line.split(separator: " ").dropFirst(2).map { Double($0)! }
        let vectors = [
            "hi", "timer", "net_tx", "net_rx", "block", "block_iopoll", "tasklet", "sched", "hrtimer", "rcu",
        ]
        for (vector, count) in zip(vectors, counts) {
            #expect(collected.value("node_softirqs_total", ["vector": vector]) == count, "\(vector)")
        }
        #expect(collected[family: "node_softirqs_total"]?.samples.count == vectors.count)
    }

    @Test(arguments: ["debian12", "handmade"])
    func matchesNodeExporter(tree: String) throws {
        let collected = try collect(
            StatCollector.descriptor,
            roots: fixtureRoots(tree),
            settings: ["collector.stat.softirq": .bool(true)]
        )
        expectSameFamilies(collected.families, try golden("\(tree)-stat"))
    }

    @Test func cpuAndStatReadProcStatOncePerScrape() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/stat", "cpu0 1 2 3 4\nctxt 100\n")
        #expect(ProcStat.file(tree.roots) === ProcStat.file(tree.roots))
        let shared = ScrapeShared()
        let cpu = try collect(
            makeCollector(CPUCollector.descriptor, roots: tree.roots),
            roots: tree.roots,
            shared: shared
        )
        #expect(cpu.value("node_cpu_seconds_total", ["cpu": "0", "mode": "user"]) == 0.01)
        // The file changes within the scrape: stat still sees what cpu read.
        try tree.write("proc/stat", "cpu0 1 2 3 4\nctxt 200\n")
        let sameScrape = try collect(
            makeCollector(StatCollector.descriptor, roots: tree.roots),
            roots: tree.roots,
            shared: shared
        )
        #expect(sameScrape.value("node_context_switches_total") == 100)
        let nextScrape = try collect(StatCollector.descriptor, roots: tree.roots)
        #expect(nextScrape.value("node_context_switches_total") == 200)
    }
}
