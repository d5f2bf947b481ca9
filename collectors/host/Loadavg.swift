import VigilCore

/// Load averages from `/proc/loadavg`: `node_load1`, `node_load5`, `node_load15`.
struct LoadavgCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "loadavg",
        enabledByDefault: true,
        help: "load averages from /proc/loadavg"
    ) { setup in
        LoadavgCollector(file: KeptOpenFile(setup.paths.proc("loadavg"), end: .shortRead))
    }

    let file: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try context.reader.read(self.file)
        guard let loads = parseLoadavg(bytes) else {
            throw CollectorError.failed("unexpected content in \(self.file.path)")
        }
        writer.family("node_load1", help: "1m load average.", type: .gauge)
        writer.sample(loads.0)
        writer.family("node_load5", help: "5m load average.", type: .gauge)
        writer.sample(loads.1)
        writer.family("node_load15", help: "15m load average.", type: .gauge)
        writer.sample(loads.2)
    }
}

/// The three load averages: the first three fields of `/proc/loadavg`.
func parseLoadavg(_ bytes: ArraySlice<UInt8>) -> (Double, Double, Double)? {
    var fields = bytes.fields
    guard let one = fields.next()?.parseDouble(),
        let five = fields.next()?.parseDouble(),
        let fifteen = fields.next()?.parseDouble()
    else { return nil }
    return (one, five, fifteen)
}
