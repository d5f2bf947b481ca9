import VigilCore

/// Scheduler statistics per CPU from `/proc/schedstat` (kernels built with CONFIG_SCHEDSTATS): time
/// spent running tasks and tasks spent waiting, and timeslices run. No file, no data.
struct SchedstatCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "schedstat",
        enabledByDefault: true,
        help: "scheduler statistics per CPU from /proc/schedstat"
    ) { setup in
        SchedstatCollector(file: KeptOpenFile(setup.paths.proc("schedstat")))
    }

    static let running = MetricFamily(
        "node_schedstat_running_seconds_total",
        help: "Number of seconds CPU spent running a process.",
        type: .counter
    )
    static let timeslices = MetricFamily(
        "node_schedstat_timeslices_total",
        help: "Number of timeslices executed by CPU.",
        type: .counter
    )
    static let waiting = MetricFamily(
        "node_schedstat_waiting_seconds_total",
        help: "Number of seconds spent by processing waiting for this CPU.",
        type: .counter
    )

    let file: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let (cpus, broken) = parseSchedstat(try context.reader.read(self.file))
        if broken > 0 {
            context.recordFailure("\(broken) unreadable cpu lines in \(self.file.path)")
        }
        guard !cpus.isEmpty else {
            if broken > 0 { return }
            throw CollectorError.failed("no cpu lines in \(self.file.path)")
        }
        writer.family(Self.running)
        for cpu in cpus {
            writer.sample(Double(cpu.runningNanoseconds) / 1e9, ("cpu", cpu.cpu))
        }
        writer.family(Self.timeslices)
        for cpu in cpus {
            writer.sample(Double(cpu.timeslices), ("cpu", cpu.cpu))
        }
        writer.family(Self.waiting)
        for cpu in cpus {
            writer.sample(Double(cpu.waitingNanoseconds) / 1e9, ("cpu", cpu.cpu))
        }
    }
}

/// One `cpuN` line of `/proc/schedstat`.
struct SchedstatCPU: Equatable {
    var cpu: Int
    var runningNanoseconds: UInt64
    var waitingNanoseconds: UInt64
    var timeslices: UInt64
}

/// Parses `/proc/schedstat`: of a `cpuN` line's nine counters, the 7th is the time spent running, the
/// 8th the time spent waiting (both in ns), the 9th the number of timeslices.
///
/// - Returns: the CPUs, and how many `cpuN` lines could not be read.
func parseSchedstat(_ bytes: ArraySlice<UInt8>) -> (cpus: [SchedstatCPU], broken: Int) {
    var cpus: [SchedstatCPU] = []
    var broken = 0
    for line in bytes.lines where line.hasPrefix("cpu") {
        var fields = line.fields
        var counters: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        var valid = true
        guard let cpu = fields.next()?.dropFirst(3).parseUInt64().flatMap({ Int(exactly: $0) }) else {
            broken += 1
            continue
        }
        while let field = fields.next() {
            guard let value = field.parseUInt64() else {
                valid = false
                break
            }
            switch count {
            case 6: counters.0 = value
            case 7: counters.1 = value
            case 8: counters.2 = value
            default: break
            }
            count += 1
        }
        // Strictly ascending, as the kernel writes them: a repeated CPU would repeat a series.
        guard valid, count >= 9, cpus.last.map({ $0.cpu < cpu }) ?? true else {
            broken += 1
            continue
        }
        cpus.append(
            SchedstatCPU(
                cpu: cpu,
                runningNanoseconds: counters.0,
                waitingNanoseconds: counters.1,
                timeslices: counters.2
            )
        )
    }
    return (cpus, broken)
}
