import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Socket counts from `/proc/net/sockstat` and `/proc/net/sockstat6`: `node_sockstat_sockets_used`
/// and `node_sockstat_<PROTO>_<field>` gauges, with `mem` (pages) also as `_mem_bytes`.
struct SockstatCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "sockstat",
        enabledByDefault: true,
        help: "socket statistics from /proc/net/sockstat and /proc/net/sockstat6"
    ) { setup in
        SockstatCollector(
            sockstat: KeptOpenFile(setup.paths.proc("net/sockstat"), end: .shortRead),
            sockstat6: KeptOpenFile(setup.paths.proc("net/sockstat6"), end: .shortRead),
            pageSize: Double(sysconf(Int32(_SC_PAGESIZE)))
        )
    }

    /// Either file may be absent (IPv4 or IPv6 disabled); with neither there is no data.
    let sockstat: KeptOpenFile
    let sockstat6: KeptOpenFile
    /// `mem` counts pages of this size.
    let pageSize: Double
    private let layout = CurrentLayout()

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        // The reader's buffer holds one file at a time: keep a copy of the first.
        let ipv4 = try context.reader.readIfPresent(self.sockstat).map { Array($0)[...] }
        let ipv6 = try context.reader.readIfPresent(self.sockstat6)
        guard ipv4 != nil || ipv6 != nil else {
            throw CollectorError.noData("neither \(self.sockstat.path) nor \(self.sockstat6.path) exists")
        }
        self.layout.write([ipv4 ?? [], ipv6 ?? []], into: &writer, context: context) { shape in
            sockstatLayout(shape, pageSize: self.pageSize)
        }
    }
}

/// The families of `/proc/net/sockstat` and `sockstat6` (`PROTO: key value key value…` lines) from
/// their ``NumberShape``: node_exporter's fields `inuse`, `orphan`, `tw`, `alloc`, `mem`, `memory`,
/// `mem` again in bytes as `mem_bytes`, and `sockets: used` of the IPv4 file as `sockets_used`.
func sockstatLayout(_ shape: NumberShape, pageSize: Double) -> NumberLayout {
    var layout = NumberLayout(shape: shape)
    var seen = Set<String>()
    let files = shape.files
    for (fileIndex, file) in files.enumerated() {
        let path = fileIndex == 0 ? "/proc/net/sockstat" : "/proc/net/sockstat6"
        for line in file.lines {
            let fields = Array(line.fields)
            guard let label = fields.first, label.count > 1, label.last == UInt8(ascii: ":") else {
                if !fields.isEmpty { layout.problems.append("unexpected line in \(path): \(line.string)") }
                layout.skipNumbers(in: line)
                continue
            }
            let proto = String(decoding: label.dropLast(), as: UTF8.self)
            if fields.count % 2 == 0 {
                layout.problems.append("\(proto) in \(path) has a name without a value")
            }
            for index in fields.indices.dropFirst() where fields[index].isShapeNumber {
                // Only a number right after a known name is a sample.
                let key = index % 2 == 0 ? fields[index - 1].string : ""
                var families: [NumberLayout.Family] = []
                if proto == "sockets" {
                    if key == "used" && fileIndex == 0 {
                        families.append(
                            .init(
                                "node_sockstat_sockets_used",
                                help: "Number of IPv4 sockets in use.",
                                type: .gauge
                            )
                        )
                    }
                } else if sockstatFields.contains(key) {
                    families.append(sockstatFamily(proto, key))
                    if key == "mem" { families.append(sockstatFamily(proto, "mem_bytes", scale: pageSize)) }
                }
                families.removeAll { !isValidMetricName($0.name) || !seen.insert($0.name).inserted }
                layout.add(families)
            }
        }
    }
    return layout
}

/// The fields node_exporter exports (procfs knows these; it ignores others).
private let sockstatFields: Set<String> = ["inuse", "orphan", "tw", "alloc", "mem", "memory"]

private func sockstatFamily(_ proto: String, _ field: String, scale: Double = 1) -> NumberLayout.Family {
    NumberLayout.Family(
        "node_sockstat_" + proto + "_" + field,
        help: "Number of " + proto + " sockets in state " + field + ".",
        type: .gauge,
        scale: scale
    )
}
