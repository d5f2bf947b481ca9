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

    @Test func aCgroupRemovedBetweenTheListingAndTheReadsIsSkipped() throws {
        let tree = try TreeCopy("cgroup-hybrid", "vanish")
        let mounts = parseCgroupMounts(try FileReader().read(tree.base + "/proc/self/mountinfo"), paths: tree.roots)
        let found = walkCgroups(try #require(mounts.walked), all: false)
        let db = tree.entry("docker") { $0["id"]!.contains("system.slice") }
        #expect(found.contains { $0.path == db["id"]! })
        try tree.removeCgroup(db["id"]!)
        var reader = CgroupStatsReader(
            mounts: mounts,
            absent: []
        )
        let gone: Set = [db["id"]!, tree.entry("vanished")["id"]!]
        for cgroup in found {
            let stats = reader.read(cgroup.path, cachedSpec: nil)
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
}
