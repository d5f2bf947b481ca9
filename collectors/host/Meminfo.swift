import VigilCore

/// Every field of `/proc/meminfo` as `node_memory_<Field>[_bytes]`, with node_exporter's names:
/// `Active(anon)` becomes `Active_anon`, values in kB are multiplied by 1024 and get `_bytes`, page
/// counts (`HugePages_Total`) keep their unit-less name. Lines of another form are skipped.
///
/// The file's keys come in the same order on every read: the families are worked out once for the
/// file's shape (``NumberLayout``) and a scrape only checks the text around the numbers while picking
/// them out.
struct MeminfoCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "meminfo",
        enabledByDefault: true,
        help: "memory statistics from /proc/meminfo"
    ) { setup in
        MeminfoCollector(file: KeptOpenFile(setup.paths.proc("meminfo"), end: .shortRead))
    }

    let file: KeptOpenFile
    private let layout = CurrentLayout()

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try context.reader.read(self.file)
        let layout = self.layout.write([bytes], into: &writer, context: context, make: meminfoLayout)
        guard !layout.hasNoFamilies else { throw CollectorError.failed("no fields in \(self.file.path)") }
    }
}

/// The families of the numbers of a `/proc/meminfo` shape: the number of each `Key: value [kB]` line
/// gets one (the first time its name comes up); any other number, none.
func meminfoLayout(_ shape: NumberShape) -> NumberLayout {
    var layout = NumberLayout(shape: shape)
    var seen = Set<String>()
    for line in (shape.files.first ?? []).lines {
        let fields = Array(line.fields)
        for (index, field) in fields.enumerated() where field.isShapeNumber {
            var families: [NumberLayout.Family] = []
            if index == 1, let key = fields.first, key.count > 1, key.last == UInt8(ascii: ":"),
                fields.count == 2 || fields[2].equals("kB")
            {
                let inKilobytes = fields.count > 2
                let name = meminfoName(key.dropLast(), inKilobytes: inKilobytes)
                if isValidMetricName("node_memory_" + name), seen.insert(name).inserted {
                    families.append(
                        NumberLayout.Family(
                            "node_memory_" + name,
                            help: "Memory information field \(name).",
                            type: .gauge,
                            scale: inKilobytes ? 1024 : 1
                        )
                    )
                }
            }
            layout.add(families)
        }
    }
    return layout
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
