import Foundation
import Testing
import VigilCore

@testable import Collectors

/// A private copy of a fixture tree under /tmp, changed by the test between collections.
private final class TreeCopy {
    let base: String
    let roots: PathRoots
    let manifest: [[String: String]]

    init(_ tree: String, _ label: String) throws {
        self.base = NSTemporaryDirectory() + "vigil-containers-\(getpid())-\(label)"
        try? FileManager.default.removeItem(atPath: self.base)
        try FileManager.default.copyItem(atPath: fixturesDirectory + "/" + tree, toPath: self.base)
        self.roots = PathRoots(procfs: self.base + "/proc", sysfs: self.base + "/sys", rootfs: self.base + "/root")
        let data = try Data(contentsOf: URL(fileURLWithPath: self.base + "/containers.json"))
        self.manifest = try JSONSerialization.jsonObject(with: data) as! [[String: String]]
    }

    deinit {
        try? FileManager.default.removeItem(atPath: self.base)
    }

    func entry(_ kind: String, where predicate: ([String: String]) -> Bool = { _ in true }) -> [String: String] {
        self.manifest.first { $0["kind"] == kind && predicate($0) }!
    }

    func write(_ relative: String, _ text: String) throws {
        try text.write(toFile: self.base + "/" + relative, atomically: false, encoding: .utf8)
    }

    func read(_ relative: String) throws -> String {
        try String(contentsOfFile: self.base + "/" + relative, encoding: .utf8)
    }

    /// Gives a process a network namespace and an `eth0` that received `bytes`.
    func writeProcess(_ pid: String, namespace: String, receivedBytes bytes: Int) throws {
        let directory = self.base + "/proc/\(pid)"
        try? FileManager.default.removeItem(atPath: directory + "/ns/net")
        try FileManager.default.createDirectory(atPath: directory + "/ns", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/net", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory + "/ns/net", withDestinationPath: namespace)
        try self.write(
            "proc/\(pid)/net/dev",
            "Inter-|   Receive |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast"
                + "|bytes    packets errs drop fifo colls carrier compressed\n"
                + "  eth0: \(bytes) 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n"
        )
    }

    /// Removes a cgroup from every hierarchy.
    func removeCgroup(_ id: String) throws {
        for hierarchy in try FileManager.default.contentsOfDirectory(atPath: self.base + "/sys/fs/cgroup") {
            try? FileManager.default.removeItem(atPath: self.base + "/sys/fs/cgroup/\(hierarchy)\(id)")
        }
    }
}

@Suite struct ContainersCacheTests {
    private func name(_ collected: Collected, _ id: String) -> String? {
        collected[family: "container_last_seen"]?.samples.first { $0[label: "id"] == id }?[label: "name"]
    }

    @Test func stateFilesAreReadOnceAndForgottenWithTheirContainer() throws {
        let tree = try TreeCopy("cgroup-hybrid", "metadata")
        let web = tree.entry("docker") { $0["netns"] != nil }
        let collector = ContainersCollector(all: false)
        #expect(self.name(try collect(collector, roots: tree.roots), web["id"]!) == "web")
        let known = collector.state.metadata.count
        // Renaming in the state file is not seen: the file is not read again.
        try tree.write(
            web["state"]!,
            try tree.read(web["state"]!).replacingOccurrences(of: "\"/web\"", with: "\"/renamed\"")
        )
        #expect(self.name(try collect(collector, roots: tree.roots), web["id"]!) == "web")
        // Once the container is gone, so is its entry.
        try tree.removeCgroup(web["id"]!)
        let after = try collect(collector, roots: tree.roots)
        #expect(self.name(after, web["id"]!) == nil)
        #expect(collector.state.metadata.count == known - 1)
    }

    @Test func aHalfWrittenStateFileIsReadAgainAtTheNextScrape() throws {
        let tree = try TreeCopy("cgroup-hybrid", "halfwritten")
        let truncated = tree.entry("docker") { $0["state"] != nil && (try? tree.read($0["state"]!).count) == 300 }
        let collector = ContainersCollector(all: false)
        #expect(self.name(try collect(collector, roots: tree.roots), truncated["id"]!) == nil)
        // The runtime finishes writing the file.
        let id = String(truncated["id"]!.split(separator: "/").last!)
        try tree.write(truncated["state"]!, #"{"ID":"\#(id)","Config":{"Image":"busybox"},"Name":"/half"}"#)
        #expect(self.name(try collect(collector, roots: tree.roots), truncated["id"]!) == "half")
    }

    @Test func limitsAreKeptForTheirMaxAge() throws {
        let tree = try TreeCopy("cgroup-v2", "spec")
        let docker = tree.entry("docker")
        let weight = "sys/fs/cgroup\(docker["id"]!)/cpu.weight"
        let cached = ContainersCollector(all: false, specMaxAge: .seconds(3600))
        let fresh = ContainersCollector(all: false, specMaxAge: .zero)
        let before = try collect(cached, roots: tree.roots).value("container_spec_cpu_shares", ["id": docker["id"]!])
        _ = try collect(fresh, roots: tree.roots)
        try tree.write(weight, "10000\n")
        #expect(
            try collect(cached, roots: tree.roots).value("container_spec_cpu_shares", ["id": docker["id"]!]) == before
        )
        #expect(
            try collect(fresh, roots: tree.roots).value("container_spec_cpu_shares", ["id": docker["id"]!]) == 262_144
        )
    }

    /// The limits of cgroups found together are read again over the max age that follows, some at a
    /// time: not all of them at one scrape (a scrape that costs more than the others every max age).
    @Test func limitsOfCgroupsFoundTogetherAreReadAgainAtStaggeredTimes() throws {
        let tree = try TreeCopy("cgroup-v2", "staggered")
        let collector = ContainersCollector(all: false, specMaxAge: .seconds(3))
        let first = try collect(collector, roots: tree.roots)
        let limited = first[family: "container_spec_cpu_shares"]!.samples.compactMap { $0[label: "id"] }
        #expect(limited.count >= 6)
        try #require(first[family: "container_spec_cpu_shares"]!.samples.allSatisfy { $0.value != 262_144 })
        for id in limited { try tree.write("sys/fs/cgroup\(id)/cpu.weight", "10000\n") }
        // Half the max age on: some limits have been read again, not all.
        Thread.sleep(forTimeInterval: 1.5)
        let second = try collect(collector, roots: tree.roots)
        let readAgain = second[family: "container_spec_cpu_shares"]!.samples.filter { $0.value == 262_144 }
        #expect(readAgain.count > 0 && readAgain.count < limited.count, "\(readAgain.count) of \(limited.count)")
        // One max age on, every one has.
        Thread.sleep(forTimeInterval: 1.6)
        let third = try collect(collector, roots: tree.roots)
        #expect(third[family: "container_spec_cpu_shares"]!.samples.allSatisfy { $0.value == 262_144 })
    }

    @Test func aCgroupRemovedBetweenTheListingAndTheReadsIsSkipped() throws {
        let tree = try TreeCopy("cgroup-hybrid", "vanish")
        let mounts = parseCgroupMounts(try FileReader().read(tree.base + "/proc/self/mountinfo"), paths: tree.roots)
        let found = walkCgroups(try #require(mounts.walked), all: false)
        let db = tree.entry("docker") { $0["id"]!.contains("system.slice") }
        #expect(found.contains { $0.path == db["id"]! })
        try tree.removeCgroup(db["id"]!)
        let files = CgroupFiles(budget: 100)
        var reader = CgroupStatsReader(mounts: mounts, files: files, processes: true, absent: [])
        let gone: Set = [db["id"]!, tree.entry("vanished")["id"]!]
        for cgroup in found {
            let stats = reader.read(files.entry(for: cgroup), cachedSpec: nil)
            #expect(stats.isEmpty == gone.contains(cgroup.path), "\(cgroup.path)")
        }
        #expect(reader.errorCount == 0)
        // Nothing was learnt from the vanished cgroup: its missing files are not taken as absent on this host.
        #expect(reader.newlyAbsent.isSubset(of: ["blkio.io_service_bytes_recursive"]))
        // A walk of a directory that is gone finds nothing, without an error.
        #expect(subdirectories(of: tree.base + "/sys/fs/cgroup/memory/no-such-cgroup").isEmpty)
    }

    @Test func filesThisHostLacksAreProbedOnceUntilTheirMaxAge() throws {
        let tree = try TreeCopy("cgroup-v2", "absent")
        let cgroups = tree.manifest.filter { $0["kind"] != "vanished" }.map { "sys/fs/cgroup\($0["id"]!)/memory.peak" }
        for peak in cgroups { try? FileManager.default.removeItem(atPath: tree.base + "/" + peak) }
        let collector = ContainersCollector(all: false, specMaxAge: .seconds(3600))
        let docker = tree.entry("docker")["id"]!
        #expect(
            try collect(collector, roots: tree.roots).value("container_memory_max_usage_bytes", ["id": docker]) == 0
        )
        #expect(collector.state.absentFiles(now: .now, maxAge: .seconds(3600)) == ["memory.peak"])
        // Had the file been probed again, it would be read now.
        for peak in cgroups { try tree.write(peak, "12345\n") }
        #expect(
            try collect(collector, roots: tree.roots).value("container_memory_max_usage_bytes", ["id": docker]) == 0
        )
        let forgetful = ContainersCollector(all: false, specMaxAge: .zero)
        #expect(
            try collect(forgetful, roots: tree.roots).value("container_memory_max_usage_bytes", ["id": docker]) == 12345
        )
    }

    @Test func unreadableCgroupFilesAreReportedAsAFailureButCostOnlyTheirValues() throws {
        let tree = try TreeCopy("cgroup-v2", "unreadable")
        let docker = tree.entry("docker")["id"]!
        // A directory where a file is expected: open succeeds, read fails with EISDIR (as root too).
        let path = tree.base + "/sys/fs/cgroup\(docker)/memory.stat"
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let collected = try collect(ContainersCollector(all: false), roots: tree.roots)
        #expect(collected.failures.count == 1)
        #expect(collected.failures.first?.contains("memory.stat") == true)
        #expect(collected.value("container_cpu_usage_seconds_total", ["id": docker]) != nil)
        #expect(collected.value("container_memory_rss", ["id": docker]) == nil)
    }

    @Test func theNetworkIsReadThroughTheSameProcessUntilItIsGone() throws {
        let tree = try TreeCopy("cgroup-v2", "pid")
        let docker = tree.entry("docker") { $0["netns"] != nil }
        let id = docker["id"]!
        let procs = "sys/fs/cgroup\(id)/cgroup.procs"
        let first = String(try tree.read(procs).split(separator: "\n")[0])
        let labels = ["id": id, "interface": "eth0"]
        try tree.writeProcess(first, namespace: docker["netns"]!, receivedBytes: 1000)
        try tree.writeProcess("99001", namespace: docker["netns"]!, receivedBytes: 2000)
        try tree.writeProcess("99002", namespace: docker["netns"]!, receivedBytes: 3000)
        let collector = ContainersCollector(all: false)
        #expect(
            try collect(collector, roots: tree.roots).value("container_network_receive_bytes_total", labels) == 1000
        )
        // cgroup.procs is not read again while the process lives in the same namespace.
        try tree.write(procs, "99001\n")
        #expect(
            try collect(collector, roots: tree.roots).value("container_network_receive_bytes_total", labels) == 1000
        )
        // Once it is gone, the cgroup's first process now.
        try FileManager.default.removeItem(atPath: tree.base + "/proc/\(first)")
        #expect(
            try collect(collector, roots: tree.roots).value("container_network_receive_bytes_total", labels) == 2000
        )
        // A pid in another namespace is not the container's process any more (the pid was reused).
        try tree.write(procs, "99002\n")
        try tree.writeProcess("99001", namespace: "net:[4026539999]", receivedBytes: 4000)
        #expect(
            try collect(collector, roots: tree.roots).value("container_network_receive_bytes_total", labels) == 3000
        )
    }

    @Test func aContainerThatIsGoneIsForgottenWithItsDirectories() throws {
        let tree = try TreeCopy("cgroup-hybrid", "gone")
        let collector = ContainersCollector(all: false, keptDirectories: 1000)
        let web = tree.entry("docker") { $0["netns"] != nil }["id"]!
        _ = try collect(collector, roots: tree.roots)
        let (entries, kept) = collector.state.withFiles { ($0!.count, $0!.keptDirectories) }
        // The root reads through the hierarchies' own descriptors; the others keep up to four directories.
        #expect(kept > 0 && kept <= (entries - 1) * CgroupController.kept.count)
        try tree.removeCgroup(web)
        let collected = try collect(collector, roots: tree.roots)
        #expect(collected.value("container_cpu_usage_seconds_total", ["id": web]) == nil)
        let after = collector.state.withFiles { ($0!.count, $0!.keptDirectories) }
        #expect(after.0 == entries - 1)
        #expect(after.1 == kept - CgroupController.kept.count)
    }

    @Test func aCgroupCreatedAgainUnderItsPathIsReadAfresh() throws {
        let tree = try TreeCopy("cgroup-v2", "again")
        let docker = tree.entry("docker")["id"]!
        let collector = ContainersCollector(all: false, specMaxAge: .seconds(3600), keptDirectories: 1000)
        let before = try collect(collector, roots: tree.roots).value("container_spec_cpu_shares", ["id": docker])
        #expect(before != 262_144)
        // A new directory (a new inode) under the same path, with another weight.
        let directory = tree.base + "/sys/fs/cgroup" + docker
        try FileManager.default.copyItem(atPath: directory, toPath: directory + ".new")
        try FileManager.default.removeItem(atPath: directory)
        try FileManager.default.moveItem(atPath: directory + ".new", toPath: directory)
        try tree.write("sys/fs/cgroup\(docker)/cpu.weight", "10000\n")
        try tree.write("sys/fs/cgroup\(docker)/memory.current", "4242\n")
        let after = try collect(collector, roots: tree.roots)
        #expect(after.value("container_spec_cpu_shares", ["id": docker]) == 262_144)
        #expect(after.value("container_memory_usage_bytes", ["id": docker]) == 4242)
    }

    @Test(arguments: [0, 5, 9, 1000])
    func everyBudgetOfKeptDirectoriesReadsTheSameFigures(budget: Int) throws {
        let tree = cgroupTrees[0]
        let reference = try collect(ContainersCollector(all: true, processes: true), roots: tree.roots)
        let collector = ContainersCollector(all: true, processes: true, keptDirectories: budget)
        for _ in 0..<2 {
            let collected = try collect(collector, roots: tree.roots)
            #expect(collected.failures.isEmpty)
            #expect(
                collected.families.filter { $0.name != "container_last_seen" }
                    == reference.families.filter { $0.name != "container_last_seen" }
            )
            let kept = collector.state.withFiles { $0!.keptDirectories }
            #expect(kept <= budget)
            #expect(kept > budget - CgroupController.kept.count || budget > 100)
        }
    }

    @Test func aScrapeThatRunsWhileAnotherHasTheFilesKeepsNothing() throws {
        let state = ContainersState(keptDirectories: 100)
        let (first, shared) = state.checkOutFiles()
        let (second, alsoShared) = state.checkOutFiles()
        #expect(shared && !alsoShared)
        #expect(first.budget == 100 && second.budget == 0)
        state.checkIn(first)
        #expect(state.checkOutFiles().files === first)
    }

    @Test func swapIsNotReadOnAHostWithoutSwap() throws {
        let tree = try TreeCopy("cgroup-v2", "swap")
        let docker = tree.entry("docker")["id"]!
        let recorded = Double(
            try tree.read("sys/fs/cgroup\(docker)/memory.swap.current").trimmingCharacters(in: .newlines)
        )
        #expect(recorded! > 0)
        let collector = ContainersCollector(all: false)
        // No /proc/swaps: swap may be in use, the file is read.
        #expect(try collect(collector, roots: tree.roots).value("container_memory_swap", ["id": docker]) == recorded)
        try tree.write("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
        #expect(try collect(collector, roots: tree.roots).value("container_memory_swap", ["id": docker]) == 0)
        try tree.write(
            "proc/swaps",
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/vda2 partition\t1048572\t0\t-2\n"
        )
        #expect(try collect(collector, roots: tree.roots).value("container_memory_swap", ["id": docker]) == recorded)
    }

    @Test func theFamiliesWrittenAPieceAtATimeAreTheWholeText() throws {
        let roots = fixtureRoots("cgroup-v2")
        var writer = MetricWriter(format: .text)
        let context = scrapeContext(roots)
        try ContainersCollector(all: true).collect(into: &writer, context: context)
        let taken = writer.takeStreamed()
        let streamed = try #require(taken)
        var whole = MetricWriter(format: .text)
        streamed.writeAll(into: &whole)

        // A limit of one byte: each call writes one cgroup's samples (and the family's header before
        // the first), then stops.
        var rest = streamed
        var piece = MetricWriter(format: .text)
        var pieces: [UInt8] = []
        var calls = 0
        var done = false
        while !done {
            done = rest.write(into: &piece, until: 1)
            pieces += piece.bytes
            piece.removeAll()
            calls += 1
        }
        #expect(pieces == whole.bytes)
        let families = try parseExposition(pieces[...])
        #expect(calls > families.count * 2)
        #expect(Set(families.map(\.name)).isSubset(of: streamed.families.map(\.nameString)))
        #expect(families.contains { $0.name == "container_memory_working_set_bytes" && $0.samples.count > 5 })
    }
}
