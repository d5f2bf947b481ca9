import VigilCore

/// Per-CPU packet processing counters from `/proc/net/softnet_stat` (hexadecimal columns). Older
/// kernels write fewer columns: only the families a line has are written for its CPU.
struct SoftnetCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "softnet",
        enabledByDefault: true,
        help: "per-CPU network softirq statistics from /proc/net/softnet_stat"
    ) { setup in
        SoftnetCollector(file: KeptOpenFile(setup.paths.proc("net/softnet_stat"), end: .roomForLine(256)))
    }

    let file: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let (cpus, broken) = parseSoftnet(try context.reader.read(self.file))
        if broken > 0 {
            context.recordFailure("\(broken) unreadable lines in \(self.file.path)")
        }
        for family in softnetFamilies {
            var started = false
            for cpu in cpus {
                guard let value = cpu[family.column] else { continue }
                if !started {
                    writer.family(family.family)
                    started = true
                }
                writer.sample(Double(value), ("cpu", cpu.cpu))
            }
        }
    }
}

/// The families, sorted by name, and where their values come from.
private let softnetFamilies: [(family: MetricFamily, column: SoftnetCPU.Column)] = [
    (MetricFamily("node_softnet_backlog_len", help: "Softnet backlog status", type: .gauge), .backlogLength),
    (
        counter("cpu_collision_total", "Number of collision occur while obtaining device lock while transmitting"),
        .cpuCollision
    ),
    (counter("dropped_total", "Number of dropped packets"), .dropped),
    (counter("flow_limit_count_total", "Number of times flow limit has been reached"), .flowLimitCount),
    (counter("processed_total", "Number of processed packets"), .processed),
    (counter("received_rps_total", "Number of times cpu woken up received_rps"), .receivedRPS),
    (counter("times_squeezed_total", "Number of times processing packets ran out of quota"), .timesSqueezed),
]

private func counter(_ name: String, _ help: String) -> MetricFamily {
    MetricFamily("node_softnet_" + name, help: help, type: .counter)
}

/// One line of `/proc/net/softnet_stat`; nil for the columns the kernel does not write.
struct SoftnetCPU: Equatable {
    var cpu: Int
    var processed: UInt64?
    var dropped: UInt64?
    var timesSqueezed: UInt64?
    var cpuCollision: UInt64?
    /// Since Linux 2.6.39.
    var receivedRPS: UInt64?
    /// Since Linux 4.18.
    var flowLimitCount: UInt64?
    /// Since Linux 5.14 (with the CPU number in the next column).
    var backlogLength: UInt64?

    enum Column {
        case processed, dropped, timesSqueezed, cpuCollision, receivedRPS, flowLimitCount, backlogLength
    }

    subscript(column: Column) -> UInt64? {
        switch column {
        case .processed: self.processed
        case .dropped: self.dropped
        case .timesSqueezed: self.timesSqueezed
        case .cpuCollision: self.cpuCollision
        case .receivedRPS: self.receivedRPS
        case .flowLimitCount: self.flowLimitCount
        case .backlogLength: self.backlogLength
        }
    }
}

/// Parses `/proc/net/softnet_stat`. A line needs the 9 columns of Linux 2.6.23; the CPU is the 13th
/// column where the kernel writes it (offline CPUs leave gaps), else the line's position.
///
/// - Returns: the CPUs, and how many lines could not be read.
func parseSoftnet(_ bytes: ArraySlice<UInt8>) -> (cpus: [SoftnetCPU], broken: Int) {
    var cpus: [SoftnetCPU] = []
    var broken = 0
    var position = -1
    for line in bytes.lines {
        var fields = line.fields
        guard var field = fields.next() else { continue }
        position += 1
        var cpu = SoftnetCPU(cpu: position)
        var count = 0
        var valid = true
        while true {
            guard let value = field.parseHex() else {
                valid = false
                break
            }
            switch count {
            case 0: cpu.processed = value
            case 1: cpu.dropped = value
            case 2: cpu.timesSqueezed = value
            case 8: cpu.cpuCollision = value
            case 9: cpu.receivedRPS = value
            case 10: cpu.flowLimitCount = value
            case 11: cpu.backlogLength = value
            case 12:
                guard let number = Int(exactly: value) else {
                    valid = false
                    break
                }
                cpu.cpu = number
            default: break
            }
            count += 1
            guard valid, let next = fields.next() else { break }
            field = next
        }
        // Strictly ascending: a repeated CPU would repeat a series.
        guard valid, count >= 9, cpus.last.map({ $0.cpu < cpu.cpu }) ?? true else {
            broken += 1
            continue
        }
        if count < 13 { cpu.backlogLength = nil }
        cpus.append(cpu)
    }
    return (cpus, broken)
}
