import VigilCore

/// Reads a unit's accounting counters from its control group's files, as systemd computes its
/// `CPUUsageNSec`, `MemoryCurrent`, `TasksCurrent`, `IOReadBytes` and `IOWriteBytes` (src/core/cgroup.c):
///
/// | figure | cgroup v2 (all unified) | cgroup v1 (legacy or hybrid) |
/// |---|---|---|
/// | CPU | `cpu.stat` `usage_usec` × 1000 | cpuacct `cpuacct.usage` |
/// | memory | `memory.current` | memory `memory.usage_in_bytes` |
/// | tasks | `pids.current` | pids `pids.current` |
/// | IO | `io.stat` `rbytes=` / `wbytes=` summed over devices | none (systemd reports none) |
///
/// systemd uses the v1 files unless every controller is on cgroup2, also on a hybrid host whose
/// unified tree has a `cpu.stat`. IP accounting lives in BPF maps (``ipAccountingMaps(controlGroup:)``).
/// One reader belongs to one scrape.
struct AccountingFiles {
    let mounts: CgroupMounts
    /// Whether to look for systemd's IP accounting maps (tests turn it off to exercise the bus).
    let findsIPMaps: Bool
    private let files = CgroupFileReader()

    init(mounts: CgroupMounts, findsIPMaps: Bool = true) {
        self.mounts = mounts
        self.findsIPMaps = findsIPMaps
    }

    /// The raw counters of the control group `controlGroup` (systemd's `ControlGroup`, from the root of
    /// its hierarchy) for `metrics`, by `AccountingMetric`; nil where no file could be read.
    func read(_ metrics: [AccountingMetric], controlGroup: String) -> [UInt64?] {
        var readings = [UInt64?](repeating: nil, count: AccountingMetric.allCases.count)
        guard !controlGroup.isEmpty else { return readings }
        let unified = !self.mounts.hasV1
        var ioRead = false
        var io: (read: UInt64, write: UInt64)?
        for metric in metrics {
            let value: UInt64?
            switch metric {
            case .cpu:
                value =
                    unified
                    ? self.file(self.mounts.unified, controlGroup, "cpu.stat").flatMap(parseCPUUsage)
                    : self.file(self.mounts.cpuacct, controlGroup, "cpuacct.usage").flatMap(parseSingleValue)
            case .memory:
                value = self.file(
                    unified ? self.mounts.unified : self.mounts.memory,
                    controlGroup,
                    unified ? "memory.current" : "memory.usage_in_bytes"
                ).flatMap(parseSingleValue)
            case .tasks:
                value = self.file(unified ? self.mounts.unified : self.mounts.pids, controlGroup, "pids.current")
                    .flatMap(parseSingleValue)
            case .ioRead, .ioWrite:
                guard unified else { continue }
                if !ioRead {
                    io = self.file(self.mounts.unified, controlGroup, "io.stat").map(parseIOBytes)
                    ioRead = true
                }
                value = io.map { metric == .ioRead ? $0.read : $0.write }
            case .ipIngress, .ipEgress:
                continue
            }
            readings[metric.rawValue] = value
        }
        return readings
    }

    /// systemd's IP accounting maps of the control group `controlGroup`, from the programs it attached
    /// to the cgroup2 directory (see ``IPAccountingMap``).
    func ipAccountingMaps(controlGroup: String) -> (ingress: IPAccountingMap?, egress: IPAccountingMap?) {
        guard self.findsIPMaps, let mount = self.mounts.unified, !controlGroup.isEmpty,
            let relative = relativePath(controlGroup, below: mount.root)
        else { return (nil, nil) }
        return IPAccountingMap.of(directory: relative.isEmpty ? mount.path : mount.path + "/" + relative)
    }

    private func file(_ mount: CgroupMount?, _ controlGroup: String, _ name: String) -> ArraySlice<UInt8>? {
        guard let mount, let relative = relativePath(controlGroup, below: mount.root),
            let directory = self.files.directory(mount, relative)
        else { return nil }
        return try? self.files.read(directory, name)
    }
}

/// The path of a cgroup below a mount whose root is `root` (`/` unless a sub-tree is mounted), without
/// the leading `/`; nil when the cgroup is not below that mount.
func relativePath(_ controlGroup: String, below root: String) -> String? {
    let root = root.hasSuffix("/") ? root.dropLast() : Substring(root)
    guard controlGroup.hasPrefix(root) else { return nil }
    let rest = controlGroup.dropFirst(root.count)
    guard rest.isEmpty || rest.hasPrefix("/") else { return nil }
    return String(rest.drop { $0 == "/" })
}

/// systemd's CPU figure from v2 `cpu.stat`: `usage_usec` in nanoseconds.
func parseCPUUsage(_ bytes: ArraySlice<UInt8>) -> UInt64? {
    keyedValue(bytes, "usage_usec").flatMap { $0.multipliedReportingOverflow(by: 1000).overflow ? nil : $0 * 1000 }
}

/// systemd's IO figures from v2 `io.stat`: `rbytes` and `wbytes` summed over every device.
func parseIOBytes(_ bytes: ArraySlice<UInt8>) -> (read: UInt64, write: UInt64) {
    var (read, write): (UInt64, UInt64) = (0, 0)
    for entry in parseIOStat(bytes).bytes {
        if entry.operation == .read { read &+= entry.value } else { write &+= entry.value }
    }
    return (read, write)
}
