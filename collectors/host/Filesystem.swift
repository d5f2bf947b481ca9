import Logging
import Synchronization
import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Size, free space and inodes of every mounted file system (`node_filesystem_*`), from mountinfo and
/// `statfs(2)`.
///
/// `statfs` on a dead NFS, CIFS or FUSE mount blocks in the kernel and cannot be interrupted, so the
/// calls run on ``BlockingPool`` threads, a few at a time, each with a deadline. A mount whose call
/// misses its deadline is reported with `device_error="mountpoint timeout"`; as long as that call has
/// not returned, the mount is stuck: later (and concurrent) scrapes report it the same way without
/// calling `statfs` again. A hung mount therefore parks one thread, and no scrape waits for it longer
/// than the mount timeout.
///
/// Local disk and memory file systems (``measuredInline``) are measured on the collector's own thread:
/// the kernel answers their `statfs` from counters in memory, and the hand-over to a pool thread and
/// back (two thread wake-ups) cost more than the calls.
struct FilesystemCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "filesystem",
        enabledByDefault: true,
        help: "file system sizes and free space (statfs of every mount)",
        options: [
            OptionSpec(
                "collector.filesystem.mount-points-exclude",
                .regex(#"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"#),
                help:
                    "Regexp of mount points to exclude for filesystem collector. (mutually exclusive to mount-points-include)",
                aliases: ["collector.filesystem.ignored-mount-points"]
            ),
            OptionSpec(
                "collector.filesystem.mount-points-include",
                .regex(""),
                help:
                    "Regexp of mount points to include for filesystem collector. (mutually exclusive to mount-points-exclude)"
            ),
            OptionSpec(
                "collector.filesystem.fs-types-exclude",
                .regex(
                    "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$"
                ),
                help:
                    "Regexp of filesystem types to exclude for filesystem collector. (mutually exclusive to fs-types-include)",
                aliases: ["collector.filesystem.ignored-fs-types"]
            ),
            OptionSpec(
                "collector.filesystem.fs-types-include",
                .regex(""),
                help:
                    "Regexp of filesystem types to include for filesystem collector. (mutually exclusive to fs-types-exclude)"
            ),
            OptionSpec(
                "collector.filesystem.mount-timeout",
                .duration(.seconds(5)),
                help: "how long to wait for a mount to respond before marking it as stale"
            ),
            OptionSpec(
                "collector.filesystem.stat-workers",
                .integer(4),
                help: "how many stat calls to process simultaneously"
            ),
        ]
    ) { setup in
        try FilesystemCollector(setup: setup)
    }

    /// How much earlier than the scrape deadline the collector stops waiting, to write its samples.
    static let deadlineMargin: Duration = .milliseconds(250)

    /// File system types whose `statfs` the kernel answers from counters it keeps in memory, waiting for
    /// no network, daemon or disk. Not among them: FAT and exFAT (the first call counts free clusters on
    /// the disk), btrfs (waits for chunk allocation), ZFS (waits while a `zfs receive` holds the dataset).
    static let inMemoryStatfsTypes: Set<String> = ["ext2", "ext3", "ext4", "ramfs", "tmpfs", "xfs"]

    let mountPoints: NameFilter
    let fsTypes: NameFilter
    let mountTimeout: Duration
    let statWorkers: Int
    /// The file system types measured without a pool thread.
    let measuredInline: Set<String>
    /// The `statfs` calls in flight, shared by all scrapes: never two at a time for one path.
    let calls = StatfsCalls()
    let statfs: @Sendable (String) -> StatfsResult
    /// The last selection and the mount table it was made from: the table is kept until the kernel
    /// reports a change, and comparing the same array again costs nothing.
    private let selection = CollectorState<(entries: [MountinfoEntry], paths: PathRoots, mounts: [SelectedMount])?>(nil)

    init(setup: CollectorSetup) throws {
        let settings = setup.settings
        let timeout = settings.duration("collector.filesystem.mount-timeout")
        guard timeout > .zero else {
            throw settings.error("collector.filesystem.mount-timeout", "must be longer than zero")
        }
        let workers = settings.integer("collector.filesystem.stat-workers")
        guard workers >= 1 else {
            throw settings.error("collector.filesystem.stat-workers", "must be at least 1")
        }
        self.init(
            mountPoints: try setup.nameFilter(
                include: "collector.filesystem.mount-points-include",
                exclude: "collector.filesystem.mount-points-exclude"
            ),
            fsTypes: try setup.nameFilter(
                include: "collector.filesystem.fs-types-include",
                exclude: "collector.filesystem.fs-types-exclude"
            ),
            mountTimeout: timeout,
            statWorkers: workers
        )
    }

    /// - Parameter statfs: the call that measures a path; tests pass one that blocks like a dead mount.
    init(
        mountPoints: NameFilter,
        fsTypes: NameFilter,
        mountTimeout: Duration,
        statWorkers: Int,
        measuredInline: Set<String> = Self.inMemoryStatfsTypes,
        statfs: @escaping @Sendable (String) -> StatfsResult = systemStatfs
    ) {
        self.mountPoints = mountPoints
        self.fsTypes = fsTypes
        self.mountTimeout = mountTimeout
        self.statWorkers = statWorkers
        self.measuredInline = measuredInline
        self.statfs = statfs
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let mounts = self.selectedMounts(try context.mountinfo(), paths: context.paths)
        let outcomes = self.measure(mounts, context: context)
        var stats: [(mount: SelectedMount, outcome: StatfsOutcome)] = []
        var unmeasured = 0
        for (mount, outcome) in zip(mounts, outcomes) {
            if case .notStarted = outcome {
                unmeasured += 1
            } else {
                stats.append((mount, outcome))
            }
        }
        if unmeasured > 0 {
            context.recordFailure("statfs of \(unmeasured) mounts could not start before the scrape deadline")
        }
        writeFamilies(stats, into: &writer)
    }

    /// ``selectMounts(_:paths:)``, made again only when the mount table changed.
    private func selectedMounts(_ entries: [MountinfoEntry], paths: PathRoots) -> [SelectedMount] {
        if let last = self.selection.value.withLock({ $0 }), last.entries == entries, last.paths == paths {
            return last.mounts
        }
        let mounts = self.selectMounts(entries, paths: paths)
        self.selection.value.withLock { $0 = (entries, paths, mounts) }
        return mounts
    }

    /// The mounts that pass the filters, once per device, mount point and type: node_exporter reports a
    /// repeated mount (a tmpfs mounted twice on /tmp) once, with the labels of the first.
    func selectMounts(_ entries: [MountinfoEntry], paths: PathRoots) -> [SelectedMount] {
        var selected: [SelectedMount] = []
        var seen = Set<[String]>()
        for entry in entries {
            let mountPoint = paths.strippingRootfs(entry.mountPoint)
            guard self.mountPoints.allows(mountPoint), self.fsTypes.allows(entry.fsType),
                seen.insert([entry.source, mountPoint, entry.fsType]).inserted
            else { continue }
            selected.append(
                SelectedMount(
                    device: entry.source,
                    mountPoint: mountPoint,
                    fsType: entry.fsType,
                    major: entry.major,
                    minor: entry.minor,
                    readOnly: entry.isReadOnly,
                    statPath: paths.root(mountPoint)
                )
            )
        }
        return selected
    }

    /// Calls `statfs` for each mount: in place for the types measured inline, on pool threads for the
    /// others, at most `statWorkers` at a time, each until its own deadline (the mount timeout, but never
    /// later than the scrape deadline allows).
    func measure(_ mounts: [SelectedMount], context: ScrapeContext) -> [StatfsOutcome] {
        let limit = context.deadline - Self.deadlineMargin
        var outcomes = [StatfsOutcome](repeating: .notStarted, count: mounts.count)
        var pooled: [Int] = []
        for (index, mount) in mounts.enumerated() {
            if !self.measuredInline.contains(mount.fsType) {
                pooled.append(index)
            } else if ContinuousClock.now < limit {
                outcomes[index] = .measured(self.statfs(mount.statPath))
            }
        }
        if !pooled.isEmpty {
            let run = StatfsRun(
                paths: pooled.map { mounts[$0].statPath },
                statfs: self.statfs,
                calls: self.calls,
                pool: context.pool
            )
            let measured = run.run(workers: self.statWorkers, timeout: self.mountTimeout, limit: limit)
            for (index, outcome) in zip(pooled, measured) { outcomes[index] = outcome }
        }
        for (mount, outcome) in zip(mounts, outcomes) {
            switch outcome {
            case .timedOut:
                context.logger.debug(
                    "mount point is in an unresponsive state",
                    metadata: ["mountpoint": "\(mount.mountPoint)"]
                )
            case .measured(.failure(let code)):
                context.logger.debug(
                    "error on statfs() system call",
                    metadata: ["path": "\(mount.statPath)", "err": "\(goErrnoText(code))"]
                )
            default: break
            }
        }
        return outcomes
    }
}

/// A mount to measure, with its labels.
struct SelectedMount: Sendable, Equatable {
    var device: String
    /// As labelled: without the rootfs prefix.
    var mountPoint: String
    var fsType: String
    var major: Int
    var minor: Int
    var readOnly: Bool
    /// Where `statfs` looks: the mount point under `--path.rootfs`.
    var statPath: String
}

/// What `statfs(2)` reported for one path, or the errno it failed with.
enum StatfsResult: Sendable, Equatable {
    case usage(FilesystemUsage)
    case failure(errno: Int32)
}

/// Sizes in bytes and inode counts, as node_exporter computes them (blocks × `f_bsize`).
struct FilesystemUsage: Sendable, Equatable {
    var size: Double
    var free: Double
    var avail: Double
    var files: Double
    var filesFree: Double
}

/// How the measurement of one mount ended.
enum StatfsOutcome: Sendable, Equatable {
    case measured(StatfsResult)
    /// The call did not return in time, now or in an earlier scrape.
    case timedOut
    /// The scrape deadline came before the call could start.
    case notStarted
}

/// The real `statfs(2)`, retried on EINTR. Glibc's module has no `statfs`; `statvfs(3)` is a thin
/// wrapper around it on Linux with the same block size and counts.
@Sendable func systemStatfs(_ path: String) -> StatfsResult {
    var buffer = statvfs()
    while statvfs(path, &buffer) != 0 {
        let code = errno
        if code != EINTR { return .failure(errno: code) }
    }
    let blockSize = Double(buffer.f_bsize)
    return .usage(
        FilesystemUsage(
            size: Double(buffer.f_blocks) * blockSize,
            free: Double(buffer.f_bfree) * blockSize,
            avail: Double(buffer.f_bavail) * blockSize,
            files: Double(buffer.f_files),
            filesFree: Double(buffer.f_ffree)
        )
    )
}

/// The text of Go's `syscall.Errno.Error()`, which node_exporter puts in `device_error`: the C
/// library's message with a lower-case first letter, from a table generated from an older glibc (ESTALE
/// still reads "stale NFS file handle").
func goErrnoText(_ code: Int32) -> String {
    if code == ESTALE { return "stale NFS file handle" }
    guard let message = strerror(code) else { return "errno \(code)" }
    var bytes = Array(String(cString: message).utf8)
    if bytes.starts(with: "Unknown error".utf8) { return "errno \(code)" }
    // Go's generator lower-cases "Permission denied" but keeps "RFS specific error".
    if bytes.count > 1, (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(bytes[0]),
        !(UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(bytes[1])
    {
        bytes[0] += 32
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The `statfs` calls in flight, by path, shared by every scrape of a collector: a path whose call has
/// not returned gets no second call; another scrape waits for the same call (until its own deadline),
/// and once the call is older than the mount timeout, the mount is stuck and reported so at once.
final class StatfsCalls: Sendable {
    /// One call, and what it returned once it did.
    final class Call: Sendable {
        let path: String
        let started: ContinuousClock.Instant
        private let outcome = Mutex<StatfsResult?>(nil)

        init(path: String, started: ContinuousClock.Instant) {
            self.path = path
            self.started = started
        }

        var result: StatfsResult? { self.outcome.withLock { $0 } }
        fileprivate func store(_ result: StatfsResult) { self.outcome.withLock { $0 = result } }
    }

    private let inFlight = Mutex<[String: Call]>([:])

    /// The call for `path`: a new one that the caller makes and ends with ``finish(_:_:)``, or the
    /// one in flight (`isNew` false).
    func begin(_ path: String) -> (call: Call, isNew: Bool) {
        self.inFlight.withLock { calls in
            if let call = calls[path] { return (call, false) }
            let call = Call(path: path, started: .now)
            calls[path] = call
            return (call, true)
        }
    }

    /// Records what a call returned; the path can be measured again.
    func finish(_ call: Call, _ result: StatfsResult) {
        call.store(result)
        self.inFlight.withLock { calls in
            if calls[call.path] === call { calls[call.path] = nil }
        }
    }

    /// The paths whose call has been in flight for at least `age`.
    func paths(inFlightFor age: Duration) -> Set<String> {
        let now = ContinuousClock.now
        return self.inFlight.withLock { calls in Set(calls.values.filter { $0.started + age <= now }.map(\.path)) }
    }
}

/// The `statfs` calls of one collection, made by "lanes": pool jobs that take the next mount until
/// none is left. One lane does the usual case (fast calls: one hand-over to a pool thread and one back);
/// another starts whenever all lanes have been in their current call for longer than
/// ``stallThreshold``, up to the number of workers, so a slow mount does not hold up the others. A
/// mount whose call another scrape has in flight is not called again: this collection waits for that
/// call's result, or reports the mount stuck once the call is older than the mount timeout.
private final class StatfsRun: @unchecked Sendable {
    // @unchecked: the mutable state is only touched with `mutex` held; the rest is immutable.
    private enum State {
        case waiting
        /// This collection's call, on a lane.
        case running(StatfsCalls.Call)
        /// A call another scrape made.
        case borrowed(StatfsCalls.Call)
        case done(StatfsResult)
        case timedOut
    }

    /// How long a call may take before another lane starts beside it, and how often the collection
    /// looks at borrowed calls.
    static let stallThreshold: Duration = .milliseconds(10)

    private let paths: [String]
    private let statfs: @Sendable (String) -> StatfsResult
    private let calls: StatfsCalls
    private let pool: BlockingPool
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var states: [State]
    private var next = 0
    private var running = 0
    /// No call starts any more (the collection gave up waiting).
    private var closed = false

    init(paths: [String], statfs: @escaping @Sendable (String) -> StatfsResult, calls: StatfsCalls, pool: BlockingPool)
    {
        self.paths = paths
        self.statfs = statfs
        self.calls = calls
        self.pool = pool
        self.states = Array(repeating: .waiting, count: paths.count)
        pthread_mutex_init(self.mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(self.condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(self.condition)
        pthread_mutex_destroy(self.mutex)
        self.condition.deallocate()
        self.mutex.deallocate()
    }

    /// Measures every path, with at most `workers` calls at a time, waiting for each call until
    /// `timeout` after its start or until `limit`, whichever comes first; a call that cannot start before
    /// `limit` does not start.
    func run(workers: Int, timeout: Duration, limit: ContinuousClock.Instant) -> [StatfsOutcome] {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        // Calls older than the mount timeout are stuck: no lane, no waiting.
        let stuck = self.calls.paths(inFlightFor: timeout)
        for index in self.states.indices where stuck.contains(self.paths[index]) {
            self.states[index] = .timedOut
        }
        var lanes = 1
        self.startLane()
        while true {
            let now = ContinuousClock.now
            if now >= limit { self.closed = true }
            var earliestDeadline = limit
            var latestStart: ContinuousClock.Instant? = nil
            var borrowing = false
            for index in self.states.indices {
                switch self.states[index] {
                case .running(let call):
                    let deadline = min(call.started + timeout, limit)
                    if now >= deadline {
                        // Its lane stays blocked in the call; the mount is stuck until the call returns.
                        self.states[index] = .timedOut
                        self.running -= 1
                        lanes -= 1
                    } else {
                        earliestDeadline = min(earliestDeadline, deadline)
                        latestStart = max(latestStart ?? call.started, call.started)
                    }
                case .borrowed(let call):
                    if let result = call.result {
                        self.states[index] = .done(result)
                    } else if now >= min(call.started + timeout, limit) {
                        self.states[index] = .timedOut
                    } else {
                        borrowing = true
                    }
                default: break
                }
            }
            let pending = !self.closed && self.next < self.states.count
            if self.running == 0 && !pending && !borrowing { break }
            var wake = earliestDeadline
            if pending && lanes < workers {
                // Every lane is in a call that takes long: another one takes the mounts behind them.
                if lanes == 0 || (lanes == self.running && now >= latestStart! + Self.stallThreshold) {
                    lanes += 1
                    self.startLane()
                }
                wake = min(wake, now + Self.stallThreshold)
            }
            if borrowing { wake = min(wake, now + Self.stallThreshold) }
            self.wait(until: wake)
        }
        return self.states.map { state in
            switch state {
            case .done(let result): .measured(result)
            case .timedOut: .timedOut
            case .waiting, .running, .borrowed: .notStarted
            }
        }
    }

    private func startLane() {
        self.pool.submit { self.lane() }
    }

    /// Runs on a pool thread: takes the next path and measures it, until none is left.
    private func lane() {
        while let (index, call) = self.claim() {
            let result = self.statfs(self.paths[index])
            self.calls.finish(call, result)
            // A call the collection gave up on: a replacement lane took over the remaining mounts.
            guard self.deliver(index, result) else { return }
        }
    }

    /// The next path to call `statfs` for; paths that another scrape has in flight (or that are
    /// stuck) are passed over.
    private func claim() -> (Int, StatfsCalls.Call)? {
        pthread_mutex_lock(self.mutex)
        while !self.closed, self.next < self.states.count {
            let index = self.next
            self.next += 1
            guard case .waiting = self.states[index] else { continue }
            let (call, isNew) = self.calls.begin(self.paths[index])
            guard isNew else {
                self.states[index] = .borrowed(call)
                continue
            }
            self.states[index] = .running(call)
            self.running += 1
            pthread_mutex_unlock(self.mutex)
            return (index, call)
        }
        pthread_mutex_unlock(self.mutex)
        // After unlocking: the collection, woken, takes the lock at once instead of sleeping on it.
        pthread_cond_signal(self.condition)
        return nil
    }

    /// Hands over a call's result. Returns false when the collection had given up on the call.
    private func deliver(_ index: Int, _ result: StatfsResult) -> Bool {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        guard case .running = self.states[index] else { return false }
        self.states[index] = .done(result)
        self.running -= 1
        return true
    }

    /// Waits (with the lock held) until a lane signals that it ran out of work, or until `deadline`.
    private func wait(until deadline: ContinuousClock.Instant) {
        let remaining = max(ContinuousClock.now.duration(to: deadline), .zero)
        let (seconds, attoseconds) = remaining.components
        var wake = timespec()
        clock_gettime(CLOCK_MONOTONIC, &wake)
        let nanoseconds = Int(wake.tv_nsec) + Int(attoseconds / 1_000_000_000)
        wake.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
        wake.tv_nsec = nanoseconds % 1_000_000_000
        pthread_cond_timedwait(self.condition, self.mutex, &wake)
    }
}

/// The families, with their headers rendered once.
private enum Families {
    static let avail = MetricFamily(
        "node_filesystem_avail_bytes",
        help: "Filesystem space available to non-root users in bytes.",
        type: .gauge
    )
    static let deviceError = MetricFamily(
        "node_filesystem_device_error",
        help: "Whether an error occurred while getting statistics for the given device.",
        type: .gauge
    )
    static let files = MetricFamily("node_filesystem_files", help: "Filesystem total file nodes.", type: .gauge)
    static let filesFree = MetricFamily(
        "node_filesystem_files_free",
        help: "Filesystem total free file nodes.",
        type: .gauge
    )
    static let free = MetricFamily("node_filesystem_free_bytes", help: "Filesystem free space in bytes.", type: .gauge)
    static let mountInfo = MetricFamily(
        "node_filesystem_mount_info",
        help: "Filesystem mount information.",
        type: .gauge
    )
    static let readOnly = MetricFamily("node_filesystem_readonly", help: "Filesystem read-only status.", type: .gauge)
    static let size = MetricFamily("node_filesystem_size_bytes", help: "Filesystem size in bytes.", type: .gauge)
}

/// Writes the families in node_exporter's order, labels sorted by name as its output has them.
private func writeFamilies(
    _ stats: [(mount: SelectedMount, outcome: StatfsOutcome)],
    into writer: inout MetricWriter
) {
    guard !stats.isEmpty else { return }
    let measured: [(SelectedMount, FilesystemUsage)] = stats.compactMap { stat in
        if case .measured(.usage(let usage)) = stat.outcome { return (stat.mount, usage) }
        return nil
    }
    func errorText(_ outcome: StatfsOutcome) -> String {
        switch outcome {
        case .measured(.usage), .notStarted: ""
        case .measured(.failure(let code)): goErrnoText(code)
        case .timedOut: "mountpoint timeout"
        }
    }
    func usageFamily(_ family: MetricFamily, _ value: (FilesystemUsage) -> Double) {
        guard !measured.isEmpty else { return }
        writer.family(family)
        for (mount, usage) in measured {
            writer.sample(
                value(usage),
                ("device", mount.device),
                ("device_error", ""),
                ("fstype", mount.fsType),
                ("mountpoint", mount.mountPoint)
            )
        }
    }
    usageFamily(Families.avail, \.avail)
    writer.family(Families.deviceError)
    for (mount, outcome) in stats {
        let error = errorText(outcome)
        writer.sample(
            error.isEmpty ? 0 : 1,
            ("device", mount.device),
            ("device_error", error),
            ("fstype", mount.fsType),
            ("mountpoint", mount.mountPoint)
        )
    }
    usageFamily(Families.files, \.files)
    usageFamily(Families.filesFree, \.filesFree)
    usageFamily(Families.free, \.free)
    if !measured.isEmpty {
        writer.family(Families.mountInfo)
        for (mount, _) in measured {
            writer.sample(
                1,
                ("device", mount.device),
                ("major", mount.major),
                ("minor", mount.minor),
                ("mountpoint", mount.mountPoint)
            )
        }
    }
    writer.family(Families.readOnly)
    for (mount, outcome) in stats {
        writer.sample(
            mount.readOnly ? 1 : 0,
            ("device", mount.device),
            ("device_error", errorText(outcome)),
            ("fstype", mount.fsType),
            ("mountpoint", mount.mountPoint)
        )
    }
    usageFamily(Families.size, \.size)
}
