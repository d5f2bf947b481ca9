import Synchronization
import VigilCore

/// Interface counters as `/proc/net/dev` has them, as `node_network_{receive,transmit}_<stat>_total{device}`,
/// and `node_network_receive_nohandler_total`, which only rtnetlink and sysfs have (the kernel fills
/// all three from the same `dev_get_stats`), so dashboards see the families of node_exporter's default.
///
/// Where `--path.procfs` is `/proc`, from the scrape's rtnetlink dump (``RouteLinks``, shared with
/// netclass), with the `/proc/net/dev` columns the kernel sums added up as it adds them. Elsewhere
/// (fixture trees, or a failed dump), from `/proc/net/dev`, node_exporter's `--no-collector.netdev.netlink`
/// path, and `rx_nohandler` from sysfs. Columns are found by the header's names, so a kernel with fewer
/// columns gets fewer families rather than shifted values.
struct NetDevCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "netdev",
        enabledByDefault: true,
        help: "network interface statistics, as /proc/net/dev has them",
        options: [
            OptionSpec(
                "collector.netdev.device-include",
                .regex(""),
                help: "Regexp of net devices to include (mutually exclusive to device-exclude).",
                aliases: ["collector.netdev.device-whitelist"]
            ),
            OptionSpec(
                "collector.netdev.device-exclude",
                .regex(""),
                help: "Regexp of net devices to exclude (mutually exclusive to device-include).",
                aliases: ["collector.netdev.device-blacklist"]
            ),
        ]
    ) { setup in
        NetDevCollector(
            file: KeptOpenFile(setup.paths.proc("net/dev"), end: .roomForLine(1024)),
            interfaces: setup.paths.sys("class/net"),
            devices: try setup.nameFilter(
                include: "collector.netdev.device-include",
                exclude: "collector.netdev.device-exclude"
            ),
            // /proc/net/dev is the reader's network namespace, as the socket's is.
            links: setup.paths.procfsIsOwn ? RouteLinks() : nil
        )
    }

    /// Most files kept open between scrapes, two per interface (`rx_nohandler` and `uevent`) for 64
    /// interfaces: opening them through `/sys/class/net` costs the kernel several times the read.
    /// Others are opened per scrape.
    static let keptFiles = 128

    let file: KeptOpenFile
    /// `/sys/class/net`, where each interface's `statistics/rx_nohandler` is.
    let interfaces: String
    let devices: NameFilter
    /// nil where `/proc/net/dev` is read instead.
    let links: RouteLinks?
    private let headers = LayoutCache<[Int]?>()
    private let kept = KeptDeviceFiles()

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        if let links = self.links, let dump = context.linkDump(links) {
            self.write(dump, into: &writer)
            return
        }
        let bytes = try context.reader.read(self.file)
        let table = parseNetDevTable(bytes) { self.headers.layout(for: $0, make: netDevColumns) }
        guard let table else {
            throw CollectorError.failed("no header line naming the columns in \(self.file.path)")
        }
        if table.brokenLines > 0 {
            context.recordFailure("\(table.brokenLines) unreadable line(s) in \(self.file.path)")
        }
        let order = table.sortedDevices { self.devices.allows(String(decoding: $0, as: UTF8.self)) }
        writeCounters(table, order, into: &writer)
        self.writeNoHandler(table, order, into: &writer, context: context)
    }

    /// Writes every family from an rtnetlink dump.
    private func write(_ dump: [String: LinkReport], into writer: inout MetricWriter) {
        let links = dump.filter { self.devices.allows($0.key) }.sorted { $0.key < $1.key }
        var table = NetDevTable()
        for (name, link) in links {
            table.names.append(ArraySlice(name.utf8))
            for counters in procNetDevColumns {
                var sum: UInt64? = 0
                for counter in counters { sum = link.counter(counter).flatMap { value in sum.map { $0 &+ value } } }
                table.values.append(sum)
            }
        }
        writeCounters(table, Array(table.names.indices), into: &writer)
        let values = links.compactMap { name, link in link.counter(.rxNoHandler).map { (name, $0) } }
        guard !values.isEmpty else { return }
        writer.family(noHandlerFamily)
        for (name, value) in values { writer.sample(Double(value), ("device", name)) }
    }

    /// `node_network_receive_nohandler_total` for the interfaces whose sysfs directory has it (Linux
    /// 4.6 and later); an interface removed since `/proc/net/dev` was read is skipped.
    private func writeNoHandler(
        _ table: NetDevTable,
        _ order: [Int],
        into writer: inout MetricWriter,
        context: ScrapeContext
    ) {
        let counters = self.kept.values(
            of: order.map { table.names[$0].string },
            files: noHandlerFile,
            in: self.interfaces,
            descriptors: Self.keptFiles
        ) { name, files in
            // Files of an interface renamed away (whose name another may have taken) are opened afresh.
            filesAreNamed(name, files, uevent: 1, context: context) ? Self.noHandler(files, context: context) : nil
        }
        let values = zip(order, counters).compactMap { device, value in value.map { (device, $0) } }
        guard !values.isEmpty else { return }
        writer.family(noHandlerFamily)
        for (device, value) in values { writer.sample(Double(value), ("device", table.names[device])) }
    }

    /// The counter from an interface's open `rx_nohandler`; nil when it is missing (Linux before 4.6),
    /// unreadable or the interface has gone (`ENODEV`).
    private static func noHandler(_ files: KeptOpenAttributes, context: ScrapeContext) -> UInt64? {
        (try? context.reader.readAttribute(0, of: files))??.trimmed().parseUInt64()
    }
}

/// `rx_nohandler`, and `uevent`, which names the interface the files are of now.
private let noHandlerFile = ["statistics/rx_nohandler", "uevent"]

private let noHandlerFamily = MetricFamily(
    "node_network_receive_nohandler_total",
    help: "Network device statistic receive_nohandler.",
    type: .counter
)

/// The statistics node_exporter exports from `/proc/net/dev`, by direction and header column name.
let netDevStatistics: [(direction: String, column: String)] = [
    ("receive", "bytes"), ("receive", "packets"), ("receive", "errs"), ("receive", "drop"),
    ("receive", "fifo"), ("receive", "frame"), ("receive", "compressed"), ("receive", "multicast"),
    ("transmit", "bytes"), ("transmit", "packets"), ("transmit", "errs"), ("transmit", "drop"),
    ("transmit", "fifo"), ("transmit", "colls"), ("transmit", "carrier"), ("transmit", "compressed"),
]

private let netDevFamilies = netDevStatistics.map { statistic in
    let key = statistic.direction + "_" + statistic.column
    return MetricFamily("node_network_" + key + "_total", help: "Network device statistic " + key + ".", type: .counter)
}

/// Writes the families of ``netDevStatistics`` for the devices of `order`, each family only where a
/// device has its value.
private func writeCounters(_ table: NetDevTable, _ order: [Int], into writer: inout MetricWriter) {
    for statistic in netDevStatistics.indices {
        guard order.contains(where: { table.value(device: $0, statistic: statistic) != nil }) else { continue }
        writer.family(netDevFamilies[statistic])
        for device in order {
            guard let value = table.value(device: device, statistic: statistic) else { continue }
            writer.sample(Double(value), ("device", table.names[device]))
        }
    }
}

/// Each column of ``netDevStatistics`` as the kernel writes it into `/proc/net/dev` from an interface's
/// counters (`dev_seq_printf_stats` in net/core/net-procfs.c): some columns are sums.
private let procNetDevColumns: [[LinkCounter]] = [
    [.rxBytes], [.rxPackets], [.rxErrors], [.rxDropped, .rxMissedErrors], [.rxFIFOErrors],
    [.rxLengthErrors, .rxOverErrors, .rxCRCErrors, .rxFrameErrors], [.rxCompressed], [.multicast],
    [.txBytes], [.txPackets], [.txErrors], [.txDropped], [.txFIFOErrors], [.collisions],
    [.txCarrierErrors, .txAbortedErrors, .txWindowErrors, .txHeartbeatErrors], [.txCompressed],
]

/// `/proc/net/dev` parsed: device names (slices of the read buffer) and their statistics.
struct NetDevTable {
    var names: [ArraySlice<UInt8>] = []
    /// `names.count × netDevStatistics.count` values, device by device; nil where the header lacks
    /// the column or the line lacks a readable value.
    var values: [UInt64?] = []
    /// Device lines that could not be read completely.
    var brokenLines = 0

    func value(device: Int, statistic: Int) -> UInt64? {
        self.values[device * netDevStatistics.count + statistic]
    }

    /// Indices of the devices `allows` lets through, sorted by name, each name once.
    func sortedDevices(allows: (ArraySlice<UInt8>) -> Bool) -> [Int] {
        let sorted = self.names.indices.sorted { self.names[$0].lexicographicallyPrecedes(self.names[$1]) }
        var order: [Int] = []
        order.reserveCapacity(sorted.count)
        for index in sorted where allows(self.names[index]) {
            if let last = order.last, self.names[last].elementsEqual(self.names[index]) { continue }
            order.append(index)
        }
        return order
    }
}

/// The statistic each value column of a device line holds (an index into `netDevStatistics`, or -1
/// for a column node_exporter does not export), from the second header line
/// `face |bytes packets …|bytes packets …`; nil when that line does not have this shape.
func netDevColumns(_ header: ArraySlice<UInt8>) -> [Int]? {
    var parts = header.split(byte: UInt8(ascii: "|"))
    guard parts.next() != nil, let receive = parts.next(), let transmit = parts.next() else { return nil }
    var columns: [Int] = []
    for (direction, names) in [("receive", receive), ("transmit", transmit)] {
        for name in names.fields {
            columns.append(
                netDevStatistics.firstIndex { $0.direction == direction && name.equals($0.column) } ?? -1
            )
        }
    }
    return columns
}

/// Parses `/proc/net/dev`: two header lines, then `name: value…` per device, the values in the
/// order `columns` reads from the second header line. Nil when the header is missing or unreadable.
func parseNetDevTable(
    _ bytes: ArraySlice<UInt8>,
    columns: (ArraySlice<UInt8>) -> [Int]? = netDevColumns
) -> NetDevTable? {
    var lines = bytes.lines
    guard lines.next() != nil, let header = lines.next(), let columns = columns(header) else { return nil }
    var table = NetDevTable()
    for line in lines {
        guard let (rawName, rest) = line.splitOnce(UInt8(ascii: ":")) else {
            if !line.trimmed().isEmpty { table.brokenLines += 1 }
            continue
        }
        let name = rawName.trimmed()
        guard !name.isEmpty else {
            table.brokenLines += 1
            continue
        }
        table.names.append(name)
        let base = table.values.count
        table.values.append(contentsOf: repeatElement(nil, count: netDevStatistics.count))
        var fields = rest.fields
        var complete = true
        for statistic in columns {
            guard let field = fields.next() else {
                complete = false
                break
            }
            guard statistic >= 0 else { continue }
            guard let value = field.parseUInt64() else {
                complete = false
                continue
            }
            table.values[base + statistic] = value
        }
        if !complete { table.brokenLines += 1 }
    }
    return table
}
