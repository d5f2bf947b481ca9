import Synchronization
import VigilCore

/// CPU time per CPU and mode from the `cpuN` lines of `/proc/stat` (`node_cpu_seconds_total`,
/// `node_cpu_guest_seconds_total`), and thermal throttling counts from sysfs.
///
/// As node_exporter does, it keeps the last values per CPU so that the counters never go backwards:
/// the kernel's idle and iowait times can step back a little, and a CPU that was hot-plugged starts
/// again from zero (idle time 3 s or more below the last value resets that CPU). CPUs that are no
/// longer listed (offline) are dropped.
final class CPUCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "cpu",
        enabledByDefault: true,
        help: "CPU time per mode from /proc/stat, thermal throttling from sysfs",
        options: [
            OptionSpec("collector.cpu.guest", .bool(true), help: "Enables metric node_cpu_guest_seconds_total")
        ]
    ) { setup in
        CPUCollector(
            stat: ProcStat.file(setup.paths),
            guest: setup.settings.bool("collector.cpu.guest"),
            throttle: ThermalThrottle(cpuDirectory: setup.paths.sys("devices/system/cpu")),
            // Fixed at boot (isolcpus=): read once, as node_exporter does.
            isolated: (try? FileReader().read(setup.paths.sys("devices/system/cpu/isolated")))
                .flatMap(parseCPUList) ?? []
        )
    }

    let stat: KeptOpenFile
    let guest: Bool
    /// nil when no CPU has throttle counters (VMs, most non-x86 hosts): nothing to read then.
    let throttle: ThermalThrottle?
    /// The CPUs kept from the scheduler's general use.
    let isolated: [Int]
    private let counters = Mutex(CPUCounters())

    static let isolatedFamily = MetricFamily(
        "node_cpu_isolated",
        help: "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
        type: .gauge
    )

    init(stat: KeptOpenFile, guest: Bool, throttle: ThermalThrottle?, isolated: [Int]) {
        self.stat = stat
        self.guest = guest
        self.throttle = throttle
        self.isolated = isolated
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try ProcStat.bytes(of: self.stat, context: context)
        let (cpus, broken) = self.counters.withLock { counters in
            let broken = counters.update(from: bytes[...])
            counters.write(into: &writer, guest: self.guest)
            return (counters.cpus.count, broken)
        }
        guard cpus > 0 else { throw CollectorError.failed("no cpuN lines in \(self.stat.path)") }
        if broken > 0 {
            context.recordFailure("\(broken) unreadable cpu lines in \(self.stat.path)")
        }
        if !self.isolated.isEmpty {
            writer.family(Self.isolatedFamily)
            for cpu in self.isolated {
                writer.sample(1, ("cpu", cpu))
            }
        }
        self.throttle?.write(into: &writer, reader: context.reader)
    }
}

/// Parses a kernel CPU list (`0-2,5,7-8`, as in `devices/system/cpu/isolated`); nil for anything else.
func parseCPUList(_ bytes: ArraySlice<UInt8>) -> [Int]? {
    var cpus: [Int] = []
    let text = bytes.trimmed()
    guard !text.isEmpty else { return [] }
    for part in text.split(byte: UInt8(ascii: ",")) {
        let (first, last) = part.splitOnce(UInt8(ascii: "-")) ?? (part, part)
        // At most 2^16 CPUs: Linux builds for 8192 at most.
        guard let low = first.parseUInt64(), let high = last.parseUInt64(), low <= high, high < 65536 else {
            return nil
        }
        cpus.append(contentsOf: Int(low)...Int(high))
    }
    return cpus
}

/// The time one CPU spent in each mode, in seconds (`/proc/stat` counts USER_HZ ticks: 100 a second).
struct CPUTimes: Equatable {
    var user = 0.0
    var nice = 0.0
    var system = 0.0
    var idle = 0.0
    var iowait = 0.0
    var irq = 0.0
    var softirq = 0.0
    var steal = 0.0
    var guest = 0.0
    var guestNice = 0.0

    /// Takes a new reading without letting any counter go backwards. Idle time 3 s or more below the
    /// last value means the CPU was hot-plugged: its counters restart from the new reading.
    mutating func advance(to reading: CPUTimes) {
        if self.idle - reading.idle >= 3 { self = CPUTimes() }
        self.user = max(self.user, reading.user)
        self.nice = max(self.nice, reading.nice)
        self.system = max(self.system, reading.system)
        self.idle = max(self.idle, reading.idle)
        self.iowait = max(self.iowait, reading.iowait)
        self.irq = max(self.irq, reading.irq)
        self.softirq = max(self.softirq, reading.softirq)
        self.steal = max(self.steal, reading.steal)
        self.guest = max(self.guest, reading.guest)
        self.guestNice = max(self.guestNice, reading.guestNice)
    }
}

/// Parses a `cpuN` line of `/proc/stat`: the CPU number and its times. Columns missing at the end
/// (older kernels have no steal or guest) count as 0, extra columns of newer kernels are ignored; nil
/// for a line without the four oldest columns or with anything that is not a number.
func parseCPULine(_ line: ArraySlice<UInt8>) -> (cpu: Int, times: CPUTimes)? {
    var fields = line.fields
    guard let name = fields.next(), name.hasPrefix("cpu"),
        let number = name.dropFirst(3).parseUInt64(), let cpu = Int(exactly: number)
    else { return nil }
    var times = CPUTimes()
    var columns = 0
    while let field = fields.next() {
        guard let ticks = field.parseUInt64() else { return nil }
        let seconds = Double(ticks) / 100
        switch columns {
        case 0: times.user = seconds
        case 1: times.nice = seconds
        case 2: times.system = seconds
        case 3: times.idle = seconds
        case 4: times.iowait = seconds
        case 5: times.irq = seconds
        case 6: times.softirq = seconds
        case 7: times.steal = seconds
        case 8: times.guest = seconds
        case 9: times.guestNice = seconds
        default: break
        }
        columns += 1
    }
    return columns >= 4 ? (cpu, times) : nil
}

/// The values the cpu collector reports: per online CPU, in `/proc/stat` order, the highest seen.
struct CPUCounters {
    static let secondsFamily = MetricFamily(
        "node_cpu_seconds_total",
        help: "Seconds the CPUs spent in each mode.",
        type: .counter
    )
    static let guestFamily = MetricFamily(
        "node_cpu_guest_seconds_total",
        help: "Seconds the CPUs spent in guests (VMs) for each mode.",
        type: .counter
    )

    private(set) var cpus: [(cpu: Int, times: CPUTimes)] = []

    /// Applies one reading of `/proc/stat`; CPUs it does not list are dropped.
    ///
    /// - Returns: how many `cpuN` lines could not be used (garbage, or not in ascending CPU order).
    mutating func update(from stat: ArraySlice<UInt8>) -> Int {
        var position = 0
        var broken = 0
        for line in stat.lines {
            // The cpu lines come first; stop before the long intr line.
            guard line.hasPrefix("cpu") else {
                if position > 0 || broken > 0 { break }
                continue
            }
            if line.hasPrefix("cpu ") || line.hasPrefix("cpu\t") { continue }  // all CPUs together
            guard let (cpu, reading) = parseCPULine(line), position == 0 || cpu > self.cpus[position - 1].cpu else {
                broken += 1
                continue
            }
            self.record(cpu, reading, at: position)
            position += 1
        }
        self.cpus.removeSubrange(position...)
        return broken
    }

    /// Puts the reading of `cpu` at `position`, keeping what is known about it: the CPUs listed
    /// before it last time and missing now went offline.
    private mutating func record(_ cpu: Int, _ reading: CPUTimes, at position: Int) {
        if position == self.cpus.count {
            self.cpus.append((cpu, CPUTimes()))
        } else if self.cpus[position].cpu != cpu {
            if let index = self.cpus[position...].firstIndex(where: { $0.cpu == cpu }) {
                self.cpus.removeSubrange(position..<index)
            } else {
                self.cpus.insert((cpu, CPUTimes()), at: position)
            }
        }
        self.cpus[position].times.advance(to: reading)
    }

    /// Writes `node_cpu_seconds_total` and, with `guest`, `node_cpu_guest_seconds_total`; modes in
    /// node_exporter's (sorted) order.
    func write(into writer: inout MetricWriter, guest: Bool) {
        guard !self.cpus.isEmpty else { return }
        writer.family(Self.secondsFamily)
        for (cpu, times) in self.cpus {
            writer.sample(times.idle, ("cpu", cpu), ("mode", "idle"))
            writer.sample(times.iowait, ("cpu", cpu), ("mode", "iowait"))
            writer.sample(times.irq, ("cpu", cpu), ("mode", "irq"))
            writer.sample(times.nice, ("cpu", cpu), ("mode", "nice"))
            writer.sample(times.softirq, ("cpu", cpu), ("mode", "softirq"))
            writer.sample(times.steal, ("cpu", cpu), ("mode", "steal"))
            writer.sample(times.system, ("cpu", cpu), ("mode", "system"))
            writer.sample(times.user, ("cpu", cpu), ("mode", "user"))
        }
        guard guest else { return }
        writer.family(Self.guestFamily)
        for (cpu, times) in self.cpus {
            writer.sample(times.guestNice, ("cpu", cpu), ("mode", "nice"))
            writer.sample(times.guest, ("cpu", cpu), ("mode", "user"))
        }
    }
}

/// Thermal throttling counts from `devices/system/cpu/cpuN/thermal_throttle/`, per package and per
/// core as `topology/` places each CPU (hyper-threads share their core's count).
struct ThermalThrottle: Sendable {
    static let coreFamily = MetricFamily(
        "node_cpu_core_throttles_total",
        help: "Number of times this CPU core has been throttled.",
        type: .counter
    )
    static let packageFamily = MetricFamily(
        "node_cpu_package_throttles_total",
        help: "Number of times this CPU package has been throttled.",
        type: .counter
    )

    let cpuDirectory: String

    /// nil when no CPU has a `thermal_throttle` directory: the driver is there from boot or not at all.
    init?(cpuDirectory: String) {
        let cpus = (try? FileSystem.entries(of: cpuDirectory)) ?? []
        guard
            cpus.contains(where: {
                isCPUDirectoryName($0) && FileSystem.isDirectory(cpuDirectory + "/\($0)/thermal_throttle")
            })
        else { return nil }
        self.cpuDirectory = cpuDirectory
    }

    /// Writes `node_cpu_core_throttles_total` and `node_cpu_package_throttles_total`. A CPU without
    /// topology or counters is skipped, as node_exporter does.
    func write(into writer: inout MetricWriter, reader: FileReader) {
        var cores: [(package: Int, core: Int, count: Int)] = []
        var packages: [(package: Int, count: Int)] = []
        for name in (try? FileSystem.entries(of: self.cpuDirectory)) ?? [] where isCPUDirectoryName(name) {
            let base = self.cpuDirectory + "/" + name
            guard let package = Self.read(base + "/topology/physical_package_id", reader),
                let core = Self.read(base + "/topology/core_id", reader)
            else { continue }
            if !cores.contains(where: { $0.package == package && $0.core == core }),
                let count = Self.read(base + "/thermal_throttle/core_throttle_count", reader)
            {
                cores.append((package, core, count))
            }
            if !packages.contains(where: { $0.package == package }),
                let count = Self.read(base + "/thermal_throttle/package_throttle_count", reader)
            {
                packages.append((package, count))
            }
        }
        if !cores.isEmpty {
            cores.sort { ($0.package, $0.core) < ($1.package, $1.core) }
            writer.family(Self.coreFamily)
            for entry in cores {
                writer.sample(Double(entry.count), ("core", entry.core), ("package", entry.package))
            }
        }
        if !packages.isEmpty {
            packages.sort { $0.package < $1.package }
            writer.family(Self.packageFamily)
            for entry in packages {
                writer.sample(Double(entry.count), ("package", entry.package))
            }
        }
    }

    /// A non-negative number from a one-line attribute; nil when absent or not a number (`-1`).
    private static func read(_ path: String, _ reader: FileReader) -> Int? {
        guard let value = try? reader.readUInt64(path) else { return nil }
        return Int(exactly: value)
    }
}

/// `cpu0`, `cpu12`: the per-CPU directories of `devices/system/cpu` (not `cpufreq`, `cpuidle`).
func isCPUDirectoryName(_ name: String) -> Bool {
    let digits = name.utf8.dropFirst(3)
    return name.hasPrefix("cpu") && !digits.isEmpty
        && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
}
