import VigilCore

/// The kernel's entropy pool from `/proc/sys/kernel/random/`: bits available and pool size.
struct EntropyCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "entropy",
        enabledByDefault: true,
        help: "entropy pool statistics from /proc/sys/kernel/random"
    ) { setup in
        EntropyCollector(
            available: KeptOpenFile(setup.paths.proc("sys/kernel/random/entropy_avail"), end: .shortRead),
            poolSize: KeptOpenFile(setup.paths.proc("sys/kernel/random/poolsize"), end: .shortRead)
        )
    }

    static let availableFamily = MetricFamily(
        "node_entropy_available_bits",
        help: "Bits of available entropy.",
        type: .gauge
    )
    static let poolSizeFamily = MetricFamily("node_entropy_pool_size_bits", help: "Bits of entropy pool.", type: .gauge)

    let available: KeptOpenFile
    let poolSize: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        guard let available = try context.reader.read(self.available).trimmed().parseUInt64() else {
            throw CollectorError.failed("unexpected content in \(self.available.path)")
        }
        writer.family(Self.availableFamily)
        writer.sample(Double(available))
        guard let poolSize = try context.reader.read(self.poolSize).trimmed().parseUInt64() else {
            throw CollectorError.failed("unexpected content in \(self.poolSize.path)")
        }
        writer.family(Self.poolSizeFamily)
        writer.sample(Double(poolSize))
    }
}
