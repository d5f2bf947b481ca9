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

    static let bootTime = MetricFamily("node_boot_time_seconds", help: "Node boot time, in unixtime.", type: .gauge)
    static let contextSwitches = MetricFamily(
        "node_context_switches_total",
        help: "Total number of context switches.",
        type: .counter
    )
    static let forks = MetricFamily("node_forks_total", help: "Total number of forks.", type: .counter)
    static let interrupts = MetricFamily(
        "node_intr_total",
        help: "Total number of interrupts serviced.",
        type: .counter
    )
    static let blocked = MetricFamily(
        "node_procs_blocked",
        help: "Number of processes blocked waiting for I/O to complete.",
        type: .gauge
    )
    static let running = MetricFamily(
        "node_procs_running",
        help: "Number of processes in runnable state.",
        type: .gauge
    )
    static let softirqs = MetricFamily("node_softirqs_total", help: "Number of softirq calls.", type: .counter)

    /// The softirq vectors, sorted by name as node_exporter writes them, with their column on the
    /// `softirq` line (after the total).
    static let softirqVectors: [(name: String, column: Int)] = [
        ("block", 4), ("block_iopoll", 5), ("hi", 0), ("hrtimer", 8), ("net_rx", 3), ("net_tx", 2), ("rcu", 9),
        ("sched", 7), ("tasklet", 6), ("timer", 1),
    ]

    let file: KeptOpenFile
    let softirq: Bool

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let stat = parseStat(try ProcStat.bytes(of: self.file, context: context)[...], softirqs: self.softirq)
        if stat.broken > 0 {
            context.recordFailure("\(stat.broken) unreadable lines in \(self.file.path)")
        } else if stat == SystemStat() {
            throw CollectorError.failed("none of the expected lines in \(self.file.path)")
        }
        func write(_ family: MetricFamily, _ value: UInt64?) {
            guard let value else { return }
            writer.family(family)
            writer.sample(Double(value))
        }
        // Sorted by family name.
        write(Self.bootTime, stat.bootTime)
        write(Self.contextSwitches, stat.contextSwitches)
        write(Self.forks, stat.forks)
        write(Self.interrupts, stat.interrupts)
        write(Self.blocked, stat.blocked)
        write(Self.running, stat.running)
        if let softirqs = stat.softirqs, !softirqs.isEmpty {
            writer.family(Self.softirqs)
            for (vector, column) in Self.softirqVectors where column < softirqs.count {
                writer.sample(Double(softirqs[column]), ("vector", vector))
            }
        }
    }
}

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
        if key.equals("softirq") {
            guard softirqs else { continue }
            stat.softirqs = parseSoftirqCounts(&fields)
            if stat.softirqs == nil { stat.broken += 1 }
            continue
        }
        let value = fields.next()?.parseUInt64()
        switch true {
        case key.equals("intr"): stat.interrupts = value
        case key.equals("ctxt"): stat.contextSwitches = value
        case key.equals("btime"): stat.bootTime = value
        case key.equals("processes"): stat.forks = value
        case key.equals("procs_running"): stat.running = value
        case key.equals("procs_blocked"): stat.blocked = value
        default: continue
        }
        if value == nil { stat.broken += 1 }
    }
    return stat
}

/// The per-vector counts after the total of a `softirq` line; nil when any is not a number.
private func parseSoftirqCounts(_ fields: inout ByteFieldSequence) -> [UInt64]? {
    guard fields.next()?.parseUInt64() != nil else { return nil }
    var values: [UInt64] = []
    values.reserveCapacity(StatCollector.softirqVectors.count)
    while let field = fields.next() {
        guard let value = field.parseUInt64() else { return nil }
        values.append(value)
    }
    return values
}
