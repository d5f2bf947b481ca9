import VigilCore

/// File handle counts from `/proc/sys/fs/file-nr`: allocated, and the system-wide maximum.
struct FilefdCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "filefd",
        enabledByDefault: true,
        help: "file descriptor statistics from /proc/sys/fs/file-nr"
    ) { setup in
        FilefdCollector(file: KeptOpenFile(setup.paths.proc("sys/fs/file-nr"), end: .shortRead))
    }

    static let allocated = MetricFamily(
        "node_filefd_allocated",
        help: "File descriptor statistics: allocated.",
        type: .gauge
    )
    static let maximum = MetricFamily("node_filefd_maximum", help: "File descriptor statistics: maximum.", type: .gauge)

    let file: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        guard let counts = parseFileNr(try context.reader.read(self.file)) else {
            throw CollectorError.failed("unexpected content in \(self.file.path)")
        }
        writer.family(Self.allocated)
        writer.sample(Double(counts.allocated))
        writer.family(Self.maximum)
        writer.sample(Double(counts.maximum))
    }
}

/// The first and third of the three numbers in `file-nr` (the second, free handles, is always 0 since
/// Linux 2.6).
func parseFileNr(_ bytes: ArraySlice<UInt8>) -> (allocated: UInt64, maximum: UInt64)? {
    var fields = bytes.fields
    guard let allocated = fields.next()?.parseUInt64(), fields.next()?.parseUInt64() != nil,
        let maximum = fields.next()?.parseUInt64()
    else { return nil }
    return (allocated, maximum)
}
