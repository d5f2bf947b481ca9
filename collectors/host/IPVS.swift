import VigilCore

/// IP Virtual Server (the kernel load balancer kube-proxy's IPVS mode drives): its traffic totals from
/// `/proc/net/ip_vs_stats` and each backend's connections and weight from `/proc/net/ip_vs`, summed
/// over the backends that share the labels `--collector.ipvs.backend-labels` keeps. Without the
/// ip_vs module there is no data.
struct IPVSCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "ipvs",
        enabledByDefault: true,
        help: "IPVS traffic and backends from /proc/net/ip_vs_stats and /proc/net/ip_vs",
        options: [
            OptionSpec(
                "collector.ipvs.backend-labels",
                .string(IPVSBackend.labelNames.joined(separator: ",")),
                help: "Comma separated list for IPVS backend stats labels."
            )
        ]
    ) { setup in
        let option = "collector.ipvs.backend-labels"
        let given = Set(setup.settings.string(option).split(separator: ",").map(String.init))
        let unknown = given.subtracting(IPVSBackend.labelNames)
        guard unknown.isEmpty else {
            throw setup.settings.error(
                option,
                "unknown IPVS backend labels: \(unknown.sorted().joined(separator: ", "))"
            )
        }
        return IPVSCollector(
            statistics: KeptOpenFile(setup.paths.proc("net/ip_vs_stats")),
            backends: KeptOpenFile(setup.paths.proc("net/ip_vs")),
            labels: IPVSBackend.labelNames.filter(given.contains)
        )
    }

    let statistics: KeptOpenFile
    let backends: KeptOpenFile
    /// The backend labels kept, in `IPVSBackend.labelNames` order.
    let labels: [String]

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        guard let bytes = try context.reader.readIfPresent(self.statistics) else {
            throw CollectorError.noData("\(self.statistics.path) does not exist (no ip_vs module)")
        }
        guard let totals = parseIPVSTotals(bytes) else {
            throw CollectorError.failed("unexpected content in \(self.statistics.path)")
        }
        for (family, value) in zip(totalFamilies, totals) {
            writer.family(family, onlySample: Double(value))
        }

        let (backends, broken) = parseIPVSBackends(try context.reader.read(self.backends))
        for line in broken { context.recordFailure("\(self.backends.path): unexpected line \"\(line)\"") }
        // Backends that differ only in labels left out are summed, in the order first seen.
        var series: [(labels: [(name: String, value: String)], active: UInt64, inactive: UInt64, weight: UInt64)] = []
        var positions: [[String]: Int] = [:]
        for backend in backends {
            let key = self.labels.map { backend.label($0) }
            let position: Int
            if let known = positions[key] {
                position = known
            } else {
                position = series.count
                positions[key] = position
                let labels = zip(self.labels, key).map { (name: $0, value: $1) }.sorted { $0.name < $1.name }
                series.append((labels, 0, 0, 0))
            }
            series[position].active += backend.activeConnections
            series[position].inactive += backend.inactiveConnections
            series[position].weight += backend.weight
        }
        guard !series.isEmpty else { return }
        writer.family(activeFamily)
        for sum in series { writer.sample(Double(sum.active), dynamicLabels: sum.labels) }
        writer.family(inactiveFamily)
        for sum in series { writer.sample(Double(sum.inactive), dynamicLabels: sum.labels) }
        writer.family(weightFamily)
        for sum in series { writer.sample(Double(sum.weight), dynamicLabels: sum.labels) }
    }
}

/// Connections, incoming packets, outgoing packets, incoming bytes, outgoing bytes: the hexadecimal
/// totals on the third line of `ip_vs_stats`.
func parseIPVSTotals(_ bytes: ArraySlice<UInt8>) -> [UInt64]? {
    var lines = bytes.lines
    _ = lines.next()
    _ = lines.next()
    guard let values = lines.next()?.fields.map({ $0.parseHex() }), values.count == 5 else { return nil }
    return values.allSatisfy { $0 != nil } ? values.map { $0! } : nil
}

/// One real server of a virtual one, as `/proc/net/ip_vs` lists them.
struct IPVSBackend: Equatable {
    static let labelNames = ["local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"]

    /// Empty for a virtual server by firewall mark.
    var localAddress: String
    var localPort: UInt16
    /// The firewall mark as the kernel writes it (hexadecimal), for `FWM` virtual servers.
    var localMark: String
    /// `TCP`, `UDP`, `SCTP` or `FWM`.
    var proto: String
    var remoteAddress: String
    var remotePort: UInt16
    var weight: UInt64
    var activeConnections: UInt64
    var inactiveConnections: UInt64

    func label(_ name: String) -> String {
        switch name {
        case "local_address": self.localAddress
        case "local_port": String(self.localPort)
        case "remote_address": self.remoteAddress
        case "remote_port": String(self.remotePort)
        case "proto": self.proto
        default: self.localMark
        }
    }
}

/// The backends of `/proc/net/ip_vs`, and the lines that could not be read: a virtual server line
/// (`TCP  C0A80016:0CEA wlc`, `FWM  00000064 wlc`) then its real servers
/// (`  -> C0A85216:0CEA  Tunnel  100  248  2`: weight, active and inactive connections). A backend
/// under a virtual server that could not be read is left out with it.
func parseIPVSBackends(_ bytes: ArraySlice<UInt8>) -> (backends: [IPVSBackend], broken: [String]) {
    var backends: [IPVSBackend] = []
    var broken: [String] = []
    var current: (address: String, port: UInt16, mark: String, proto: String)?
    for line in bytes.lines {
        let fields = line.fields.map(\.string)
        guard fields.count >= 2, fields[0] != "IP", fields[0] != "Prot", fields[1] != "RemoteAddress:Port" else {
            continue
        }
        switch fields[0] {
        case "TCP", "UDP", "SCTP":
            current = parseIPVSAddress(fields[1]).map { ($0.address, $0.port, "", fields[0]) }
            if current == nil { broken.append(line.string) }
        case "FWM":
            current = ("", 0, fields[1], "FWM")
        case "->":
            guard let server = current else { continue }
            guard fields.count >= 6, let remote = parseIPVSAddress(fields[1]), let weight = UInt64(fields[3]),
                let active = UInt64(fields[4]), let inactive = UInt64(fields[5])
            else {
                broken.append(line.string)
                continue
            }
            backends.append(
                IPVSBackend(
                    localAddress: server.address,
                    localPort: server.port,
                    localMark: server.mark,
                    proto: server.proto,
                    remoteAddress: remote.address,
                    remotePort: remote.port,
                    weight: weight,
                    activeConnections: active,
                    inactiveConnections: inactive
                )
            )
        default:
            // A protocol this parser does not know: its real servers are not another's.
            current = nil
            broken.append(line.string)
        }
    }
    return (backends, broken)
}

/// `C0A80016:0CEA` (IPv4) or `[2620:0000:…:0001]:0050` (IPv6, every group written), port in hex;
/// the address as Go writes it.
private func parseIPVSAddress(_ text: String) -> (address: String, port: UInt16)? {
    guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...], radix: 16) else {
        return nil
    }
    let host = text[..<colon]
    if host.count == 8, let value = UInt32(host, radix: 16) {
        return ((0..<4).map { String(value >> (24 - 8 * $0) & 0xFF) }.joined(separator: "."), port)
    }
    guard host.first == "[", host.last == "]" else { return nil }
    let groups = host.dropFirst().dropLast().split(separator: ":", omittingEmptySubsequences: false)
        .compactMap { UInt16($0, radix: 16) }
    guard groups.count == 8 else { return nil }
    return (formatIPv6(groups), port)
}

/// An IPv6 address as Go's net.IP prints it (RFC 5952): groups in lowercase hex without leading zeros,
/// the longest run of two or more zero groups (the first of equal ones) as `::`, and an IPv4-mapped
/// address as a dotted quad.
func formatIPv6(_ groups: [UInt16]) -> String {
    if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xFFFF {
        return [groups[6] >> 8, groups[6] & 0xFF, groups[7] >> 8, groups[7] & 0xFF].map(String.init)
            .joined(separator: ".")
    }
    var best: Range<Int>?
    var start: Int?
    for index in 0...groups.count {
        if index < groups.count && groups[index] == 0 {
            if start == nil { start = index }
        } else if let runStart = start {
            if index - runStart >= 2 && index - runStart > (best?.count ?? 0) { best = runStart..<index }
            start = nil
        }
    }
    let hex = { (range: Range<Int>) in groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
    guard let best else { return hex(0..<groups.count) }
    return hex(0..<best.lowerBound) + "::" + hex(best.upperBound..<groups.count)
}

private let totalFamilies = [
    MetricFamily("node_ipvs_connections_total", help: "The total number of connections made.", type: .counter),
    MetricFamily("node_ipvs_incoming_packets_total", help: "The total number of incoming packets.", type: .counter),
    MetricFamily("node_ipvs_outgoing_packets_total", help: "The total number of outgoing packets.", type: .counter),
    MetricFamily("node_ipvs_incoming_bytes_total", help: "The total amount of incoming data.", type: .counter),
    MetricFamily("node_ipvs_outgoing_bytes_total", help: "The total amount of outgoing data.", type: .counter),
]
private let activeFamily = MetricFamily(
    "node_ipvs_backend_connections_active",
    help: "The current active connections by local and remote address.",
    type: .gauge
)
private let inactiveFamily = MetricFamily(
    "node_ipvs_backend_connections_inactive",
    help: "The current inactive connections by local and remote address.",
    type: .gauge
)
private let weightFamily = MetricFamily(
    "node_ipvs_backend_weight",
    help: "The current backend weight by local and remote address.",
    type: .gauge
)
