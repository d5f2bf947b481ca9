import VigilCore

/// System-wide counters from `/proc/stat`: interrupts, context switches, forks, boot time, running and
/// blocked processes, and with `collector.stat.softirq` softirqs per vector. A line the kernel does not
/// write costs its family only.
struct StatCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "stat",
        enabledByDefault: true,
        help: "kernel activity counters from /proc/stat",
        options: [OptionSpec("collector.stat.softirq", .bool(false), help: "Export softirq calculation metrics.")]
    ) { setup in
        StatCollector(file: ProcStat.file(setup.paths), softirq: setup.settings.bool("collector.stat.softirq"))
    }

    let file: KeptOpenFile
    let softirq: Bool

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let stat = parseStat(try ProcStat.bytes(of: self.file, context: context)[...], softirqs: self.softirq)
        if stat.broken > 0 {
            context.recordFailure("\(stat.broken) unreadable lines in \(self.file.path)")
        }
        for (name, help, type, value) in statFamilies {
            guard let value = stat[keyPath: value] else { continue }
            writer.family(name, help: help, type: type)
            writer.sample(Double(value))
        }
        if let softirqs = stat.softirqs, !softirqs.isEmpty {
            writer.family("node_softirqs_total", help: "Number of softirq calls.", type: .counter)
            for (vector, column) in softirqVectors where column < softirqs.count {
                writer.sample(Double(softirqs[column]), ("vector", vector))
            }
        }
    }
}

/// The single-value families, sorted by name as node_exporter writes them.
private let statFamilies: [(String, String, MetricType, any KeyPath<SystemStat, UInt64?> & Sendable)] = [
    ("node_boot_time_seconds", "Node boot time, in unixtime.", .gauge, \.bootTime),
    ("node_context_switches_total", "Total number of context switches.", .counter, \.contextSwitches),
    ("node_forks_total", "Total number of forks.", .counter, \.forks),
    ("node_intr_total", "Total number of interrupts serviced.", .counter, \.interrupts),
    ("node_procs_blocked", "Number of processes blocked waiting for I/O to complete.", .gauge, \.blocked),
    ("node_procs_running", "Number of processes in runnable state.", .gauge, \.running),
]

/// The softirq vectors by name (node_exporter's sorted order) and their column on the `softirq` line
/// after the total.
private let softirqVectors: [(String, Int)] = [
    ("block", 4), ("block_iopoll", 5), ("hi", 0), ("hrtimer", 8), ("net_rx", 3), ("net_tx", 2), ("rcu", 9),
    ("sched", 7), ("tasklet", 6), ("timer", 1),
]

/// The system-wide lines of `/proc/stat` (the `cpuN` lines belong to the cpu collector); nil for a
/// line the file does not have.
struct SystemStat: Equatable {
    var interrupts: UInt64?
    var contextSwitches: UInt64?
    var bootTime: UInt64?
    var forks: UInt64?
    var running: UInt64?
    var blocked: UInt64?
    /// The per-vector counts of the `softirq` line, in kernel order (only when asked for).
    var softirqs: [UInt64]?
    /// Known lines whose value is not a number.
    var broken = 0
}

/// Parses `/proc/stat`. Of the `intr` and `softirq` lines the first number is the total.
func parseStat(_ bytes: ArraySlice<UInt8>, softirqs: Bool = false) -> SystemStat {
    var stat = SystemStat()
    for line in bytes.lines where !line.hasPrefix("cpu") {
        var fields = line.fields
        guard let key = fields.next() else { continue }
        let target: WritableKeyPath<SystemStat, UInt64?>
        switch true {
        case key.equals("intr"): target = \.interrupts
        case key.equals("ctxt"): target = \.contextSwitches
        case key.equals("btime"): target = \.bootTime
        case key.equals("processes"): target = \.forks
        case key.equals("procs_running"): target = \.running
        case key.equals("procs_blocked"): target = \.blocked
        case key.equals("softirq") && softirqs:
            stat.softirqs = parseSoftirqCounts(&fields)
            if stat.softirqs == nil { stat.broken += 1 }
            continue
        default: continue
        }
        if let value = fields.next()?.parseUInt64() {
            stat[keyPath: target] = value
        } else {
            stat.broken += 1
        }
    }
    return stat
}

/// The per-vector counts after the total of a `softirq` line; nil when any is not a number.
private func parseSoftirqCounts(_ fields: inout ByteFieldSequence) -> [UInt64]? {
    guard fields.next()?.parseUInt64() != nil else { return nil }
    var values: [UInt64] = []
    values.reserveCapacity(softirqVectors.count)
    while let field = fields.next() {
        guard let value = field.parseUInt64() else { return nil }
        values.append(value)
    }
    return values
}
