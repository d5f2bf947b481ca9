import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A cgroup's limits (cAdvisor's container spec). They rarely change, so they are read again only
/// after ``ContainersCollector/specMaxAge``.
struct CgroupSpec: Sendable, Equatable {
    var cpuShares: UInt64?
    /// nil without a quota (v1 `-1`, v2 `max`).
    var cpuQuota: UInt64?
    var cpuPeriod: UInt64?
    /// `UInt64.max` for `max`; reported through ``specMemoryValue(_:)``.
    var memoryLimit: UInt64?
    var memoryReservation: UInt64?
    var memorySwapLimit: UInt64?
    /// `pids.max`; `UInt64.max` for `max`, reported as 0.
    var threadsMax: UInt64?
    /// v1 `memory.use_hierarchy`: which memory.stat keys rss, cache, swap and mapped_file come from.
    var useHierarchy = true

    /// The cpu controller was readable (cAdvisor's `HasCpu`).
    var hasCPU: Bool { self.cpuShares != nil || self.cpuPeriod != nil }
    /// The memory controller was readable (cAdvisor's `HasMemory`).
    var hasMemory: Bool { self.memoryLimit != nil }
}

/// The memory figures of a cgroup whose memory controller is readable; a key missing from
/// memory.stat counts as 0, as in cAdvisor.
struct MemoryFigures: Equatable {
    var usage: UInt64 = 0
    var maxUsage: UInt64 = 0
    var workingSet: UInt64 = 0
    var rss: UInt64 = 0
    var cache: UInt64 = 0
    var swap: UInt64 = 0
    var mappedFile: UInt64 = 0
    var failcnt: UInt64 = 0
    var activeFile: UInt64 = 0
    var inactiveFile: UInt64 = 0
    var pgfault: UInt64 = 0
    var pgmajfault: UInt64 = 0
    var hierarchyPgfault: UInt64 = 0
    var hierarchyPgmajfault: UInt64 = 0
}

/// Everything read for one cgroup in one scrape; nil (or empty) where the source does not exist.
struct CgroupStats {
    /// Seconds.
    var cpuUsage: Double?
    var cpuUser: Double?
    var cpuSystem: Double?
    var cfsPeriods: UInt64?
    var cfsThrottledPeriods: UInt64?
    var cfsThrottledSeconds: Double?
    var memory: MemoryFigures?
    var oomKills: UInt64?
    var cpuPressure: PressureTotals?
    var memoryPressure: PressureTotals?
    var ioPressure: PressureTotals?
    var ioBytes: [IOEntry] = []
    var ioOperations: [IOEntry] = []
    var processes: Int?
    var threads: UInt64?
    var spec = CgroupSpec()

    var isEmpty: Bool { self.cpuUsage == nil && self.memory == nil && self.processes == nil }
}

/// Reads the cgroup files of one cgroup, v1 or v2, with one `open`/`read`/`close` per file.
///
/// Only the files of the families written by default are read: `cgroup.procs`, `pids.current` and
/// `pids.max` only with the process metrics (cAdvisor's `process` set, off by default there too).
/// Files that only some kernels have (`memory.peak`, swap accounting, PSI, BFQ and CFQ blkio) are
/// remembered as absent once a cgroup's directory proved to exist without them, so that a scrape does
/// not probe them again for every container.
struct CgroupStatsReader {
    let mounts: CgroupMounts
    let files: CgroupFiles
    /// Whether `container_processes`, `container_threads` and `container_threads_max` are written.
    let processes: Bool
    /// Whether a hybrid host's pressure files (in its unified tree) are read.
    let hybridPressure: Bool
    /// Whether the host may have swap in use (see ``hostMayHaveSwap(_:)``); without it v2
    /// `memory.swap.current` is 0 and not read.
    let swap: Bool
    /// The controller whose hierarchy was walked: its `cgroup.procs` lists the cgroup's processes.
    private let walked: CgroupController
    /// Files known to be absent on this host (shared by the scrapes, refreshed now and then).
    var absent: Set<String>
    private(set) var newlyAbsent: Set<String> = []
    /// The blkio file groups (indices into `blkioFiles`) with no entries in this scrape's root cgroup.
    private var blkioGroupsEmptyAtRoot: Set<Int> = []
    /// Errors other than "not found" (permissions, I/O): counted, and the first kept for the report.
    private(set) var errorCount = 0
    private(set) var firstError: String?

    init(
        mounts: CgroupMounts,
        files: CgroupFiles,
        processes: Bool,
        hybridPressure: Bool = false,
        swap: Bool = true,
        absent: Set<String>
    ) {
        self.mounts = mounts
        self.files = files
        self.processes = processes
        self.hybridPressure = hybridPressure
        self.swap = swap
        self.absent = absent
        // As ``CgroupMounts/walked`` chooses.
        let v1Order: [CgroupController] = [.memory, .cpuacct, .cpu, .pids, .blkio]
        self.walked = mounts.hasV1 ? v1Order.first(where: { mounts.mount($0) != nil }) ?? .memory : .unified
        files.use(mounts)
    }

    /// USER_HZ: the unit of v1 `cpuacct.stat`.
    private static let clockTicks: Double = {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : 100
    }()

    /// Reads a cgroup: its spec from `cachedSpec` unless nil (then from the files), its figures from
    /// the files.
    mutating func read(_ entry: CgroupEntry, cachedSpec: CgroupSpec?) -> CgroupStats {
        var stats = CgroupStats()
        if self.mounts.hasV1 {
            self.readV1(entry, cachedSpec: cachedSpec, into: &stats)
        } else if let unified = self.files.directory(.unified, of: entry) {
            self.readV2(unified, isRoot: entry.relative.isEmpty, cachedSpec: cachedSpec, into: &stats)
        }
        if self.processes, let walked = self.files.directory(self.walked, of: entry),
            let bytes = self.file(walked, "cgroup.procs")
        {
            stats.processes = parseProcs(bytes).count
        }
        return stats
    }

    /// The first process of a cgroup (to read the container's network), from `cgroup.procs`; rootless
    /// Podman keeps the processes in a `container` child of the scope.
    mutating func firstProcess(of entry: CgroupEntry) -> Int32? {
        guard let walked = self.files.directory(self.walked, of: entry) else { return nil }
        if let first = self.file(walked, "cgroup.procs").flatMap({ parseProcs($0).first }) { return first }
        return self.file(walked, "container/cgroup.procs").flatMap { parseProcs($0).first }
    }

    // MARK: cgroup v1 (and the unified tree of a hybrid host)

    private mutating func readV1(_ entry: CgroupEntry, cachedSpec: CgroupSpec?, into stats: inout CgroupStats) {
        let isRoot = entry.relative.isEmpty
        let cpuDirectory = self.files.directory(.cpu, of: entry)
        let memoryDirectory = self.files.directory(.memory, of: entry)
        if let cachedSpec {
            stats.spec = cachedSpec
        } else {
            self.readV1Spec(
                cpu: cpuDirectory,
                memory: memoryDirectory,
                pids: self.processes ? self.files.directory(.pids, of: entry) : nil,
                into: &stats
            )
        }
        if let cpuacct = self.files.directory(.cpuacct, of: entry) {
            if let usage = self.file(cpuacct, "cpuacct.usage").flatMap(parseSingleValue) {
                stats.cpuUsage = Double(usage) / 1e9
                if let bytes = self.file(cpuacct, "cpuacct.stat") {
                    stats.cpuUser = keyedValue(bytes, "user").map { Double($0) / Self.clockTicks }
                    stats.cpuSystem = keyedValue(bytes, "system").map { Double($0) / Self.clockTicks }
                }
            }
        }
        if let cpuDirectory, stats.spec.cpuQuota != nil, let bytes = self.file(cpuDirectory, "cpu.stat") {
            let cpuStat = parseCPUStat(bytes)
            stats.cfsPeriods = cpuStat.periods
            stats.cfsThrottledPeriods = cpuStat.throttledPeriods
            stats.cfsThrottledSeconds = cpuStat.throttledNanoseconds.map { Double($0) / 1e9 }
        }
        if let memoryDirectory,
            let usage = self.file(memoryDirectory, "memory.usage_in_bytes").flatMap(parseSingleValue)
        {
            var memory = MemoryFigures()
            memory.usage = usage
            let stat = self.file(memoryDirectory, "memory.stat").map(parseMemoryStat) ?? MemoryStatFile()
            if stats.spec.useHierarchy {
                memory.rss = stat.totalRSS ?? 0
                memory.cache = stat.totalCache ?? 0
                memory.swap = stat.totalSwap ?? 0
                memory.mappedFile = stat.totalMappedFile ?? 0
            } else {
                memory.rss = stat.rss ?? 0
                memory.cache = stat.cache ?? 0
                memory.swap = stat.swap ?? 0
                memory.mappedFile = stat.mappedFile ?? 0
            }
            // cAdvisor takes total_inactive_file even without hierarchy.
            memory.workingSet = workingSet(usage: usage, inactiveFile: stat.totalInactiveFile)
            memory.activeFile = stat.totalActiveFile ?? 0
            memory.inactiveFile = stat.totalInactiveFile ?? 0
            memory.pgfault = stat.pgfault ?? 0
            memory.pgmajfault = stat.pgmajfault ?? 0
            memory.hierarchyPgfault = stat.totalPgfault ?? 0
            memory.hierarchyPgmajfault = stat.totalPgmajfault ?? 0
            memory.maxUsage = self.file(memoryDirectory, "memory.max_usage_in_bytes").flatMap(parseSingleValue) ?? 0
            memory.failcnt = self.file(memoryDirectory, "memory.failcnt").flatMap(parseSingleValue) ?? 0
            stats.memory = memory
            stats.oomKills = self.file(memoryDirectory, "memory.oom_control").flatMap { keyedValue($0, "oom_kill") }
        }
        if let blkio = self.files.directory(.blkio, of: entry) {
            self.readBlkio(blkio, isRoot: isRoot, into: &stats)
        }
        if self.processes, !isRoot, let pids = self.files.directory(.pids, of: entry) {
            stats.threads = self.file(pids, "pids.current").flatMap(parseSingleValue)
        }
        // A hybrid host has pressure files in its unified tree although the controllers are v1; cAdvisor
        // reads v1 files only there, so they are read when asked for.
        if self.hybridPressure, let unified = self.files.directory(.unified, of: entry) {
            self.readPressure(unified, isRoot: isRoot, into: &stats)
        }
    }

    private mutating func readV1Spec(
        cpu: CgroupDirectory?,
        memory: CgroupDirectory?,
        pids: CgroupDirectory?,
        into stats: inout CgroupStats
    ) {
        var spec = CgroupSpec()
        if let cpu, let shares = self.file(cpu, "cpu.shares").flatMap(parseSingleValue) {
            spec.cpuShares = shares
            if let quota = self.file(cpu, "cpu.cfs_quota_us").flatMap(parseSignedValue), quota > 0 {
                spec.cpuQuota = UInt64(quota)
            }
            spec.cpuPeriod = self.file(cpu, "cpu.cfs_period_us").flatMap(parseSingleValue)
        }
        if let memory, let limit = self.file(memory, "memory.limit_in_bytes").flatMap(parseSingleValue) {
            spec.memoryLimit = limit
            spec.memoryReservation = self.file(memory, "memory.soft_limit_in_bytes").flatMap(parseSingleValue)
            spec.memorySwapLimit = self.file(memory, "memory.memsw.limit_in_bytes").flatMap(parseSingleValue)
            spec.useHierarchy = self.file(memory, "memory.use_hierarchy").flatMap(parseSingleValue) != 0
        }
        if let pids {
            spec.threadsMax = self.file(pids, "pids.max").flatMap(parseSingleValue)
        }
        stats.spec = spec
    }

    /// cAdvisor's choice of blkio files: the first group whose first file has entries, among BFQ,
    /// CFQ, throttling recursive and throttling non-recursive.
    ///
    /// The root is read first: a recursive group empty (or absent) there is empty in every cgroup, so
    /// it is not read again for each container (most hosts schedule no device with BFQ).
    private mutating func readBlkio(_ directory: CgroupDirectory, isRoot: Bool, into stats: inout CgroupStats) {
        for (index, (bytesFile, operationsFile)) in blkioFiles.enumerated() {
            if !isRoot && self.blkioGroupsEmptyAtRoot.contains(index) { continue }
            let serviceBytes = self.file(directory, bytesFile).map(parseBlkio) ?? []
            guard !serviceBytes.isEmpty else {
                if isRoot && bytesFile.hasSuffix("_recursive") { self.blkioGroupsEmptyAtRoot.insert(index) }
                continue
            }
            stats.ioBytes = serviceBytes
            stats.ioOperations = self.file(directory, operationsFile).map(parseBlkio) ?? []
            return
        }
    }

    // MARK: cgroup v2

    private mutating func readV2(
        _ directory: CgroupDirectory,
        isRoot: Bool,
        cachedSpec: CgroupSpec?,
        into stats: inout CgroupStats
    ) {
        if let cachedSpec {
            stats.spec = cachedSpec
        } else if !isRoot {
            self.readV2Spec(directory, into: &stats)
        }
        if let bytes = self.file(directory, "cpu.stat") {
            let cpuStat = parseCPUStat(bytes)
            stats.cpuUsage = cpuStat.usageMicroseconds.map { Double($0) / 1e6 }
            stats.cpuUser = cpuStat.userMicroseconds.map { Double($0) / 1e6 }
            stats.cpuSystem = cpuStat.systemMicroseconds.map { Double($0) / 1e6 }
            if stats.spec.cpuQuota != nil {
                stats.cfsPeriods = cpuStat.periods
                stats.cfsThrottledPeriods = cpuStat.throttledPeriods
                stats.cfsThrottledSeconds = cpuStat.throttledMicroseconds.map { Double($0) / 1e6 }
            }
        }
        self.readV2Memory(directory, isRoot: isRoot, into: &stats)
        if let bytes = self.file(directory, "io.stat") {
            (stats.ioBytes, stats.ioOperations) = parseIOStat(bytes)
        }
        if self.processes, !isRoot {
            stats.threads = self.file(directory, "pids.current").flatMap(parseSingleValue)
        }
        self.readPressure(directory, isRoot: isRoot, into: &stats)
    }

    private mutating func readV2Memory(_ directory: CgroupDirectory, isRoot: Bool, into stats: inout CgroupStats) {
        let current = isRoot ? nil : self.file(directory, "memory.current").flatMap(parseSingleValue)
        // Parsed at once: a slice of the read buffer kept alive would make the next read copy it.
        guard current != nil || isRoot, let stat = self.file(directory, "memory.stat").map(parseMemoryStat) else {
            return
        }
        var memory = MemoryFigures()
        // The root has no memory.current: cAdvisor adds anon and file.
        memory.usage = current ?? ((stat.anon ?? 0) + (stat.file ?? 0))
        memory.rss = stat.anon ?? 0
        memory.cache = stat.file ?? 0
        memory.mappedFile = stat.fileMapped ?? 0
        memory.workingSet = workingSet(usage: memory.usage, inactiveFile: stat.inactiveFile)
        memory.activeFile = stat.activeFile ?? 0
        memory.inactiveFile = stat.inactiveFile ?? 0
        memory.pgfault = stat.pgfault ?? 0
        memory.pgmajfault = stat.pgmajfault ?? 0
        memory.hierarchyPgfault = memory.pgfault
        memory.hierarchyPgmajfault = memory.pgmajfault
        if !isRoot {
            // memory.peak needs kernel 5.19, swap files swap accounting; cAdvisor reports 0 without them.
            memory.maxUsage = self.optionalFile(directory, "memory.peak", isRoot: isRoot).flatMap(parseSingleValue) ?? 0
            // Without a swap device nothing is swapped out: the file would say 0.
            if self.swap {
                memory.swap =
                    self.optionalFile(directory, "memory.swap.current", isRoot: isRoot).flatMap(parseSingleValue) ?? 0
            }
            stats.oomKills = self.file(directory, "memory.events").flatMap { keyedValue($0, "oom_kill") }
        }
        stats.memory = memory
    }

    private mutating func readV2Spec(_ directory: CgroupDirectory, into stats: inout CgroupStats) {
        var spec = CgroupSpec()
        if let cpuMax = self.file(directory, "cpu.max").map(parseCPUMax) {
            (spec.cpuQuota, spec.cpuPeriod) = cpuMax
            spec.cpuShares = self.file(directory, "cpu.weight").flatMap(parseSingleValue).flatMap(cpuSharesFromWeight)
        }
        if let limit = self.file(directory, "memory.max").flatMap(parseSingleValue) {
            spec.memoryLimit = limit
            spec.memoryReservation = self.file(directory, "memory.min").flatMap(parseSingleValue)
            spec.memorySwapLimit = self.optionalFile(directory, "memory.swap.max", isRoot: false).flatMap(
                parseSingleValue
            )
        }
        if self.processes { spec.threadsMax = self.file(directory, "pids.max").flatMap(parseSingleValue) }
        stats.spec = spec
    }

    private mutating func readPressure(_ directory: CgroupDirectory, isRoot: Bool, into stats: inout CgroupStats) {
        stats.cpuPressure = self.optionalFile(directory, "cpu.pressure", isRoot: isRoot).map(parsePressure)
        stats.memoryPressure = self.optionalFile(directory, "memory.pressure", isRoot: isRoot).map(parsePressure)
        stats.ioPressure = self.optionalFile(directory, "io.pressure", isRoot: isRoot).map(parsePressure)
    }

    // MARK: files

    /// A file's bytes, or nil when it does not exist (the cgroup is gone, or lacks that controller).
    /// The bytes are only valid until the next read.
    private mutating func file(_ directory: CgroupDirectory, _ name: String) -> ArraySlice<UInt8>? {
        do {
            return try self.files.read(directory, name)
        } catch {
            if !error.isNotFound {
                self.errorCount += 1
                if self.firstError == nil { self.firstError = error.description }
            }
            return nil
        }
    }

    /// A file only some kernels have. Its absence is remembered once the directory proved to exist
    /// (a non-root cgroup: roots lack files their children have).
    private mutating func optionalFile(_ directory: CgroupDirectory, _ name: String, isRoot: Bool) -> ArraySlice<UInt8>?
    {
        guard !self.absent.contains(name) else { return nil }
        if let bytes = self.file(directory, name) { return bytes }
        if !isRoot && self.files.exists(directory) {
            self.absent.insert(name)
            self.newlyAbsent.insert(name)
        }
        return nil
    }
}

/// Whether swap may be in use on the host: `/proc/swaps` lists a device (or cannot be read). Kubernetes
/// nodes usually have none (kubelet refuses to start with swap unless told otherwise).
func hostMayHaveSwap(_ swaps: ArraySlice<UInt8>?) -> Bool {
    guard let swaps else { return true }
    // A header line, then one line per device.
    return swaps.lines.dropFirst().contains { !$0.trimmed().isEmpty }
}

/// blkio file pairs (bytes, operations) in cAdvisor's order of preference.
private let blkioFiles: [(String, String)] = [
    ("blkio.bfq.io_service_bytes_recursive", "blkio.bfq.io_serviced_recursive"),
    ("blkio.io_service_bytes_recursive", "blkio.io_serviced_recursive"),
    ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"),
    ("blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced"),
]
