import Synchronization
import VigilCore

/// Per-container CPU, memory, IO, pressure and network figures read straight from cgroups, with
/// cAdvisor's family names and kubelet's labels (`id`, `name`, `image`, `pod`, `namespace`,
/// `container`), so that Kubernetes and Docker dashboards work unchanged.
///
/// Each scrape finds the cgroup mounts in mountinfo (re-read only after a mount changed), walks one
/// hierarchy (``walkCgroups(_:all:maxDepth:)``), identifies containers from their cgroup paths and
/// reads the files of each one's figures once. Names and images come from the runtimes' state files,
/// read once per container; limits are read again after ``specMaxAge``, a few cgroups' at a time;
/// each cgroup's directories stay open between scrapes (within a budget of descriptors), and so does
/// the knowledge of which process its network is read through. Labels with an empty value are left
/// out: Prometheus treats them as absent.
struct ContainersCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "containers",
        enabledByDefault: true,
        help: "container metrics from cgroups, compatible with cAdvisor",
        options: [
            OptionSpec(
                "collector.cgroups.all",
                .bool(false),
                help: "Also report cgroups that are not containers (systemd slices and services), by id only."
            ),
            OptionSpec(
                "collector.containers.process-metrics",
                .bool(false),
                help:
                    "Also report container_processes, container_threads and container_threads_max (cAdvisor's "
                    + "process metrics, off by default there too): two or three more files per container."
            ),
            OptionSpec(
                "collector.containers.hybrid-pressure",
                .bool(false),
                help:
                    "On a host whose controllers are on cgroup v1 (hybrid), also report container_pressure_* from "
                    + "the unified tree's pressure files (cAdvisor reports pressure on cgroup v2 hosts only): three "
                    + "more files per container."
            ),
        ]
    ) { setup in
        ContainersCollector(
            all: setup.settings.bool("collector.cgroups.all"),
            processes: setup.settings.bool("collector.containers.process-metrics"),
            hybridPressure: setup.settings.bool("collector.containers.hybrid-pressure")
        )
    }

    let all: Bool
    /// Whether cAdvisor's process metrics are written.
    let processes: Bool
    /// Whether a hybrid host's containers get pressure figures from the unified tree.
    let hybridPressure: Bool
    /// How long limits, and the knowledge of which optional files this host lacks, are kept.
    let specMaxAge: Duration
    let state: ContainersState

    /// - Parameter keptDirectories: most cgroup directories kept open; by default half the soft limit
    ///   of open files (``CgroupFiles/defaultBudget()``).
    init(
        all: Bool,
        processes: Bool = false,
        hybridPressure: Bool = false,
        specMaxAge: Duration = .seconds(60),
        keptDirectories: Int? = nil
    ) {
        self.all = all
        self.processes = processes
        self.hybridPressure = hybridPressure
        self.specMaxAge = specMaxAge
        self.state = ContainersState(keptDirectories: keptDirectories ?? CgroupFiles.defaultBudget())
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let now = ContinuousClock.now
        let mounts = cgroupMounts(try context.mountinfo(), paths: context.paths)
        guard let walked = mounts.walked, FileSystem.isDirectory(walked.path) else {
            throw CollectorError.noData("no cgroup file system is mounted")
        }
        let found = walkCgroups(walked, all: self.all)

        let (files, shared) = self.state.checkOutFiles()
        defer { if shared { self.state.checkIn(files) } }
        var reader = CgroupStatsReader(
            mounts: mounts,
            files: files,
            processes: self.processes,
            hybridPressure: self.hybridPressure,
            swap: hostMayHaveSwap(try? context.reader.read(context.paths.proc("swaps"))),
            absent: self.state.absentFiles(now: now, maxAge: self.specMaxAge)
        )
        var cgroups: [ScrapedCgroup] = []
        cgroups.reserveCapacity(found.count)
        for cgroup in found {
            let entry = files.entry(for: cgroup)
            let cached = entry.spec.flatMap { now - $0.readAt < self.specMaxAge ? $0.value : nil }
            let stats = reader.read(entry, cachedSpec: cached)
            // A cgroup removed since the walk listed it is left out.
            guard !stats.isEmpty || cgroup.kind == .root else { continue }
            if cached == nil {
                // Limits first read now count as read a while ago, each cgroup's while its own: the
                // cgroups found together have theirs read again over the next max age, some at each
                // scrape, rather than all at one scrape each max age.
                let age = entry.spec == nil ? self.state.firstSpecAge(self.specMaxAge) : .zero
                entry.spec = (stats.spec, now - age)
            }
            var metadata: ContainerMetadata?
            if case .container(let container) = cgroup.kind {
                metadata =
                    entry.metadata
                    ?? self.state.metadata.metadata(for: container, paths: context.paths, reader: context.reader)
                entry.metadata = metadata
            }
            cgroups.append(
                ScrapedCgroup(path: cgroup.path, kind: cgroup.kind, entry: entry, stats: stats, metadata: metadata)
            )
        }
        self.readNetworks(cgroups, reader: &reader, context: context)
        var devices: Set<UInt64> = []
        for cgroup in cgroups {
            for entry in cgroup.stats.ioBytes { devices.insert(deviceKey(entry.major, entry.minor)) }
            for entry in cgroup.stats.ioOperations { devices.insert(deviceKey(entry.major, entry.minor)) }
        }
        let deviceNames = self.state.devices.names(for: devices, paths: context.paths, reader: context.reader)

        writeMachineFamilies(into: &writer, paths: context.paths, reader: context.reader)
        // About 20 KB of text per container: written while the response is sent, a chunk at a time.
        let rows = zip(cgroups, containerLabels(cgroups)).map { cgroup, labels in
            ContainerRow(stats: cgroup.stats, interfaces: cgroup.interfaces, labels: labels)
        }
        writer.writeWhileSending(
            ContainerExposition(
                rows: rows,
                deviceNames: deviceNames,
                lastSeen: unixTimeSeconds(),
                processes: self.processes
            )
        )

        files.forget(allBut: found)
        self.state.remember(absent: reader.newlyAbsent, present: found)
        if reader.errorCount > 0 {
            context.recordFailure(
                "\(reader.errorCount) cgroup files could not be read; first: \(reader.firstError ?? "")"
            )
        }
    }

    /// Reads the network counters of the cgroups that own a network namespace: the root (the host's
    /// namespace) and containers whose first process is in a namespace of its own. Kubernetes
    /// application containers share their sandbox's namespace and are left out (cAdvisor does the
    /// same); any other shared namespace is reported once, for the first container found in it.
    private func readNetworks(_ cgroups: [ScrapedCgroup], reader: inout CgroupStatsReader, context: ScrapeContext) {
        let hostNamespace =
            (try? FileSystem.readLink(context.paths.proc("1/ns/net")))
            ?? (try? FileSystem.readLink(context.paths.proc("self/ns/net")))
        var claimed: Set<String> = []
        for cgroup in cgroups {
            switch cgroup.kind {
            case .root:
                let bytes =
                    (try? context.reader.read(context.paths.proc("1/net/dev")))
                    ?? (try? context.reader.read(context.paths.proc("net/dev")))
                cgroup.interfaces = bytes.map(parseNetDev) ?? []
            case .container:
                guard cgroup.metadata?.isPodContainer != true,
                    let (pid, namespace) = self.networkProcess(of: cgroup.entry, reader: &reader, context: context),
                    namespace != hostNamespace, !claimed.contains(namespace),
                    let bytes = try? context.reader.read(context.paths.proc("\(pid)/net/dev"))
                else { continue }
                claimed.insert(namespace)
                cgroup.interfaces = parseNetDev(bytes)
            case .pod, .kubepods, .other:
                continue
            }
        }
    }

    /// The process a container's network is read through and its network namespace: the one found
    /// before while it lives in the same namespace, else the cgroup's first process now.
    private func networkProcess(
        of entry: CgroupEntry,
        reader: inout CgroupStatsReader,
        context: ScrapeContext
    ) -> (pid: Int32, namespace: String)? {
        if let known = entry.networkProcess,
            (try? FileSystem.readLink(context.paths.proc("\(known.pid)/ns/net"))) == known.namespace
        {
            return known
        }
        entry.networkProcess = nil
        guard let pid = reader.firstProcess(of: entry),
            let namespace = try? FileSystem.readLink(context.paths.proc("\(pid)/ns/net"))
        else { return nil }
        entry.networkProcess = (pid, namespace)
        return (pid, namespace)
    }
}

/// One cgroup as read in one scrape, with what is kept for it between scrapes.
final class ScrapedCgroup {
    let path: String
    let kind: CgroupKind
    /// What is kept for the cgroup between scrapes.
    let entry: CgroupEntry
    let stats: CgroupStats
    let metadata: ContainerMetadata?
    var interfaces: [InterfaceCounters] = []

    init(path: String, kind: CgroupKind, entry: CgroupEntry, stats: CgroupStats, metadata: ContainerMetadata?) {
        self.path = path
        self.kind = kind
        self.entry = entry
        self.stats = stats
        self.metadata = metadata
    }
}

/// The values of a cgroup's base labels.
struct ContainerLabelValues: Equatable {
    var name = ""
    var image = ""
    var pod = ""
    var namespace = ""
    var container = ""
}

/// The base labels of each cgroup: `id` always; `name` and `image` from the runtime; `pod`,
/// `namespace` and `container` for Kubernetes (pod cgroups get their pod's name and namespace from
/// the containers in them). Each cgroup's labels are rendered once and kept while their values stay.
func containerLabels(_ cgroups: [ScrapedCgroup]) -> [RenderedLabels] {
    var pods: [String: (pod: String, namespace: String)] = [:]
    for cgroup in cgroups {
        guard case .container(let container) = cgroup.kind, let metadata = cgroup.metadata, !metadata.pod.isEmpty
        else { continue }
        if let uid = metadata.podUID.isEmpty ? container.podUID : metadata.podUID {
            pods[uid] = (metadata.pod, metadata.namespace)
        }
    }
    return cgroups.map { cgroup in
        var values = ContainerLabelValues()
        switch cgroup.kind {
        case .container(let ref):
            if let metadata = cgroup.metadata {
                values = ContainerLabelValues(
                    name: metadata.name,
                    image: metadata.image,
                    pod: metadata.pod,
                    namespace: metadata.namespace,
                    container: metadata.container
                )
            } else if ref.runtime == .machine || ref.runtime == .lxc {
                values.name = ref.id
            }
        case .pod(let uid):
            if let known = pods[uid] { (values.pod, values.namespace) = known }
        case .root, .kubepods, .other:
            break
        }
        if let kept = cgroup.entry.labels, kept.values == values { return kept.rendered }
        // Sorted by name, as Prometheus' client writes them.
        var labels = RenderedLabels()
        if !values.container.isEmpty { labels.append("container", values.container) }
        labels.append("id", cgroup.path)
        if !values.image.isEmpty { labels.append("image", values.image) }
        if !values.name.isEmpty { labels.append("name", values.name) }
        if !values.namespace.isEmpty { labels.append("namespace", values.namespace) }
        if !values.pod.isEmpty { labels.append("pod", values.pod) }
        cgroup.entry.labels = (values, labels)
        return labels
    }
}

/// What the containers collector keeps between scrapes: metadata per container, the cgroup files
/// with what is kept per cgroup (``CgroupFiles``), the optional files this host lacks, block device
/// names.
final class ContainersState: Sendable {
    let metadata = ContainerMetadataStore()
    let devices = BlockDeviceNames()
    private let files: Mutex<CgroupFiles?>
    private let absent = Mutex<(files: Set<String>, since: ContinuousClock.Instant)>(([], .now))
    private let specPhase = Mutex(0.0)

    init(keptDirectories: Int) {
        self.files = Mutex(CgroupFiles(budget: keptDirectories))
    }

    /// The cgroup files for one scrape, `shared` when they are the ones kept between scrapes. A scrape
    /// that runs while another one has them gets files of its own that keep nothing open and are
    /// dropped afterwards.
    func checkOutFiles() -> (files: CgroupFiles, shared: Bool) {
        if let files = self.files.withLock({ $0.take() }) { return (files, true) }
        return (CgroupFiles(budget: 0), false)
    }

    /// Takes back the shared files a scrape checked out.
    func checkIn(_ files: CgroupFiles) {
        self.files.withLock { $0 = files }
    }

    /// What is kept per cgroup, for tests.
    func withFiles<T>(_ body: (CgroupFiles?) -> T) -> T {
        self.files.withLock { body($0) }
    }

    /// The age a cgroup's first read of its limits counts as: the next fraction of `maxAge` in the
    /// golden ratio's sequence, which spreads the fractions of cgroups found together evenly over [0, 1).
    func firstSpecAge(_ maxAge: Duration) -> Duration {
        let fraction = self.specPhase.withLock { phase in
            phase = (phase + 0.618_033_988_749_894_9).truncatingRemainder(dividingBy: 1)
            return phase
        }
        return maxAge * fraction
    }

    /// The optional files known to be absent; forgotten every `maxAge` (a module may be loaded).
    func absentFiles(now: ContinuousClock.Instant, maxAge: Duration) -> Set<String> {
        self.absent.withLock { absent in
            if now - absent.since > maxAge { absent = ([], now) }
            return absent.files
        }
    }

    /// Stores what a scrape learnt and forgets the containers that are gone.
    func remember(absent newlyAbsent: Set<String>, present: [DiscoveredCgroup]) {
        if !newlyAbsent.isEmpty { self.absent.withLock { $0.files.formUnion(newlyAbsent) } }
        var ids: Set<String> = []
        for cgroup in present {
            if case .container(let container) = cgroup.kind { ids.insert(container.id) }
        }
        self.metadata.keepOnly(ids)
    }
}
