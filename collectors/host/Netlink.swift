import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A netlink socket kept open between scrapes, through which dumps are asked for and read
/// (rtnetlink's links, sock_diag's sockets).
///
/// The socket belongs to the network namespace of the thread that made this object (tests make one in a
/// namespace of their own); its answers describe that namespace.
final class NetlinkSocket: Sendable {
    private struct Connection {
        var socket: Int32 = -1
        var sequence: UInt32 = 0
        /// The request sent and the answer read, kept for the next dump.
        var request: [UInt8] = []
        var buffer: [UInt8] = []
    }

    private let family: Int32
    private let connection: Mutex<Connection>

    /// `family`: the netlink protocol (`NETLINK_ROUTE`, `NETLINK_SOCK_DIAG`).
    init(family: Int32) {
        self.family = family
        self.connection = Mutex(Connection(socket: openNetlinkSocket(family)))
    }

    deinit {
        let socket = self.connection.withLock { $0.socket }
        if socket >= 0 { close(socket) }
    }

    /// Sends a dump request of message type `type` with `body` after its header, and hands each message
    /// of the answer to `message` (its type and body) until `NLMSG_DONE`. `message` returns false for a
    /// message that does not hold together, which fails the dump. After a failure the socket is opened
    /// again, so that what is left of an answer is never taken for the next one.
    func dump(
        type: UInt16,
        body: [UInt8],
        message: (_ type: UInt16, _ body: UnsafeRawBufferPointer) -> Bool
    ) -> NetlinkDumpProgress {
        self.connection.withLock { connection in
            if connection.socket < 0 { connection.socket = openNetlinkSocket(self.family) }
            guard connection.socket >= 0 else { return .failed }
            connection.sequence &+= 1
            let outcome = dumpMessages(
                socket: connection.socket,
                type: type,
                body: body,
                sequence: connection.sequence,
                request: &connection.request,
                buffer: &connection.buffer,
                message: message
            )
            if outcome != .done {
                close(connection.socket)
                connection.socket = -1
            }
            return outcome
        }
    }
}

enum NetlinkDumpProgress: Equatable {
    /// The answer goes on in the next datagram.
    case more
    /// `NLMSG_DONE` came.
    case done
    /// The kernel answered with an error (its errno).
    case refused(Int32)
    /// The socket failed, or a message did not hold together.
    case failed
}

private let messageDone: UInt16 = 3
private let messageError: UInt16 = 2
private let headerSize = 16

private func openNetlinkSocket(_ family: Int32) -> Int32 {
    let socket = Glibc.socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), family)
    guard socket >= 0 else { return -1 }
    // The kernel answers a dump at once; the bound only guards a scrape thread against the unforeseen.
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return socket
}

/// Sends one dump request and reads its answer up to `NLMSG_DONE`.
private func dumpMessages(
    socket: Int32,
    type: UInt16,
    body: [UInt8],
    sequence: UInt32,
    request: inout [UInt8],
    buffer: inout [UInt8],
    message: (UInt16, UnsafeRawBufferPointer) -> Bool
) -> NetlinkDumpProgress {
    // nlmsghdr: length, type, flags (NLM_F_REQUEST | NLM_F_DUMP), sequence, port.
    request.removeAll(keepingCapacity: true)
    request.append(contentsOf: repeatElement(0, count: headerSize))
    request.withUnsafeMutableBytes { raw in
        raw.storeBytes(of: UInt32(headerSize + body.count), toByteOffset: 0, as: UInt32.self)
        raw.storeBytes(of: type, toByteOffset: 4, as: UInt16.self)
        raw.storeBytes(of: UInt16(0x1 | 0x300), toByteOffset: 6, as: UInt16.self)
        raw.storeBytes(of: sequence, toByteOffset: 8, as: UInt32.self)
    }
    request += body
    let sent = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
    guard sent == request.count else { return .failed }
    // The kernel sizes a dump's datagrams by what the reader asks for, 32 KiB at most; left
    // uninitialised, only the pages an answer fills become resident.
    if buffer.count < 32768 { buffer = [UInt8](unsafeUninitializedCapacity: 32768) { $1 = 32768 } }
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, Int32(MSG_TRUNC)) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0, count <= buffer.count else { return .failed }
        let outcome = buffer.withUnsafeBytes { raw in
            parseNetlinkMessages(UnsafeRawBufferPointer(rebasing: raw[..<count]), sequence: sequence, message: message)
        }
        guard outcome == .more else { return outcome }
    }
}

/// Hands the messages of one datagram of a dump's answer to `message`; messages of another sequence
/// (an answer abandoned earlier) are passed over.
func parseNetlinkMessages(
    _ bytes: UnsafeRawBufferPointer,
    sequence: UInt32,
    message: (_ type: UInt16, _ body: UnsafeRawBufferPointer) -> Bool
) -> NetlinkDumpProgress {
    var offset = 0
    while bytes.count - offset >= headerSize {
        let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        let type = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
        let messageSequence = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
        guard length >= headerSize, length <= bytes.count - offset else { return .failed }
        if messageSequence == sequence {
            let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + headerSize)..<(offset + length)])
            switch type {
            case messageDone:
                // A dump that failed once started ends with its negative errno here.
                let code = body.count >= 4 ? body.loadUnaligned(as: Int32.self) : 0
                return code < 0 ? .refused(-code) : .done
            case messageError:
                // nlmsgerr: a negative errno, then the request's header.
                guard body.count >= 4 else { return .failed }
                return .refused(-body.loadUnaligned(as: Int32.self))
            default:
                guard message(type, body) else { return .failed }
            }
        }
        offset += (length + 3) & ~3
    }
    return .more
}
