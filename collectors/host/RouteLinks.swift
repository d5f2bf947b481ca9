import Synchronization
import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What rtnetlink reports of one network interface (an `RTM_NEWLINK` message): the properties
/// netclass would otherwise read from a sysfs file each.
struct LinkReport: Equatable {
    var index: Int32 = 0
    /// `ARPHRD_*`, as `/sys/class/net/<iface>/type`.
    var type: UInt16 = 0
    /// `IFF_*` as rtnetlink reports them: the operational `IFF_RUNNING`, `IFF_LOWER_UP` and
    /// `IFF_DORMANT` included, unlike the sysfs `flags` file.
    var flags: UInt32 = 0
    var name: String?
    var address: [UInt8]?
    var broadcast: [UInt8]?
    var alias: [UInt8]?
    var mtu: UInt32?
    /// The interface this one is linked to; absent when that is itself.
    var link: Int32?
    var txQueueLength: UInt32?
    var operState: UInt8?
    var linkMode: UInt8?
    var group: UInt32?
    var carrier: UInt8?
    var carrierChanges: UInt32?
    var carrierUpCount: UInt32?
    var carrierDownCount: UInt32?
    /// `IFLA_STATS64`: the counters of `struct rtnl_link_stats64`, as many as the kernel reports
    /// (``LinkCounter``).
    var counters: [UInt64] = []

    /// `netif_running`: the interface is up (`IFF_UP`). sysfs refuses `carrier` and `dormant` otherwise.
    var isRunning: Bool { self.flags & 0x1 != 0 }
}

/// The host's network interfaces from one rtnetlink dump (`RTM_GETLINK`), through a socket kept open
/// between scrapes: 16 of each interface's properties and all its counters for the cost of one `sysfs`
/// read or two. A scrape makes one dump for netclass and netdev (``ScrapeContext/linkDump(_:)``).
///
/// The socket belongs to the network namespace vigil runs in; its answers describe `/sys/class/net`
/// only where that is the sysfs vigil's namespace mounted, so netclass asks only when reading `/sys`,
/// and checks each interface's index and address against sysfs before it takes the answers. netdev
/// asks only when reading `/proc`, whose `net/dev` shows the reader's namespace.
final class RouteLinks: Sendable {
    private struct Connection {
        var socket: Int32 = -1
        var sequence: UInt32 = 0
        var buffer: [UInt8] = []
    }

    private let connection = Mutex(Connection())

    init() {
        // Opened now, in the namespace of the thread that makes it (tests make one in a namespace of their own).
        self.connection.withLock { connection in connection.socket = openRouteSocket() }
    }

    deinit {
        let socket = self.connection.withLock { $0.socket }
        if socket >= 0 { close(socket) }
    }

    /// Every interface, by name; nil when the dump failed (the socket is then opened again next time).
    func dump() -> [String: LinkReport]? {
        self.connection.withLock { connection in
            if connection.socket < 0 { connection.socket = openRouteSocket() }
            guard connection.socket >= 0 else { return nil }
            connection.sequence &+= 1
            if let links = dumpLinks(
                socket: connection.socket,
                sequence: connection.sequence,
                buffer: &connection.buffer
            ) {
                return links
            }
            // Whatever is left of an answer must not be taken for the next one.
            close(connection.socket)
            connection.socket = -1
            return nil
        }
    }
}

/// A counter's position in `struct rtnl_link_stats64` (``LinkReport/counters``).
enum LinkCounter: Int {
    case rxPackets, txPackets, rxBytes, txBytes, rxErrors, txErrors, rxDropped, txDropped, multicast, collisions
    case rxLengthErrors, rxOverErrors, rxCRCErrors, rxFrameErrors, rxFIFOErrors, rxMissedErrors
    case txAbortedErrors, txCarrierErrors, txFIFOErrors, txHeartbeatErrors, txWindowErrors
    case rxCompressed, txCompressed
    /// Linux 4.6 and later.
    case rxNoHandler
}

extension LinkReport {
    /// A counter; nil where the kernel does not report it.
    func counter(_ counter: LinkCounter) -> UInt64? {
        counter.rawValue < self.counters.count ? self.counters[counter.rawValue] : nil
    }
}

extension ScrapeContext {
    /// The scrape's rtnetlink dump, made once for the collectors that read it (netclass, netdev);
    /// nil when it failed.
    func linkDump(_ links: RouteLinks) -> [String: LinkReport]? {
        self.shared.value("rtnetlink links") { SharedLinkDump(links: links.dump()) }.links
    }
}

/// A dump as the scrape shares it: a value even when the dump failed, so that it is not tried again.
private struct SharedLinkDump: Sendable {
    let links: [String: LinkReport]?
}

private let netlinkRoute: Int32 = 0
private let messageDone: UInt16 = 3
private let messageError: UInt16 = 2
private let newLink: UInt16 = 16
private let getLink: UInt16 = 18
private let headerSize = 16
private let interfaceInfoSize = 16

private func openRouteSocket() -> Int32 {
    let socket = Glibc.socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkRoute)
    guard socket >= 0 else { return -1 }
    // The kernel answers a dump at once; the bound only guards a scrape thread against the unforeseen.
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return socket
}

/// Sends one `RTM_GETLINK` dump request and reads its answer up to `NLMSG_DONE`.
private func dumpLinks(socket: Int32, sequence: UInt32, buffer: inout [UInt8]) -> [String: LinkReport]? {
    // nlmsghdr (length, type, flags: NLM_F_REQUEST | NLM_F_DUMP, sequence, port) and an empty ifinfomsg.
    var request = [UInt8](repeating: 0, count: headerSize + interfaceInfoSize)
    request.withUnsafeMutableBytes { raw in
        raw.storeBytes(of: UInt32(headerSize + interfaceInfoSize), toByteOffset: 0, as: UInt32.self)
        raw.storeBytes(of: getLink, toByteOffset: 4, as: UInt16.self)
        raw.storeBytes(of: UInt16(0x1 | 0x300), toByteOffset: 6, as: UInt16.self)
        raw.storeBytes(of: sequence, toByteOffset: 8, as: UInt32.self)
    }
    let sent = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
    guard sent == request.count else { return nil }
    // The kernel sizes a dump's datagrams by what the reader asks for, 32 KiB at most; left
    // uninitialised, only the pages an answer fills become resident.
    if buffer.count < 32768 { buffer = [UInt8](unsafeUninitializedCapacity: 32768) { $1 = 32768 } }
    var links: [String: LinkReport] = [:]
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, Int32(MSG_TRUNC)) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0, count <= buffer.count else { return nil }
        let outcome = buffer.withUnsafeBytes { raw in
            parseLinkMessages(UnsafeRawBufferPointer(rebasing: raw[..<count]), sequence: sequence, into: &links)
        }
        switch outcome {
        case .more: continue
        case .done: return links
        case .failed: return nil
        }
    }
}

enum LinkDumpProgress: Equatable {
    /// The answer goes on in the next datagram.
    case more
    /// `NLMSG_DONE` came.
    case done
    /// An error message, or a message that does not hold together.
    case failed
}

/// Adds the interfaces of one datagram of an `RTM_GETLINK` dump to `links`; messages of another
/// sequence (an answer abandoned earlier) are passed over.
func parseLinkMessages(
    _ bytes: UnsafeRawBufferPointer,
    sequence: UInt32,
    into links: inout [String: LinkReport]
) -> LinkDumpProgress {
    var offset = 0
    while bytes.count - offset >= headerSize {
        let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        let type = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
        let messageSequence = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
        guard length >= headerSize, length <= bytes.count - offset else { return .failed }
        if messageSequence == sequence {
            switch type {
            case messageDone: return .done
            case messageError: return .failed
            case newLink:
                let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + headerSize)..<(offset + length)])
                guard let report = parseLinkReport(body) else { return .failed }
                if let name = report.name { links[name] = report }
            default: break
            }
        }
        offset += (length + 3) & ~3
    }
    return .more
}

/// An `ifinfomsg` and its attributes.
private func parseLinkReport(_ body: UnsafeRawBufferPointer) -> LinkReport? {
    guard body.count >= interfaceInfoSize else { return nil }
    var report = LinkReport()
    report.type = body.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
    report.index = body.loadUnaligned(fromByteOffset: 4, as: Int32.self)
    report.flags = body.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    var offset = interfaceInfoSize
    while body.count - offset >= 4 {
        let length = Int(body.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        // The top bits flag nested and network-order attributes.
        let type = body.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3fff
        guard length >= 4, length <= body.count - offset else { return nil }
        let value = UnsafeRawBufferPointer(rebasing: body[(offset + 4)..<(offset + length)])
        func u32() -> UInt32? { value.count >= 4 ? value.loadUnaligned(as: UInt32.self) : nil }
        func u8() -> UInt8? { value.first }
        func string() -> [UInt8] { Array(value.prefix { $0 != 0 }) }
        switch type {
        case 1: report.address = Array(value)
        case 2: report.broadcast = Array(value)
        case 3: report.name = String(decoding: string(), as: UTF8.self)
        case 4: report.mtu = u32()
        case 5: report.link = u32().map { Int32(bitPattern: $0) }
        case 13: report.txQueueLength = u32()
        case 16: report.operState = u8()
        case 17: report.linkMode = u8()
        case 20: report.alias = string()
        case 23:
            report.counters = (0..<value.count / 8).map { value.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
        case 27: report.group = u32()
        case 33: report.carrier = u8()
        case 35: report.carrierChanges = u32()
        case 47: report.carrierUpCount = u32()
        case 48: report.carrierDownCount = u32()
        default: break
        }
        offset += (length + 3) & ~3
    }
    return report
}
