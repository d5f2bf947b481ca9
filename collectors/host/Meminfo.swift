import VigilCore

/// Every field of `/proc/meminfo` as `node_memory_<Field>[_bytes]`, with node_exporter's names:
/// `Active(anon)` becomes `Active_anon`, values in kB are multiplied by 1024 and get `_bytes`, page
/// counts (`HugePages_Total`) keep their unit-less name.
struct MeminfoCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "meminfo",
        enabledByDefault: true,
        help: "memory statistics from /proc/meminfo"
    ) { setup in
        MeminfoCollector(file: KeptOpenFile(setup.paths.proc("meminfo")))
    }

    let file: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try context.reader.read(self.file)
        let fields = parseMeminfo(bytes)
        guard !fields.isEmpty else { throw CollectorError.failed("no fields in \(self.file.path)") }
        for field in fields {
            let name = "node_memory_" + field.name
            writer.family(name, help: "Memory information field \(field.name).", type: .gauge)
            writer.sample(field.value)
        }
    }
}

/// One `/proc/meminfo` line, named and scaled as node_exporter does.
struct MeminfoField: Equatable {
    var name: String
    var value: Double
}

/// Parses `/proc/meminfo`; lines that do not read `Key: value [kB]` are skipped.
func parseMeminfo(_ bytes: ArraySlice<UInt8>) -> [MeminfoField] {
    var result: [MeminfoField] = []
    result.reserveCapacity(64)
    for line in bytes.lines {
        var fields = line.fields
        guard let key = fields.next(), key.last == UInt8(ascii: ":"), let value = fields.next()?.parseUInt64() else {
            continue
        }
        var name = ""
        for byte in key.dropLast() {
            switch byte {
            case UInt8(ascii: "("): name.append("_")
            case UInt8(ascii: ")"): break
            default: name.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        guard isValidMetricName("node_memory_" + name) else { continue }
        if let unit = fields.next() {
            guard unit.equals("kB") else { continue }
            result.append(MeminfoField(name: name + "_bytes", value: Double(value) * 1024))
        } else {
            result.append(MeminfoField(name: name, value: Double(value)))
        }
    }
    return result
}
