import Synchronization
import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Bytes queued on UDP sockets: `node_udp_queues{ip="v4"|"v6",queue="rx"|"tx"}`, the sums of the
/// `tx_queue:rx_queue` column of `/proc/net/udp` and `/proc/net/udp6`.
///
/// Where `--path.procfs` is `/proc`, the same figures come from sock_diag (``UDPSocketDiagnostics``),
/// for the families whose file exists.
struct UDPQueuesCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "udp_queues",
        enabledByDefault: true,
        help: "UDP socket queue sizes from /proc/net/udp and /proc/net/udp6"
    ) { setup in
        let files = [
            // Socket lines are about 130 (v4) and 170 (v6) bytes long.
            UDPSocketFile("v4", AF_INET, KeptOpenFile(setup.paths.proc("net/udp"), end: .roomForLine(256))),
            UDPSocketFile("v6", AF_INET6, KeptOpenFile(setup.paths.proc("net/udp6"), end: .roomForLine(256))),
        ]
        return UDPQueuesCollector(
            files: files,
            sockets: setup.paths.procfsIsOwn
                ? UDPSocketDiagnostics(families: files.filter { FileSystem.exists($0.file.path) }.map(\.family))
                : nil
        )
    }

    /// Either file may be absent (IPv4 or IPv6 disabled); with neither there is no data.
    let files: [UDPSocketFile]
    /// nil where the files are read.
    let sockets: UDPSocketDiagnostics?

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var wroteFamily = false
        for source in self.files {
            let queues: UDPQueues
            if let fromSockets = self.sockets?.queues(source.family) {
                queues = fromSockets
            } else {
                guard let bytes = try context.reader.readIfPresent(source.file) else { continue }
                queues = sumUDPQueues(bytes)
                if queues.brokenLines > 0 {
                    context.recordFailure("\(queues.brokenLines) unreadable line(s) in \(source.file.path)")
                }
            }
            if !wroteFamily {
                writer.family(udpQueues)
                wroteFamily = true
            }
            writer.sample(Double(queues.rx), ("ip", source.ip), ("queue", "rx"))
            writer.sample(Double(queues.tx), ("ip", source.ip), ("queue", "tx"))
        }
        if !wroteFamily {
            throw CollectorError.noData("neither \(self.files[0].file.path) nor \(self.files[1].file.path) exists")
        }
    }
}

/// One of `/proc/net/udp{,6}`: the `ip` label of its samples and the address family of its sockets.
struct UDPSocketFile: Sendable {
    let ip: String
    let family: Int32
    let file: KeptOpenFile

    init(_ ip: String, _ family: Int32, _ file: KeptOpenFile) {
        self.ip = ip
        self.family = family
        self.file = file
    }
}

/// The queues of the UDP sockets of vigil's network namespace, from sock_diag (`NETLINK_SOCK_DIAG`): the
/// sockets `/proc/net/udp{,6}` list, with the same `rx_queue` and `tx_queue`, through a socket kept open.
/// The kernel walks its UDP hash table once per family either way, but formats no line per socket: the
/// two dumps cost the kernel about half what the two reads cost (measured with no UDP socket open, where
/// the walk is all there is).
///
/// The first request may have the kernel load its `udp_diag` module, as `ss -u` does. Where the kernel
/// refuses (no such module, a sandbox that forbids it), the files are read from then on.
final class UDPSocketDiagnostics: Sendable {
    /// The dump request of each family asked for; the others are read from their files.
    private let requests: [Int32: [UInt8]]
    private let socket: NetlinkSocket
    private let refused = Atomic<Bool>(false)

    init(families: [Int32]) {
        self.requests = Dictionary(uniqueKeysWithValues: families.map { ($0, udpDumpRequest($0)) })
        self.socket = NetlinkSocket(family: netlinkSocketDiagnostics)
    }

    /// The summed queues of the UDP sockets of `family`; nil when they are to be read from the file.
    func queues(_ family: Int32) -> UDPQueues? {
        guard let request = self.requests[family], !self.refused.load(ordering: .relaxed) else { return nil }
        var queues = UDPQueues()
        switch self.socket.dump(
            type: socketDiagnosticsByFamily,
            body: request,
            message: { addUDPQueues($0, $1, to: &queues) }
        ) {
        case .done: return queues
        case .refused: self.refused.store(true, ordering: .relaxed)
        case .more, .failed: break
        }
        return nil
    }
}

/// An `inet_diag_req_v2` for every UDP socket of `family`: family, protocol, extensions, padding,
/// states (all), `inet_diag_sockid` (any).
private func udpDumpRequest(_ family: Int32) -> [UInt8] {
    var request = [UInt8](repeating: 0, count: 56)
    request[0] = UInt8(family)
    request[1] = UInt8(IPPROTO_UDP)
    request.replaceSubrange(4..<8, with: [0xff, 0xff, 0xff, 0xff])
    return request
}

private let netlinkSocketDiagnostics: Int32 = 4
private let socketDiagnosticsByFamily: UInt16 = 20

/// Adds the queues of one socket of a sock_diag dump (an `inet_diag_msg`) to `queues`; false when the
/// message is too short to hold them.
func addUDPQueues(_ type: UInt16, _ body: UnsafeRawBufferPointer, to queues: inout UDPQueues) -> Bool {
    guard type == socketDiagnosticsByFamily else { return true }
    // family, state, timer, retransmits, inet_diag_sockid (48 bytes), expires, rqueue, wqueue, uid, inode.
    guard body.count >= 64 else { return false }
    queues.rx &+= UInt64(body.loadUnaligned(fromByteOffset: 56, as: UInt32.self))
    queues.tx &+= UInt64(body.loadUnaligned(fromByteOffset: 60, as: UInt32.self))
    return true
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
