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
    private let families = FamilyCache()

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try context.reader.read(self.file)
        var written = 0
        for field in MeminfoFields(bytes) {
            let family = self.families.family(for: field.key) { key in
                let name = meminfoName(key, inKilobytes: field.inKilobytes)
                guard isValidMetricName("node_memory_" + name) else { return nil }
                return MetricFamily("node_memory_" + name, help: "Memory information field \(name).", type: .gauge)
            }
            guard let family else { continue }
            writer.family(family)
            writer.sample(field.inKilobytes ? field.value * 1024 : field.value)
            written += 1
        }
        guard written > 0 else { throw CollectorError.failed("no fields in \(self.file.path)") }
    }
}

/// One `/proc/meminfo` line: the key as written (`Active(anon)`), its value, and whether it is in kB.
struct MeminfoField {
    var key: ArraySlice<UInt8>
    var value: Double
    var inKilobytes: Bool
}

/// The lines of `/proc/meminfo` that read `Key: value [kB]`; others are skipped.
struct MeminfoFields: Sequence, IteratorProtocol {
    private var lines: ByteSplitSequence

    init(_ bytes: ArraySlice<UInt8>) {
        self.lines = bytes.lines
    }

    mutating func next() -> MeminfoField? {
        while let line = self.lines.next() {
            var fields = line.fields
            guard let key = fields.next(), key.count > 1, key.last == UInt8(ascii: ":"),
                let value = fields.next()?.parseUInt64()
            else { continue }
            let unit = fields.next()
            if let unit, !unit.equals("kB") { continue }
            return MeminfoField(key: key.dropLast(), value: Double(value), inKilobytes: unit != nil)
        }
        return nil
    }
}

/// node_exporter's name for a meminfo key: `Active(anon)` → `Active_anon`, plus `_bytes` for kB values.
func meminfoName(_ key: ArraySlice<UInt8>, inKilobytes: Bool) -> String {
    var name = ""
    for byte in key {
        switch byte {
        case UInt8(ascii: "("): name.append("_")
        case UInt8(ascii: ")"): break
        default: name.unicodeScalars.append(Unicode.Scalar(byte))
        }
    }
    return inKilobytes ? name + "_bytes" : name
}
