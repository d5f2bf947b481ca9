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
    let fields: GoRegex
    private let layout = Mutex(VmstatLayout())

    init(file: KeptOpenFile, fields: GoRegex) {
        self.file = file
        self.fields = fields
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let bytes = try context.reader.read(self.file)
        let broken = self.layout.withLock { $0.write(bytes, into: &writer) { self.family($0) } }
        if broken > 0 {
            context.recordFailure("\(broken) unreadable lines in \(self.file.path)")
        }
    }

    /// The family of a field, or nil when the filter leaves it out.
    private func family(_ name: ArraySlice<UInt8>) -> MetricFamily? {
        let field = name.string
        let family = "node_vmstat_" + field
        guard self.fields.matches(field), isValidMetricName(family) else { return nil }
        return MetricFamily(family, help: "/proc/vmstat information field \(field).", type: .untyped)
    }
}

/// The families of `/proc/vmstat`'s lines, remembered by line position: the kernel writes the same
/// names in the same order on every read, so a scrape compares each line's name with the one seen at
/// that position (no hashing per line: 200 lines of which a handful are written) and decides afresh
/// only from where they differ.
struct VmstatLayout {
    /// The names seen, one after the other; line `i`'s ends at `ends[i]`.
    private var names: [UInt8] = []
    private var ends: [Int] = []
    /// Line `i`'s family; nil when the filter leaves the field out.
    private var families: [MetricFamily?] = []

    /// Writes one family per selected `name value` line; `make` decides a name not seen at its position.
    ///
    /// - Returns: how many selected lines could not be used (no number, or a name the file repeats).
    mutating func write(
        _ bytes: ArraySlice<UInt8>,
        into writer: inout MetricWriter,
        make: (ArraySlice<UInt8>) -> MetricFamily?
    ) -> Int {
        var position = 0
        var broken = 0
        var written: [ArraySlice<UInt8>] = []
        for line in bytes.lines {
            var columns = line.fields
            guard let name = columns.next() else { continue }
            let start = position == 0 ? 0 : self.ends[position - 1]
            if position == self.ends.count || !self.names[start..<self.ends[position]].elementsEqual(name) {
                self.forget(from: position)
                self.names.append(contentsOf: name)
                self.ends.append(self.names.count)
                self.families.append(make(name))
            }
            position += 1
            guard let family = self.families[position - 1] else { continue }
            // A name the file repeats would repeat its family and spoil the whole exposition.
            guard let value = columns.next()?.parseDouble(), !written.contains(where: { $0.elementsEqual(name) }) else {
                broken += 1
                continue
            }
            written.append(name)
            writer.family(family)
            writer.sample(value)
        }
        self.forget(from: position)
        return broken
    }

    /// Drops what is remembered for the lines from `position` on.
    private mutating func forget(from position: Int) {
        guard position < self.ends.count else { return }
        self.names.removeSubrange((position == 0 ? 0 : self.ends[position - 1])...)
        self.ends.removeSubrange(position...)
        self.families.removeSubrange(position...)
    }
}
