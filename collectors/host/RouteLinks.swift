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
    private let socket: NetlinkSocket

    init() {
        self.socket = NetlinkSocket(family: netlinkRoute)
    }

    /// Every interface, by name; nil when the dump failed.
    func dump() -> [String: LinkReport]? {
        var links: [String: LinkReport] = [:]
        let outcome = self.socket.dump(type: getLink, body: emptyInterfaceInfo) {
            addLinkReport($0, $1, to: &links)
        }
        return outcome == .done ? links : nil
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
private let newLink: UInt16 = 16
private let getLink: UInt16 = 18
private let interfaceInfoSize = 16
/// The body of a request for every interface: an `ifinfomsg` that selects none in particular.
private let emptyInterfaceInfo = [UInt8](repeating: 0, count: interfaceInfoSize)

/// Adds the interface of an `RTM_NEWLINK` message of a dump to `links`; false when the message does
/// not hold together. Messages of other types are passed over.
func addLinkReport(_ type: UInt16, _ body: UnsafeRawBufferPointer, to links: inout [String: LinkReport]) -> Bool {
    guard type == newLink else { return true }
    guard let report = parseLinkReport(body) else { return false }
    if let name = report.name { links[name] = report }
    return true
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
