import Synchronization
import VigilCore

/// The fields of `/proc/vmstat` whose names match `collector.vmstat.fields`, as `node_vmstat_<field>`
/// families, untyped as in node_exporter (dashboards and recording rules expect that type).
final class VmstatCollector: Collector {
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
    private let selection: Mutex<VmstatSelection>

    init(file: KeptOpenFile, fields: GoRegex) {
        self.file = file
        self.selection = Mutex(VmstatSelection(fields: fields))
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try context.reader.read(self.file)
        let broken = self.selection.withLock { $0.write(bytes, into: &writer) }
        if broken > 0 {
            context.recordFailure("\(broken) unreadable lines in \(self.file.path)")
        }
    }
}

/// Writes the selected fields of `/proc/vmstat`, remembering per line which field it held and whether
/// that field is selected: the list changes only with the kernel, so a scrape compares names instead of
/// running the regular expression and building family names again.
struct VmstatSelection {
    private struct Field {
        var name: [UInt8]
        /// The family name and HELP, nil when the field is not selected.
        var family: (name: String, help: String)?
    }

    let fields: GoRegex
    private var known: [Field] = []

    init(fields: GoRegex) {
        self.fields = fields
    }

    /// Writes one family per selected `name value` line.
    ///
    /// - Returns: how many selected lines had no number.
    mutating func write(_ bytes: ArraySlice<UInt8>, into writer: inout MetricWriter) -> Int {
        var position = 0
        var broken = 0
        for line in bytes.lines {
            var columns = line.fields
            guard let name = columns.next() else { continue }
            if position == self.known.count || !self.known[position].name.elementsEqual(name) {
                self.learn(name, at: position)
            }
            position += 1
            guard let family = self.known[position - 1].family else { continue }
            guard let value = columns.next()?.parseDouble() else {
                broken += 1
                continue
            }
            writer.family(family.name, help: family.help, type: .untyped)
            writer.sample(value)
        }
        self.known.removeSubrange(position...)
        return broken
    }

    private mutating func learn(_ name: ArraySlice<UInt8>, at position: Int) {
        let text = name.string
        let family = "node_vmstat_" + text
        // A name seen earlier in the same file would repeat its family.
        let selected =
            self.fields.matches(text) && isValidMetricName(family)
            && !self.known[..<position].contains { $0.family != nil && $0.name.elementsEqual(name) }
        let field = Field(
            name: Array(name),
            family: selected ? (family, "/proc/vmstat information field \(text).") : nil
        )
        if position == self.known.count {
            self.known.append(field)
        } else {
            self.known[position] = field
        }
    }
}
