import VigilCore

/// Connection tracking: `node_nf_conntrack_entries` and `_entries_limit` from
/// `/proc/sys/net/netfilter/nf_conntrack_{count,max}`, and `node_nf_conntrack_stat_*` summed over the
/// CPU rows of `/proc/net/stat/nf_conntrack` (hexadecimal; the header line names the columns). Gauges,
/// as node_exporter has them. Without the conntrack module there is no data.
struct ConntrackCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "conntrack",
        enabledByDefault: true,
        help: "connection tracking statistics from /proc/sys/net/netfilter and /proc/net/stat/nf_conntrack"
    ) { setup in
        ConntrackCollector(
            count: KeptOpenFile(setup.paths.proc("sys/net/netfilter/nf_conntrack_count"), end: .shortRead),
            limit: KeptOpenFile(setup.paths.proc("sys/net/netfilter/nf_conntrack_max"), end: .shortRead),
            statistics: KeptOpenFile(setup.paths.proc("net/stat/nf_conntrack"), end: .roomForLine(256))
        )
    }

    let count: KeptOpenFile
    let limit: KeptOpenFile
    let statistics: KeptOpenFile
    private let headers = LayoutCache<[Int]>(capacity: 4)

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        for (file, family) in [(self.count, conntrackEntries), (self.limit, conntrackLimit)] {
            guard let value = try context.reader.read(file).trimmed().parseUInt64() else {
                throw CollectorError.failed("\(file.path) does not hold a number")
            }
            writer.family(family)
            writer.sample(Double(value))
        }
        guard let bytes = try context.reader.readIfPresent(self.statistics) else {
            // node_exporter, too, serves the two gauges and reports no data.
            throw CollectorError.noData("\(self.statistics.path) does not exist")
        }
        let totals = sumConntrackStatistics(bytes) { self.headers.layout(for: $0, make: conntrackColumns) }
        if totals.brokenRows > 0 {
            context.recordFailure("\(totals.brokenRows) unreadable row(s) in \(self.statistics.path)")
        }
        for (statistic, total) in zip(conntrackStatistics, totals.values) {
            guard let total else { continue }
            writer.family(statistic.family)
            writer.sample(Double(total))
        }
    }
}

private let conntrackEntries = MetricFamily(
    "node_nf_conntrack_entries",
    help: "Number of currently allocated flow entries for connection tracking.",
    type: .gauge
)
private let conntrackLimit = MetricFamily(
    "node_nf_conntrack_entries_limit",
    help: "Maximum size of connection tracking table.",
    type: .gauge
)

/// The columns of `/proc/net/stat/nf_conntrack` node_exporter exports, as its families.
let conntrackStatistics: [(column: String, family: MetricFamily)] = [
    ("found", "Number of searched entries which were successful."),
    ("invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "Number of entries inserted into the list."),
    ("insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "Number of packets dropped due to conntrack failure."),
    (
        "early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."
    ),
    ("search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
].map { column, help in
    (column, MetricFamily("node_nf_conntrack_stat_" + column, help: help, type: .gauge))
}

/// For each column the header names, the index of its statistic in `conntrackStatistics`, or -1.
func conntrackColumns(_ header: ArraySlice<UInt8>) -> [Int] {
    header.fields.map { name in conntrackStatistics.firstIndex { name.equals($0.column) } ?? -1 }
}

/// The per-CPU rows of `/proc/net/stat/nf_conntrack` summed; nil for statistics whose column the
/// header does not name (older kernels lack some).
struct ConntrackTotals: Equatable {
    var values: [UInt64?]
    var brokenRows = 0
}

/// Sums the hexadecimal rows of `/proc/net/stat/nf_conntrack`, with `columns` mapping the header.
func sumConntrackStatistics(
    _ bytes: ArraySlice<UInt8>,
    columns: (ArraySlice<UInt8>) -> [Int] = conntrackColumns
) -> ConntrackTotals {
    var lines = bytes.lines
    var totals = ConntrackTotals(values: Array(repeating: nil, count: conntrackStatistics.count))
    guard let header = lines.next() else { return totals }
    let columns = columns(header)
    for statistic in columns where statistic >= 0 { totals.values[statistic] = 0 }
    for line in lines where !line.trimmed().isEmpty {
        var row = totals.values
        var fields = line.fields
        var complete = true
        for statistic in columns {
            guard let field = fields.next(), let value = field.parseHex() else {
                complete = false
                break
            }
            if statistic >= 0 { row[statistic] = row[statistic]! &+ value }
        }
        if complete && fields.next() == nil {
            totals.values = row
        } else {
            totals.brokenRows += 1
        }
    }
    return totals
}
