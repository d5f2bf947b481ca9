import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Pressure stall information from `/proc/pressure/{cpu,io,memory,irq}` (Linux 4.20+, irq 6.1+): the
/// total time tasks waited (`some`) or nothing could run (`full`). Without PSI there is no data.
struct PressureCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "pressure",
        enabledByDefault: true,
        help: "pressure stall information from /proc/pressure"
    ) { setup in
        PressureCollector(
            cpu: KeptOpenFile(setup.paths.proc("pressure/cpu"), end: .shortRead),
            io: KeptOpenFile(setup.paths.proc("pressure/io"), end: .shortRead),
            memory: KeptOpenFile(setup.paths.proc("pressure/memory"), end: .shortRead),
            irq: KeptOpenFile(setup.paths.proc("pressure/irq"), end: .shortRead)
        )
    }

    static let cpuWaiting = counter(
        "cpu_waiting_seconds_total",
        "Total time in seconds that processes have waited for CPU time"
    )
    static let ioStalled = counter(
        "io_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IO congestion"
    )
    static let ioWaiting = counter(
        "io_waiting_seconds_total",
        "Total time in seconds that processes have waited due to IO congestion"
    )
    static let irqStalled = counter(
        "irq_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IRQ congestion"
    )
    static let memoryStalled = counter(
        "memory_stalled_seconds_total",
        "Total time in seconds no process could make progress due to memory congestion"
    )
    static let memoryWaiting = counter(
        "memory_waiting_seconds_total",
        "Total time in seconds that processes have waited for memory"
    )

    let cpu: KeptOpenFile
    let io: KeptOpenFile
    let memory: KeptOpenFile
    let irq: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let cpu = try self.read(self.cpu, context)
        let io = try self.read(self.io, context)
        let memory = try self.read(self.memory, context)
        let irq = try self.read(self.irq, context)
        guard cpu != nil || io != nil || memory != nil || irq != nil else {
            throw CollectorError.noData("no pressure stall information (needs Linux 4.20+ with CONFIG_PSI)")
        }
        // Sorted by family name. cpu's `full` line (Linux 5.13+) is not exported; irq has no `some`.
        self.write(Self.cpuWaiting, cpu, full: false, self.cpu, into: &writer, context)
        self.write(Self.ioStalled, io, full: true, self.io, into: &writer, context)
        self.write(Self.ioWaiting, io, full: false, self.io, into: &writer, context)
        self.write(Self.irqStalled, irq, full: true, self.irq, into: &writer, context)
        self.write(Self.memoryStalled, memory, full: true, self.memory, into: &writer, context)
        self.write(Self.memoryWaiting, memory, full: false, self.memory, into: &writer, context)
    }

    /// Writes one family from the `some` or `full` total (µs) of a file. A file without that line is a
    /// failure; a file the kernel does not have (`totals` nil) is not.
    private func write(
        _ family: MetricFamily,
        _ totals: PressureTotals?,
        full: Bool,
        _ file: KeptOpenFile,
        into writer: inout MetricWriter,
        _ context: ScrapeContext
    ) {
        guard let totals else { return }
        guard let total = full ? totals.full : totals.some else {
            context.recordFailure("\(family.nameString): no total in \(file.path)")
            return
        }
        writer.family(family)
        writer.sample(Double(total) / 1000 / 1000)
    }

    /// The totals of one file (`parsePressure` reads cgroups' `*.pressure` files too); nil when the
    /// kernel does not have it.
    private func read(_ file: KeptOpenFile, _ context: ScrapeContext) throws -> PressureTotals? {
        do {
            return parsePressure(try context.reader.read(file))
        } catch  where error.isNotFound {
            return nil
        } catch  where error.errno == EOPNOTSUPP {
            throw CollectorError.noData("pressure stall information is disabled (psi=0 on the kernel command line)")
        }
    }
}

private func counter(_ name: String, _ help: String) -> MetricFamily {
    MetricFamily("node_pressure_" + name, help: help, type: .counter)
}
