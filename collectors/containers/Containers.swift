import Synchronization
import VigilCore

/// Per-container CPU, memory, IO, pressure, process and network figures read straight from cgroups,
/// with cAdvisor's family names and kubelet's labels (`id`, `name`, `image`, `pod`, `namespace`,
/// `container`), so that Kubernetes and Docker dashboards work unchanged.
///
/// Each scrape finds the cgroup mounts in mountinfo, walks one hierarchy (``walkCgroups(_:all:maxDepth:)``),
/// identifies containers from their cgroup paths and reads each one's files once. Names and images
/// come from the runtimes' state files, read once per container; limits are read again after
/// ``specMaxAge``. Labels with an empty value are left out: Prometheus treats them as absent.
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
            )
        ]
    ) { setup in
        ContainersCollector(all: setup.settings.bool("collector.cgroups.all"))
    }

    let all: Bool
    /// How long limits, and the knowledge of which optional files this host lacks, are kept.
    let specMaxAge: Duration
    let state = ContainersState()

    init(all: Bool, specMaxAge: Duration = .seconds(60)) {
        self.all = all
        self.specMaxAge = specMaxAge
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let now = ContinuousClock.now
        let mounts = parseCgroupMounts(
            try context.reader.read(context.paths.proc("self/mountinfo")),
            paths: context.paths
        )
        guard let walked = mounts.walked, FileSystem.isDirectory(walked.path) else {
            throw CollectorError.noData("no cgroup file system is mounted")
        }
        let found = walkCgroups(walked, all: self.all)

        var reader = CgroupStatsReader(
            mounts: mounts,
            absent: self.state.absentFiles(now: now, maxAge: self.specMaxAge)
        )
        let specs = self.state.specs.withLock { $0 }
        var freshSpecs: [(String, CgroupSpec)] = []
        var cgroups: [ScrapedCgroup] = []
        cgroups.reserveCapacity(found.count)
        for cgroup in found {
            let cached = specs[cgroup.path].flatMap { now - $0.readAt < self.specMaxAge ? $0.spec : nil }
            var stats = reader.read(cgroup.path, cachedSpec: cached)
            // A cgroup removed since the walk listed it is left out.
            guard !stats.isEmpty || cgroup.kind == .root else { continue }
            if cached == nil { freshSpecs.append((cgroup.path, stats.spec)) }
            var metadata: ContainerMetadata?
            if case .container(let container) = cgroup.kind {
                metadata = self.state.metadata.metadata(for: container, paths: context.paths, reader: context.reader)
                if stats.firstPID == nil, container.runtime == .podman {
                    // Rootless Podman keeps the processes in a `container` child of the scope.
                    stats.firstPID =
                        ((try? context.reader.read(walked.path + cgroup.path + "/container/cgroup.procs"))
                        .map(parseProcs))?.first
                }
            }
            cgroups.append(ScrapedCgroup(path: cgroup.path, kind: cgroup.kind, stats: stats, metadata: metadata))
        }
        self.readNetworks(cgroups, context: context)
        var devices: Set<UInt64> = []
        for cgroup in cgroups {
            for entry in cgroup.stats.ioBytes { devices.insert(deviceKey(entry.major, entry.minor)) }
            for entry in cgroup.stats.ioOperations { devices.insert(deviceKey(entry.major, entry.minor)) }
        }
        let deviceNames = self.state.devices.names(for: devices, paths: context.paths, reader: context.reader)

        writeContainerFamilies(
            cgroups,
            labels: containerLabels(cgroups),
            deviceNames: deviceNames,
            lastSeen: unixTimeSeconds(),
            into: &writer
        )
        writeMachineFamilies(into: &writer, paths: context.paths, reader: context.reader)

        self.state.remember(specs: freshSpecs, readAt: now, absent: reader.newlyAbsent, present: found)
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
    private func readNetworks(_ cgroups: [ScrapedCgroup], context: ScrapeContext) {
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
                guard cgroup.metadata?.isPodContainer != true, let pid = cgroup.stats.firstPID,
                    let namespace = try? FileSystem.readLink(context.paths.proc("\(pid)/ns/net")),
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
}

/// One cgroup as read in one scrape (a class: the families pass over it dozens of times).
final class ScrapedCgroup {
    let path: String
    let kind: CgroupKind
    let stats: CgroupStats
    let metadata: ContainerMetadata?
    var interfaces: [InterfaceCounters] = []

    init(path: String, kind: CgroupKind, stats: CgroupStats, metadata: ContainerMetadata?) {
        self.path = path
        self.kind = kind
        self.stats = stats
        self.metadata = metadata
    }
}

/// The base labels of each cgroup: `id` always; `name` and `image` from the runtime; `pod`,
/// `namespace` and `container` for Kubernetes (pod cgroups get their pod's name and namespace from
/// the containers in them).
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
        var name = ""
        var image = ""
        var pod = ""
        var namespace = ""
        var container = ""
        switch cgroup.kind {
        case .container(let ref):
            if let metadata = cgroup.metadata {
                (name, image, pod, namespace, container) = (
                    metadata.name, metadata.image, metadata.pod, metadata.namespace, metadata.container
                )
            } else if ref.runtime == .machine || ref.runtime == .lxc {
                name = ref.id
            }
        case .pod(let uid):
            if let known = pods[uid] { (pod, namespace) = known }
        case .root, .kubepods, .other:
            break
        }
        // Sorted by name, as Prometheus' client writes them.
        var labels = RenderedLabels()
        if !container.isEmpty { labels.append("container", container) }
        labels.append("id", cgroup.path)
        if !image.isEmpty { labels.append("image", image) }
        if !name.isEmpty { labels.append("name", name) }
        if !namespace.isEmpty { labels.append("namespace", namespace) }
        if !pod.isEmpty { labels.append("pod", pod) }
        return labels
    }
}

/// What the containers collector keeps between scrapes: metadata per container, limits per cgroup,
/// the optional files this host lacks, block device names.
final class ContainersState: Sendable {
    struct CachedSpec: Sendable {
        var spec: CgroupSpec
        var readAt: ContinuousClock.Instant
    }

    let metadata = ContainerMetadataStore()
    let specs = Mutex<[String: CachedSpec]>([:])
    let devices = BlockDeviceNames()
    private let absent = Mutex<(files: Set<String>, since: ContinuousClock.Instant)>(([], .now))

    /// The optional files known to be absent; forgotten every `maxAge` (a module may be loaded).
    func absentFiles(now: ContinuousClock.Instant, maxAge: Duration) -> Set<String> {
        self.absent.withLock { absent in
            if now - absent.since > maxAge { absent = ([], now) }
            return absent.files
        }
    }

    /// Stores what a scrape learnt and forgets the cgroups and containers that are gone.
    func remember(
        specs fresh: [(String, CgroupSpec)],
        readAt: ContinuousClock.Instant,
        absent newlyAbsent: Set<String>,
        present: [DiscoveredCgroup]
    ) {
        if !newlyAbsent.isEmpty { self.absent.withLock { $0.files.formUnion(newlyAbsent) } }
        let paths = Set(present.map(\.path))
        self.specs.withLock { specs in
            for (path, spec) in fresh { specs[path] = CachedSpec(spec: spec, readAt: readAt) }
            if specs.count > paths.count { specs = specs.filter { paths.contains($0.key) } }
        }
        var ids: Set<String> = []
        for cgroup in present {
            if case .container(let container) = cgroup.kind { ids.insert(container.id) }
        }
        self.metadata.keepOnly(ids)
    }
}
