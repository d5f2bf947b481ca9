import VigilCore

/// The fields of `/proc/vmstat` whose names match `collector.vmstat.fields`, as `node_vmstat_<field>`
/// families, untyped as in node_exporter (dashboards and recording rules expect that type).
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
            file: KeptOpenFile(setup.paths.proc("vmstat")),
            fields: try setup.settings.regex("collector.vmstat.fields")
        )
    }

    let file: KeptOpenFile
    let fields: GoRegex
    /// Per field name, its family, or nil when the filter leaves it out: decided once per name.
    private let families = FamilyCache()

    init(file: KeptOpenFile, fields: GoRegex) {
        self.file = file
        self.fields = fields
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try context.reader.read(self.file)
        var written: [ArraySlice<UInt8>] = []
        var broken = 0
        for line in bytes.lines {
            var columns = line.fields
            guard let name = columns.next(), let family = self.families.family(for: name, make: self.family) else {
                continue
            }
            // A name the file repeats would repeat its family and spoil the whole exposition.
            guard let value = columns.next()?.parseDouble(), !written.contains(where: { $0.elementsEqual(name) }) else {
                broken += 1
                continue
            }
            written.append(name)
            writer.family(family)
            writer.sample(value)
        }
        if broken > 0 {
            context.recordFailure("\(broken) unreadable lines in \(self.file.path)")
        }
    }

    private func family(_ name: ArraySlice<UInt8>) -> MetricFamily? {
        let field = name.string
        let family = "node_vmstat_" + field
        guard self.fields.matches(field), isValidMetricName(family) else { return nil }
        return MetricFamily(family, help: "/proc/vmstat information field \(field).", type: .untyped)
    }
}
