import VigilCore

/// The fields of `/proc/vmstat` whose names match `collector.vmstat.fields`, as `node_vmstat_<field>`
/// families, untyped as in node_exporter (dashboards and recording rules expect that type).
///
/// The kernel writes the same names in the same order on every read: the families are worked out
/// once for the file's shape (``NumberLayout``), and a scrape only checks the text around the numbers.
struct VmstatCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "vmstat",
        enabledByDefault: true,
        help: "virtual memory statistics from /proc/vmstat",
        options: [
            OptionSpec(
                "collector.vmstat.fields",
                .regex("^(oom_kill|pgpg|pswp|pg.*fault).*"),
                help: "Regexp of fields to return for vmstat collector."
            )
        ]
    ) { setup in
        VmstatCollector(
            file: KeptOpenFile(setup.paths.proc("vmstat"), end: .roomForLine(128)),
            fields: try setup.settings.regex("collector.vmstat.fields")
        )
    }

    let file: KeptOpenFile
    let fields: GoRegex
    private let layout = CurrentLayout()

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try context.reader.read(self.file)
        self.layout.write([bytes], into: &writer, context: context) { shape in
            vmstatLayout(shape, fields: self.fields, path: self.file.path)
        }
    }
}

/// The families of a `/proc/vmstat` shape (`name value` lines): one for each field `fields` selects.
/// A selected line without a number, or repeating a field, is reported as unreadable (a repeated
/// family would spoil the whole exposition).
func vmstatLayout(_ shape: NumberShape, fields: GoRegex, path: String) -> NumberLayout {
    var layout = NumberLayout(shape: shape)
    var seen = Set<String>()
    var unreadable = 0
    for line in (shape.files.first ?? []).lines {
        let columns = Array(line.fields)
        guard let name = columns.first, !name.isShapeNumber else {
            layout.skipNumbers(in: line)
            continue
        }
        let field = name.string
        let family = "node_vmstat_" + field
        let selected = fields.matches(field)
        guard columns.count == 2, columns[1].isShapeNumber else {
            if selected { unreadable += 1 }
            layout.skipNumbers(in: line)
            continue
        }
        if !selected || !isValidMetricName(family) {
            layout.add([])
        } else if seen.insert(field).inserted {
            layout.add([NumberLayout.Family(family, help: "/proc/vmstat information field \(field).", type: .untyped)])
        } else {
            unreadable += 1
            layout.add([])
        }
    }
    if unreadable > 0 { layout.problems.append("\(unreadable) unreadable lines in \(path)") }
    return layout
}
