import Foundation
import Testing
import VigilCore

@testable import Collectors

/// A cgroup fixture tree and, computed independently from its files, what each family should say.
struct ContainersFixtureTree: Sendable, CustomTestStringConvertible {
    var testDescription: String { self.name }

    enum Layout {
        case hybrid
        case v1
        case v2
    }

    struct Entry {
        var id: String
        var kind: String
        var state: String?
        var netns: String?
    }

    let name: String
    let layout: Layout

    var base: String { fixturesDirectory + "/" + self.name }
    var roots: PathRoots { fixtureRoots(self.name) }

    var manifest: [Entry] {
        let data = FileManager.default.contents(atPath: self.base + "/containers.json")!
        let list = try! JSONSerialization.jsonObject(with: data) as! [[String: String]]
        return list.map { Entry(id: $0["id"]!, kind: $0["kind"]!, state: $0["state"], netns: $0["netns"]) }
    }

    func text(_ relative: String) -> String? {
        try? String(contentsOfFile: self.base + "/" + relative, encoding: .utf8)
    }

    /// `key value` lines with a numeric value.
    func keyed(_ relative: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in (self.text(relative) ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let value = Double(fields[1]) { values[String(fields[0])] = value }
        }
        return values
    }

    func number(_ relative: String) -> Double? {
        self.text(relative).flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The directory of a cgroup in a controller's hierarchy.
    func directory(_ controller: String, _ id: String) -> String {
        let suffix = id == "/" ? "" : id
        switch self.layout {
        case .v2: return "sys/fs/cgroup" + suffix
        case .v1 where controller == "cpu" || controller == "cpuacct": return "sys/fs/cgroup/cpu,cpuacct" + suffix
        default: return "sys/fs/cgroup/\(controller)" + suffix
        }
    }

    func pressure(_ id: String, _ file: String, _ line: String) -> Double? {
        let directory =
            self.layout == .v2 ? self.directory("unified", id) : "sys/fs/cgroup/unified" + (id == "/" ? "" : id)
        guard let text = self.text(directory + "/" + file) else { return nil }
        for row in text.split(separator: "\n") where row.hasPrefix(line + " ") {
            let total = row.split(separator: " ").first { $0.hasPrefix("total=") }!
            return Double(total.dropFirst(6))! / 1e6
        }
        return nil
    }

    /// The first process of the cgroup, where cAdvisor reads the network.
    func firstPID(_ id: String) -> String? {
        let directory = self.directory("memory", id)
        let procs = self.text(directory + "/cgroup.procs") ?? ""
        if let first = procs.split(separator: "\n").first { return String(first) }
        return self.text(directory + "/container/cgroup.procs")?.split(separator: "\n").first.map(String.init)
    }

    /// `interface` → eight net/dev counters, without the interfaces cAdvisor ignores.
    func netDev(pid: String) -> [String: [Double]] {
        var interfaces: [String: [Double]] = [:]
        for line in (self.text("proc/\(pid)/net/dev") ?? "").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            guard !["lo", "veth", "docker", "nerdctl"].contains(where: { name.hasPrefix($0) }) else { continue }
            let fields = parts[1].split(separator: " ").compactMap { Double($0) }
            interfaces[name] = [
                fields[0], fields[1], fields[2], fields[3], fields[8], fields[9], fields[10], fields[11],
            ]
        }
        return interfaces
    }

    /// `major:minor` → operation → value of the blkio (or io.stat) figures cAdvisor reads.
    func io(_ id: String, operations: Bool) -> [String: [String: Double]] {
        var devices: [String: [String: Double]] = [:]
        if self.layout == .v2 {
            for line in (self.text(self.directory("io", id) + "/io.stat") ?? "").split(separator: "\n") {
                let fields = line.split(separator: " ")
                for field in fields.dropFirst() {
                    let pair = field.split(separator: "=")
                    let key = String(pair[0])
                    let operation =
                        operations
                        ? ["rios": "Read", "wios": "Write"][key] : ["rbytes": "Read", "wbytes": "Write"][key]
                    if let operation { devices[String(fields[0]), default: [:]][operation] = Double(pair[1]) }
                }
            }
            return devices
        }
        let directory = self.directory("blkio", id)
        for prefix in ["blkio.bfq.", "blkio.", "blkio.throttle."] {
            let file = directory + "/" + prefix + (operations ? "io_serviced_recursive" : "io_service_bytes_recursive")
            for line in (self.text(file) ?? "").split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count == 3 { devices[String(fields[0]), default: [:]][String(fields[1])] = Double(fields[2]) }
            }
            if !devices.isEmpty { break }
        }
        return devices
    }

    /// What a sample of `family` for cgroup `id` should be, from the cgroup's files.
    func expected(_ family: String, id: String, sample: ParsedSample) -> Double? {
        let isRoot = id == "/"
        if self.layout == .v2 {
            let directory = self.directory("", id)
            let cpu = self.keyed(directory + "/cpu.stat")
            let memory = self.keyed(directory + "/memory.stat")
            let usage = self.number(directory + "/memory.current") ?? (memory["anon"]! + memory["file"]!)
            let cpuMax = self.text(directory + "/cpu.max")?.split(separator: " ")
            switch family {
            case "container_cpu_usage_seconds_total": return cpu["usage_usec"]! / 1e6
            case "container_cpu_user_seconds_total": return cpu["user_usec"]! / 1e6
            case "container_cpu_system_seconds_total": return cpu["system_usec"]! / 1e6
            case "container_cpu_cfs_periods_total": return cpu["nr_periods"]
            case "container_cpu_cfs_throttled_periods_total": return cpu["nr_throttled"]
            case "container_cpu_cfs_throttled_seconds_total": return cpu["throttled_usec"]! / 1e6
            case "container_memory_usage_bytes": return usage
            case "container_memory_working_set_bytes": return max(0, usage - memory["inactive_file"]!)
            case "container_memory_rss": return memory["anon"]
            case "container_memory_cache": return memory["file"]
            case "container_memory_mapped_file": return memory["file_mapped"]
            case "container_memory_swap": return isRoot ? 0 : self.number(directory + "/memory.swap.current")
            case "container_memory_max_usage_bytes": return isRoot ? 0 : self.number(directory + "/memory.peak")
            case "container_memory_failcnt": return 0  // cAdvisor has no v2 source
            case "container_memory_total_active_file_bytes": return memory["active_file"]
            case "container_memory_total_inactive_file_bytes": return memory["inactive_file"]
            case "container_memory_failures_total":
                return memory[sample[label: "failure_type"]!]
            case "container_oom_events_total": return self.keyed(directory + "/memory.events")["oom_kill"]
            case "container_threads": return self.number(directory + "/pids.current")
            case "container_threads_max": return self.number(directory + "/pids.max") ?? 0
            case "container_spec_cpu_period": return cpuMax.flatMap { Double($0[1].trimmingCharacters(in: .newlines)) }
            case "container_spec_cpu_quota": return cpuMax.flatMap { Double($0[0]) }
            case "container_spec_cpu_shares":
                return self.number(directory + "/cpu.weight").map { 2 + floor(($0 - 1) * 262_142 / 9999) }
            case "container_spec_memory_limit_bytes": return self.number(directory + "/memory.max") ?? 0
            case "container_spec_memory_reservation_limit_bytes": return self.number(directory + "/memory.min")
            case "container_spec_memory_swap_limit_bytes": return self.number(directory + "/memory.swap.max") ?? 0
            default: return self.common(family, id: id, sample: sample)
            }
        }
        let cpuacct = self.directory("cpuacct", id)
        let cpu = self.directory("cpu", id)
        let memoryDirectory = self.directory("memory", id)
        let memory = self.keyed(memoryDirectory + "/memory.stat")
        let usage = self.number(memoryDirectory + "/memory.usage_in_bytes")!
        switch family {
        case "container_cpu_usage_seconds_total": return self.number(cpuacct + "/cpuacct.usage")! / 1e9
        case "container_cpu_user_seconds_total": return self.keyed(cpuacct + "/cpuacct.stat")["user"]! / 100
        case "container_cpu_system_seconds_total": return self.keyed(cpuacct + "/cpuacct.stat")["system"]! / 100
        case "container_cpu_cfs_periods_total": return self.keyed(cpu + "/cpu.stat")["nr_periods"]
        case "container_cpu_cfs_throttled_periods_total": return self.keyed(cpu + "/cpu.stat")["nr_throttled"]
        case "container_cpu_cfs_throttled_seconds_total": return self.keyed(cpu + "/cpu.stat")["throttled_time"]! / 1e9
        case "container_memory_usage_bytes": return usage
        case "container_memory_working_set_bytes": return max(0, usage - memory["total_inactive_file"]!)
        case "container_memory_rss": return memory["total_rss"]
        case "container_memory_cache": return memory["total_cache"]
        case "container_memory_mapped_file": return memory["total_mapped_file"]
        case "container_memory_swap": return memory["total_swap"]
        case "container_memory_max_usage_bytes": return self.number(memoryDirectory + "/memory.max_usage_in_bytes")
        case "container_memory_failcnt": return self.number(memoryDirectory + "/memory.failcnt")
        case "container_memory_total_active_file_bytes": return memory["total_active_file"]
        case "container_memory_total_inactive_file_bytes": return memory["total_inactive_file"]
        case "container_memory_failures_total":
            let key = sample[label: "failure_type"]!
            return sample[label: "scope"] == "container" ? memory[key] : memory["total_" + key]
        case "container_oom_events_total": return self.keyed(memoryDirectory + "/memory.oom_control")["oom_kill"]
        case "container_threads": return self.number(self.directory("pids", id) + "/pids.current")
        case "container_threads_max": return self.number(self.directory("pids", id) + "/pids.max") ?? 0
        case "container_spec_cpu_period": return self.number(cpu + "/cpu.cfs_period_us")
        case "container_spec_cpu_quota": return self.number(cpu + "/cpu.cfs_quota_us").flatMap { $0 > 0 ? $0 : nil }
        case "container_spec_cpu_shares": return self.number(cpu + "/cpu.shares")
        case "container_spec_memory_limit_bytes":
            return self.number(memoryDirectory + "/memory.limit_in_bytes").map { $0 > 0x1p62 ? 0 : $0 }
        case "container_spec_memory_reservation_limit_bytes":
            return self.number(memoryDirectory + "/memory.soft_limit_in_bytes").map { $0 > 0x1p62 ? 0 : $0 }
        case "container_spec_memory_swap_limit_bytes":
            return self.number(memoryDirectory + "/memory.memsw.limit_in_bytes").map { $0 > 0x1p62 ? 0 : $0 }
        default: return self.common(family, id: id, sample: sample)
        }
    }

    func common(_ family: String, id: String, sample: ParsedSample) -> Double? {
        let pressure: [String: (String, String)] = [
            "container_pressure_cpu_stalled_seconds_total": ("cpu.pressure", "full"),
            "container_pressure_cpu_waiting_seconds_total": ("cpu.pressure", "some"),
            "container_pressure_memory_stalled_seconds_total": ("memory.pressure", "full"),
            "container_pressure_memory_waiting_seconds_total": ("memory.pressure", "some"),
            "container_pressure_io_stalled_seconds_total": ("io.pressure", "full"),
            "container_pressure_io_waiting_seconds_total": ("io.pressure", "some"),
        ]
        if let (file, line) = pressure[family] { return self.pressure(id, file, line) }
        let network = [
            "receive_bytes", "receive_packets", "receive_errors", "receive_packets_dropped", "transmit_bytes",
            "transmit_packets", "transmit_errors", "transmit_packets_dropped",
        ]
        if let index = network.firstIndex(where: { family == "container_network_\($0)_total" }) {
            let pid = id == "/" ? "1" : self.firstPID(id)!
            return self.netDev(pid: pid)[sample[label: "interface"]!]?[index]
        }
        let device = sample[label: "major"].map { "\($0):\(sample[label: "minor"]!)" } ?? "254:0"
        switch family {
        case "container_processes":
            return Double(
                (self.text(self.directory("memory", id) + "/cgroup.procs") ?? "").split(separator: "\n").count
            )
        case "container_blkio_device_usage_total":
            return self.io(id, operations: false)[device]?[sample[label: "operation"]!]
        case "container_fs_reads_bytes_total": return self.io(id, operations: false)[device]?["Read"]
        case "container_fs_writes_bytes_total": return self.io(id, operations: false)[device]?["Write"]
        case "container_fs_reads_total": return self.io(id, operations: true)[device]?["Read"]
        case "container_fs_writes_total": return self.io(id, operations: true)[device]?["Write"]
        default: return nil
        }
    }
}

let cgroupTrees = [
    ContainersFixtureTree(name: "cgroup-hybrid", layout: .hybrid),
    ContainersFixtureTree(name: "cgroup-v1", layout: .v1),
    ContainersFixtureTree(name: "cgroup-v2", layout: .v2),
]

@Suite struct ContainersFixtureTests {
    @Test(arguments: cgroupTrees)
    func everyValueMatchesTheFilesItCameFrom(tree: ContainersFixtureTree) throws {
        let collected = try collect(
            ContainersCollector.descriptor,
            roots: tree.roots,
            settings: [
                "collector.containers.process-metrics": .bool(true),
                "collector.containers.hybrid-pressure": .bool(true),
            ]
        )
        #expect(collected.failures.isEmpty)
        var checked = 0
        for family in collected.families
        where family.name.hasPrefix("container_") && family.name != "container_last_seen" {
            for sample in family.samples {
                let id = try #require(sample[label: "id"])
                let expected = tree.expected(family.name, id: id, sample: sample)
                #expect(expected == sample.value, "\(family.name) \(sample.labels)")
                checked += 1
            }
        }
        #expect(checked > 300)
    }

    @Test(arguments: cgroupTrees)
    func reportsTheRootContainersAndPodsButNotOtherCgroups(tree: ContainersFixtureTree) throws {
        let collected = try collect(ContainersCollector.descriptor, roots: tree.roots)
        let reported = Set(try #require(collected[family: "container_last_seen"]).samples.map { $0[label: "id"]! })
        let expected =
            ["/"]
            + tree.manifest.filter { ["docker", "containerd", "crio", "podman", "pod"].contains($0.kind) }.map(\.id)
        #expect(reported == Set(expected))
        // Every container has the core families.
        for id in expected {
            for family in ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes"] {
                #expect(
                    collected[family: family]?.samples.contains { $0[label: "id"] == id } == true,
                    "\(family) \(id)"
                )
            }
        }
        #expect(collected.value("container_cpu_usage_seconds_total", ["id": "/", "cpu": "total"]) != nil)
    }

    @Test(arguments: cgroupTrees)
    func processMetricsOnlyWhenAskedFor(tree: ContainersFixtureTree) throws {
        let processFamilies = ["container_processes", "container_threads", "container_threads_max"]
        let quiet = try collect(ContainersCollector.descriptor, roots: tree.roots)
        for family in processFamilies { #expect(quiet[family: family] == nil, "\(family)") }
        let asked = try collect(
            ContainersCollector.descriptor,
            roots: tree.roots,
            settings: ["collector.containers.process-metrics": .bool(true)]
        )
        let docker = try #require(tree.manifest.first { $0.kind == "docker" })
        for family in processFamilies {
            #expect(asked.value(family, ["id": docker.id]) != nil, "\(family)")
        }
        // Everything else is the same (but for the time a container was last seen).
        func others(_ collected: Collected) -> [ParsedFamily] {
            collected.families.filter { !processFamilies.contains($0.name) && $0.name != "container_last_seen" }
        }
        #expect(others(quiet) == others(asked))
    }

    @Test(arguments: cgroupTrees)
    func withAllCgroupsSlicesAndServicesAppearByIdOnly(tree: ContainersFixtureTree) throws {
        let collected = try collect(
            ContainersCollector.descriptor,
            roots: tree.roots,
            settings: ["collector.cgroups.all": .bool(true)]
        )
        let samples = try #require(collected[family: "container_last_seen"]).samples
        let reported = Set(samples.map { $0[label: "id"]! })
        let expected = ["/"] + tree.manifest.filter { $0.kind != "vanished" }.map(\.id)
        #expect(reported == Set(expected))
        for entry in tree.manifest where entry.kind == "other" || entry.kind == "kubepods" {
            let sample = try #require(samples.first { $0[label: "id"] == entry.id })
            #expect(sample.labels.map(\.name) == ["id"])
        }
    }

    @Test(arguments: cgroupTrees)
    func namesImagesAndKubernetesLabelsComeFromTheStateFiles(tree: ContainersFixtureTree) throws {
        let collected = try collect(ContainersCollector.descriptor, roots: tree.roots)
        let samples = try #require(collected[family: "container_last_seen"]).samples
        var pods: [String: (String, String)] = [:]
        for entry in tree.manifest where ["docker", "containerd", "crio", "podman"].contains(entry.kind) {
            let sample = try #require(samples.first { $0[label: "id"] == entry.id })
            var expected: [String: String] = ["id": entry.id]
            if let state = entry.state, let data = FileManager.default.contents(atPath: tree.base + "/" + state),
                let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                if entry.kind == "docker" {
                    let config = json["Config"] as! [String: Any]
                    let labels = config["Labels"] as! [String: String]
                    expected["name"] = String((json["Name"] as! String).dropFirst())
                    expected["image"] = config["Image"] as? String
                    expected["pod"] = labels["io.kubernetes.pod.name"]
                } else {
                    let annotations = json["annotations"] as! [String: String]
                    if entry.kind == "containerd" {
                        expected["name"] = String(
                            entry.id.split(separator: "/").last!.split(separator: "-").last!.prefix(64)
                        )
                        expected["image"] = annotations["io.kubernetes.cri.image-name"]
                        expected["pod"] = annotations["io.kubernetes.cri.sandbox-name"]
                        expected["namespace"] = annotations["io.kubernetes.cri.sandbox-namespace"]
                        expected["container"] = annotations["io.kubernetes.cri.container-name"]
                    } else if let labelsJSON = annotations["io.kubernetes.cri-o.Labels"] {
                        let labels = try JSONSerialization.jsonObject(with: Data(labelsJSON.utf8)) as! [String: String]
                        expected["name"] = annotations["io.kubernetes.cri-o.Name"]
                        expected["image"] = annotations["io.kubernetes.cri-o.ImageName"]
                        expected["pod"] = labels["io.kubernetes.pod.name"]
                        expected["namespace"] = labels["io.kubernetes.pod.namespace"]
                        expected["container"] = labels["io.kubernetes.container.name"]
                    }
                }
                if let pod = expected["pod"], let namespace = expected["namespace"] {
                    pods[String(entry.id.split(separator: "/").dropLast().joined(separator: "/"))] = (pod, namespace)
                }
            }
            var actual: [String: String] = [:]
            for label in sample.labels { actual[label.name] = label.value }
            #expect(actual == expected.filter { !$0.value.isEmpty }, "\(entry.id)")
        }
        // Pod cgroups are labelled with their pod, known from the containers in them.
        for (path, (pod, namespace)) in pods {
            let sample = try #require(samples.first { $0[label: "id"] == "/" + path })
            #expect(sample[label: "pod"] == pod)
            #expect(sample[label: "namespace"] == namespace)
            #expect(sample[label: "container"] == nil)
        }
        #expect(!pods.isEmpty)
    }

    @Test(arguments: cgroupTrees)
    func networkOnlyForContainersThatOwnTheirNamespace(tree: ContainersFixtureTree) throws {
        let collected = try collect(ContainersCollector.descriptor, roots: tree.roots)
        let samples = try #require(collected[family: "container_network_receive_bytes_total"]).samples
        let withNetwork = Set(samples.map { $0[label: "id"]! })
        let owners = ["/"] + tree.manifest.filter { $0.netns != nil }.map(\.id)
        #expect(withNetwork == Set(owners))
        for id in owners {
            let pid = id == "/" ? "1" : tree.firstPID(id)!
            #expect(
                Set(samples.filter { $0[label: "id"] == id }.map { $0[label: "interface"]! })
                    == Set(tree.netDev(pid: pid).keys)
            )
        }
    }

    @Test func theHybridHostsDecoyDirectoriesAreNotRead() throws {
        let tree = cgroupTrees[0]
        let collected = try collect(ContainersCollector.descriptor, roots: tree.roots)
        let web = try #require(tree.manifest.first { $0.kind == "docker" })
        // The decoy `cpu,cpuacct` holds a cpuacct.usage of 1 ns for the same container.
        #expect(tree.number("sys/fs/cgroup/cpu,cpuacct\(web.id)/cpuacct.usage") == 1)
        #expect(
            collected.value("container_cpu_usage_seconds_total", ["id": web.id])
                == tree.number("sys/fs/cgroup/cpuacct\(web.id)/cpuacct.usage")! / 1e9
        )
        // No pressure on a hybrid host by default, as cAdvisor; when asked for, from the unified tree.
        #expect(collected[family: "container_pressure_io_waiting_seconds_total"] == nil)
        let asked = try collect(
            ContainersCollector.descriptor,
            roots: tree.roots,
            settings: ["collector.containers.hybrid-pressure": .bool(true)]
        )
        #expect(
            asked.value("container_pressure_io_waiting_seconds_total", ["id": web.id])
                == tree.pressure(web.id, "io.pressure", "some")
        )
    }

    @Test func blkioFiguresComeFromTheFirstGroupThatHasThem() throws {
        let tree = cgroupTrees[1]
        let collected = try collect(ContainersCollector.descriptor, roots: tree.roots)
        let docker = try #require(tree.manifest.first { $0.kind == "docker" })
        let kubernetes = try #require(tree.manifest.first { $0.kind == "containerd" })
        func read(_ id: String, _ file: String) -> Double? {
            let line = tree.text(tree.directory("blkio", id) + "/" + file)?.split(separator: "\n").first {
                $0.contains(" Read ")
            }
            return line.flatMap { Double($0.split(separator: " ")[2]) }
        }
        let labels = ["device": "/dev/vda", "operation": "Read"]
        // BFQ has figures for the Docker container, none for the Kubernetes one.
        #expect(read(docker.id, "blkio.bfq.io_service_bytes_recursive") != nil)
        #expect(read(kubernetes.id, "blkio.bfq.io_service_bytes_recursive") == nil)
        #expect(
            collected.value("container_blkio_device_usage_total", labels.merging(["id": docker.id]) { $1 })
                == read(docker.id, "blkio.bfq.io_service_bytes_recursive")
        )
        #expect(
            collected.value("container_blkio_device_usage_total", labels.merging(["id": kubernetes.id]) { $1 })
                == read(kubernetes.id, "blkio.throttle.io_service_bytes_recursive")
        )
    }

    @Test func maxAndUnlimitedValuesAreReportedAsCAdvisorDoes() throws {
        let tree = cgroupTrees[2]
        let collected = try collect(
            ContainersCollector.descriptor,
            roots: tree.roots,
            settings: ["collector.containers.process-metrics": .bool(true)]
        )
        let rootless = try #require(tree.manifest.first { $0.kind == "podman" })
        #expect(tree.text(tree.directory("", rootless.id) + "/memory.max") == "max\n")
        #expect(tree.text(tree.directory("", rootless.id) + "/cpu.max") == "max 100000\n")
        #expect(collected.value("container_spec_memory_limit_bytes", ["id": rootless.id]) == 0)
        #expect(collected.value("container_spec_memory_swap_limit_bytes", ["id": rootless.id]) == 0)
        #expect(collected.value("container_threads_max", ["id": rootless.id]) == 0)
        #expect(collected.value("container_spec_cpu_period", ["id": rootless.id]) == 100_000)
        #expect(collected.value("container_spec_cpu_quota", ["id": rootless.id]) == nil)
        #expect(collected.value("container_cpu_cfs_periods_total", ["id": rootless.id]) == nil)
        // Rootless Podman keeps its processes in the scope's `container` child: the network is found there.
        #expect(
            collected.value("container_network_receive_bytes_total", ["id": rootless.id, "interface": "tap0"]) != nil
        )
    }

    @Test func oddCasesCostNothingButTheirOwnValues() throws {
        let tree = cgroupTrees[0]
        let collected = try collect(ContainersCollector.descriptor, roots: tree.roots)
        #expect(collected.failures.isEmpty)
        let docker = tree.manifest.filter { $0.kind == "docker" }
        // A half-written state file: the series appear with their id only.
        let half = try #require(docker.first { $0.state != nil && tree.text($0.state!)!.count == 300 })
        let halfSample = try #require(
            collected[family: "container_last_seen"]?.samples.first { $0[label: "id"] == half.id }
        )
        #expect(halfSample.labels.map(\.name) == ["id"])
        // Unexpected keys and broken lines in memory.stat and cpu.stat: the known keys still count.
        let odd = try #require(docker.first { $0.state == nil })
        #expect(tree.text(tree.directory("memory", odd.id) + "/memory.stat")!.contains("future_counter"))
        #expect(
            collected.value("container_memory_rss", ["id": odd.id])
                == tree.keyed(tree.directory("memory", odd.id) + "/memory.stat")["total_rss"]
        )
        #expect(collected.value("container_cpu_cfs_periods_total", ["id": odd.id]) != nil)
        // The vanished container is not reported.
        let vanished = try #require(tree.manifest.first { $0.kind == "vanished" })
        #expect(collected[family: "container_last_seen"]?.samples.contains { $0[label: "id"] == vanished.id } == false)
    }

    @Test func machineFamilies() throws {
        let collected = try collect(ContainersCollector.descriptor, roots: cgroupTrees[0].roots)
        let labels = [
            "machine_id": cgroupTrees[0].text("root/etc/machine-id")!.trimmingCharacters(in: .newlines),
            "boot_id": cgroupTrees[0].text("proc/sys/kernel/random/boot_id")!.trimmingCharacters(in: .newlines),
        ]
        #expect(collected.value("machine_cpu_cores", labels) == 2)
        let memTotal = trees0MemTotal()
        #expect(collected.value("machine_memory_bytes", labels) == memTotal)
    }

    private func trees0MemTotal() -> Double {
        let line = cgroupTrees[0].text("proc/meminfo")!.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }!
        return Double(line.split(separator: " ")[1])! * 1024
    }

    @Test func familiesHaveCAdvisorsTypes() throws {
        let collected = try collect(ContainersCollector.descriptor, roots: cgroupTrees[2].roots)
        for family in collected.families {
            let counter = family.name.hasSuffix("_total") || family.name == "container_memory_failcnt"
            #expect(family.type == (counter ? "counter" : "gauge"), "\(family.name)")
        }
        #expect(collected.families.count >= 45)
    }

    @Test func noCgroupMountIsNoDataReportedQuietly() throws {
        let base = NSTemporaryDirectory() + "vigil-containers-\(getpid())-nocgroup"
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base + "/proc/self", withIntermediateDirectories: true)
        try "22 27 0:21 / /proc rw,relatime - proc proc rw\n".write(
            toFile: base + "/proc/self/mountinfo",
            atomically: true,
            encoding: .utf8
        )
        let roots = PathRoots(procfs: base + "/proc", sysfs: base + "/sys", rootfs: base)
        expectNoData(ContainersCollector.descriptor, roots: roots)
    }
}
