import VigilCore

/// Bytes queued on UDP sockets: `node_udp_queues{ip="v4"|"v6",queue="rx"|"tx"}`, the sums of the
/// `tx_queue:rx_queue` column of `/proc/net/udp` and `/proc/net/udp6`.
struct UDPQueuesCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "udp_queues",
        enabledByDefault: true,
        help: "UDP socket queue sizes from /proc/net/udp and /proc/net/udp6"
    ) { setup in
        UDPQueuesCollector(
            files: [
                // Socket lines are about 130 (v4) and 170 (v6) bytes long.
                ("v4", KeptOpenFile(setup.paths.proc("net/udp"), end: .roomForLine(256))),
                ("v6", KeptOpenFile(setup.paths.proc("net/udp6"), end: .roomForLine(256))),
            ]
        )
    }

    /// Either file may be absent (IPv4 or IPv6 disabled); with neither there is no data.
    let files: [(ip: String, file: KeptOpenFile)]

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var wroteFamily = false
        for (ip, file) in self.files {
            guard let bytes = try context.reader.readIfPresent(file) else { continue }
            let queues = sumUDPQueues(bytes)
            if queues.brokenLines > 0 {
                context.recordFailure("\(queues.brokenLines) unreadable line(s) in \(file.path)")
            }
            if !wroteFamily {
                writer.family(udpQueues)
                wroteFamily = true
            }
            writer.sample(Double(queues.rx), ("ip", ip), ("queue", "rx"))
            writer.sample(Double(queues.tx), ("ip", ip), ("queue", "tx"))
        }
        if !wroteFamily {
            throw CollectorError.noData("neither \(self.files[0].file.path) nor \(self.files[1].file.path) exists")
        }
    }
}

private let udpQueues = MetricFamily(
    "node_udp_queues",
    help: "Number of allocated memory in the kernel for UDP datagrams in bytes.",
    type: .gauge
)

/// The summed queues of one `/proc/net/udp{,6}` file.
struct UDPQueues: Equatable {
    var tx: UInt64 = 0
    var rx: UInt64 = 0
    var brokenLines = 0
}

/// Sums the hexadecimal `tx_queue:rx_queue` field (the fifth) of every socket line of
/// `/proc/net/udp` or `/proc/net/udp6`; the first line is the header.
func sumUDPQueues(_ bytes: ArraySlice<UInt8>) -> UDPQueues {
    var queues = UDPQueues()
    var lines = bytes.lines
    _ = lines.next()
    for line in lines where !line.trimmed().isEmpty {
        var fields = line.fields
        for _ in 0..<4 { _ = fields.next() }
        guard let field = fields.next(), let (tx, rx) = field.splitOnce(UInt8(ascii: ":")),
            let txQueue = tx.parseHex(), let rxQueue = rx.parseHex()
        else {
            queues.brokenLines += 1
            continue
        }
        queues.tx &+= txQueue
        queues.rx &+= rxQueue
    }
    return queues
}
