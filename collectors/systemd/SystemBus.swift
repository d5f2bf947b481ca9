import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed sd-bus operation: a negative errno from libsystemd, or a D-Bus error reply.
struct BusError: Error, CustomStringConvertible {
    /// What was being done ("ListUnits", "connect to the system bus").
    let operation: String
    /// The errno libsystemd returned (positive), 0 for an error reply.
    let code: Int32
    /// The D-Bus error name of an error reply (`org.freedesktop.DBus.Error.ServiceUnknown`).
    let name: String?
    let message: String?

    init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = code < 0 ? -code : code
        self.name = nil
        self.message = nil
    }

    init(_ operation: String, reply: UnsafePointer<sd_bus_error>) {
        self.operation = operation
        self.code = 0
        self.name = reply.pointee.name.map { String(cString: $0) }
        self.message = reply.pointee.message.map { String(cString: $0) }
    }

    static func timedOut(_ operation: String) -> BusError { BusError(operation, code: ETIMEDOUT) }

    var description: String {
        if let name {
            return "\(self.operation): \(name)" + (self.message.map { ": \($0)" } ?? "")
        }
        return "\(self.operation): \(String(cString: strerror(self.code)))"
    }

    /// Nobody owns the name called: no systemd on this bus (its activation file may start `/bin/false`).
    var meansNoService: Bool {
        guard let name = self.name else { return false }
        return name == "org.freedesktop.DBus.Error.ServiceUnknown"
            || name == "org.freedesktop.DBus.Error.NameHasNoOwner"
            || name.hasPrefix("org.freedesktop.DBus.Error.Spawn.")
    }

    /// The connection is gone (the peer closed it, or restarted); sd-bus then fails a call with
    /// an errno or answers it with a synthesized `Disconnected` error.
    var meansDisconnected: Bool {
        guard let name = self.name else { return [ENOTCONN, ECONNRESET, EPIPE, ESHUTDOWN].contains(self.code) }
        return name == "org.freedesktop.DBus.Error.Disconnected"
    }

    /// The object or interface is not there (any more): a unit that vanished between `ListUnits` and
    /// `GetAll`, or an interface this systemd does not have.
    var meansAbsent: Bool {
        switch self.name {
        case "org.freedesktop.DBus.Error.UnknownObject", "org.freedesktop.DBus.Error.UnknownInterface",
            "org.freedesktop.DBus.Error.UnknownProperty", "org.freedesktop.systemd1.NoSuchUnit":
            true
        default: false
        }
    }
}

/// Where to reach systemd.
enum BusEndpoint: Sendable, Equatable {
    /// The system bus (`/run/dbus/system_bus_socket`, or `$DBUS_SYSTEM_BUS_ADDRESS`).
    case systemBus
    /// A bus daemon at this address (`unix:path=…`).
    case bus(address: String)
    /// systemd itself, without a bus daemon: `unix:path=/run/systemd/private` (root only).
    case direct(address: String)

    static let systemdPrivate = BusEndpoint.direct(address: "unix:path=/run/systemd/private")
}

/// One connection to a D-Bus bus through sd-bus.
///
/// Not thread-safe: a connection is used by one scrape at a time, which takes it from
/// ``BusConnectionSlot`` and puts it back when done.
final class BusConnection: @unchecked Sendable {
    // @unchecked: only ever used by the one thread that took it out of its slot.
    private let bus: OpaquePointer

    private init(bus: OpaquePointer) {
        self.bus = bus
    }

    deinit {
        // Not sd_bus_flush_close_unref: flushing may block on a stuck peer.
        sd_bus_close_unref(self.bus)
    }

    /// Connects to `endpoint`.
    static func open(_ endpoint: BusEndpoint) throws(BusError) -> BusConnection {
        var bus: OpaquePointer?
        let (address, isBusClient): (String, Bool)
        switch endpoint {
        case .systemBus:
            let result = sd_bus_open_system(&bus)
            guard result >= 0, let bus else { throw BusError("connect to the system bus", code: result) }
            return BusConnection(bus: bus)
        case .bus(let busAddress): (address, isBusClient) = (busAddress, true)
        case .direct(let peerAddress): (address, isBusClient) = (peerAddress, false)
        }
        var result = sd_bus_new(&bus)
        guard result >= 0, let bus else { throw BusError("connect to \(address)", code: result) }
        let connection = BusConnection(bus: bus)
        result = sd_bus_set_address(bus, address)
        if result >= 0 { result = sd_bus_set_bus_client(bus, isBusClient ? 1 : 0) }
        if result >= 0 { result = sd_bus_start(bus) }
        guard result >= 0 else { throw BusError("connect to \(address)", code: result) }
        return connection
    }

    /// Whether the connection goes through a bus daemon (which routes signals only to matches added
    /// with ``addMatch(_:deadline:)``), rather than straight to systemd.
    var isBusClient: Bool { sd_bus_is_bus_client(self.bus) > 0 }

    /// A method call to systemd's manager or one of its units (or to another `destination`).
    func methodCall(
        path: String,
        interface: String,
        member: String,
        destination: String = "org.freedesktop.systemd1"
    ) throws(BusError) -> BusMessage {
        var message: OpaquePointer?
        let result = sd_bus_message_new_method_call(
            self.bus,
            &message,
            destination,
            path,
            interface,
            member
        )
        guard result >= 0, let message else { throw BusError("\(member) \(path)", code: result) }
        return BusMessage(owning: message)
    }

    /// A `Properties.GetAll(interface)` call on `path`.
    func getAll(path: String, interface: StaticString) throws(BusError) -> BusMessage {
        let call = try self.methodCall(path: path, interface: "org.freedesktop.DBus.Properties", member: "GetAll")
        // A StaticString literal is NUL-terminated.
        try call.append(cString: UnsafeRawPointer(interface.utf8Start))
        return call
    }

    /// A `Properties.Get(interface, property)` call on `path`.
    func get(path: String, interface: StaticString, property: StaticString) throws(BusError) -> BusMessage {
        let call = try self.methodCall(path: path, interface: "org.freedesktop.DBus.Properties", member: "Get")
        try call.append(cString: UnsafeRawPointer(interface.utf8Start))
        try call.append(cString: UnsafeRawPointer(property.utf8Start))
        return call
    }

    /// Asks the bus daemon to route the signals that match `rule` to this connection.
    func addMatch(_ rule: String, deadline: ContinuousClock.Instant) throws(BusError) {
        let call = try self.methodCall(
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "AddMatch",
            destination: "org.freedesktop.DBus"
        )
        try call.append(string: rule)
        _ = try self.call(call, deadline: deadline, operation: "AddMatch")
    }

    /// Hands every message that has arrived (signals, between scrapes) to `handle`, without waiting for
    /// more; returns false if `deadline` passed first.
    func drain(deadline: ContinuousClock.Instant, _ handle: (borrowing BusMessage) -> Void) throws(BusError) -> Bool {
        while ContinuousClock.now < deadline {
            var received: OpaquePointer?
            // Reads the socket without blocking; 0 once nothing is queued.
            let result = sd_bus_process(self.bus, &received)
            guard result >= 0 else { throw BusError("receive", code: result) }
            if let received {
                handle(BusMessage(owning: received))
            } else if result == 0 {
                return true
            }
        }
        return false
    }

    /// Sends `call` and waits for its reply until `deadline`.
    func call(
        _ call: borrowing BusMessage,
        deadline: ContinuousClock.Instant,
        operation: String
    ) throws(BusError) -> BusMessage {
        guard let timeout = microseconds(until: deadline) else { throw .timedOut(operation) }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        let result = sd_bus_call(self.bus, call.message, timeout, &error, &reply)
        if result < 0 {
            if error.name != nil { throw BusError(operation, reply: &error) }
            throw BusError(operation, code: result)
        }
        guard let reply else { throw BusError(operation, code: EBADMSG) }
        return BusMessage(owning: reply)
    }

    /// Sends `count` calls, at most `window` unanswered at a time, and hands each reply (or error reply)
    /// to `handle` as it arrives, until every call is answered or `deadline` passes. Other messages
    /// that arrive meanwhile (signals) go to `other`.
    ///
    /// Pipelining hides the round trip through the bus daemon: systemd answers one call while the
    /// next is already queued. The bus daemon limits unanswered calls per connection (128 by default).
    ///
    /// - Throws: ``BusError`` for a broken connection or when the deadline passes; the replies handled
    ///   until then stay handled. The connection should then be dropped: late replies may still arrive.
    func pipeline(
        count: Int,
        window: Int,
        deadline: ContinuousClock.Instant,
        makeCall: (Int) throws(BusError) -> BusMessage,
        handle: (Int, borrowing BusMessage) -> Void,
        other: (borrowing BusMessage) -> Void = { _ in }
    ) throws(BusError) {
        var pending: [UInt64: Int] = [:]
        pending.reserveCapacity(window)
        var next = 0
        var answered = 0
        while answered < count {
            // Checked on every turn: a stream of replies and signals must not outlast the deadline.
            guard ContinuousClock.now < deadline else { throw .timedOut("property calls") }
            while pending.count < window && next < count {
                let call = try makeCall(next)
                var cookie: UInt64 = 0
                let result = sd_bus_send(self.bus, call.message, &cookie)
                guard result >= 0 else { throw BusError("send", code: result) }
                pending[cookie] = next
                next += 1
            }
            var received: OpaquePointer?
            let result = sd_bus_process(self.bus, &received)
            guard result >= 0 else { throw BusError("receive", code: result) }
            if let received {
                let reply = BusMessage(owning: received)
                var cookie: UInt64 = 0
                if sd_bus_message_get_reply_cookie(received, &cookie) >= 0 {
                    // A stale reply (to a call of an earlier, abandoned pipeline) is dropped.
                    if let index = pending[cookie] {
                        pending[cookie] = nil
                        answered += 1
                        handle(index, reply)
                    }
                } else {
                    other(reply)
                }
                continue
            }
            if result > 0 { continue }
            guard let timeout = microseconds(until: deadline) else { throw .timedOut("property calls") }
            let waited = sd_bus_wait(self.bus, timeout)
            guard waited >= 0 || waited == -EINTR else { throw BusError("wait", code: waited) }
        }
    }
}

/// Microseconds from now until `deadline`, or nil when it has passed.
private func microseconds(until deadline: ContinuousClock.Instant) -> UInt64? {
    let left = ContinuousClock.now.duration(to: deadline)
    guard left > .zero else { return nil }
    let (seconds, attoseconds) = left.components
    return UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000) + 1
}

/// A D-Bus message (a call to send, or a reply to read) and a read cursor into it.
struct BusMessage: ~Copyable {
    let message: OpaquePointer

    init(owning message: OpaquePointer) {
        self.message = message
    }

    deinit {
        sd_bus_message_unref(self.message)
    }

    func append(string: String) throws(BusError) {
        let result = sd_bus_message_append_basic(self.message, typeCode("s"), string)
        guard result >= 0 else { throw BusError("append", code: result) }
    }

    func append(cString: UnsafeRawPointer) throws(BusError) {
        let result = sd_bus_message_append_basic(self.message, typeCode("s"), cString)
        guard result >= 0 else { throw BusError("append", code: result) }
    }

    /// The error this reply carries, if it is an error reply to `operation`.
    func error(of operation: @autoclosure () -> String) -> BusError? {
        guard sd_bus_message_is_method_error(self.message, nil) > 0,
            let error = sd_bus_message_get_error(self.message)
        else { return nil }
        return BusError(operation(), reply: error)
    }

    /// Enters a container; false at the end of the enclosing array.
    func enter(_ type: Unicode.Scalar, _ contents: String) throws(BusError) -> Bool {
        let result = sd_bus_message_enter_container(self.message, typeCode(type), contents)
        guard result >= 0 else { throw BusError("read \(type)\(contents)", code: result) }
        return result > 0
    }

    func exit() throws(BusError) {
        let result = sd_bus_message_exit_container(self.message)
        guard result >= 0 else { throw BusError("read", code: result) }
    }

    func skip(_ types: String) throws(BusError) {
        let result = sd_bus_message_skip(self.message, types)
        guard result >= 0 else { throw BusError("skip \(types)", code: result) }
    }

    /// A string, object path or signature, valid while the message lives.
    func readCString(_ type: Unicode.Scalar = "s") throws(BusError) -> UnsafePointer<CChar> {
        var value: UnsafePointer<CChar>?
        let result = sd_bus_message_read_basic(self.message, typeCode(type), &value)
        guard result > 0, let value else { throw BusError("read \(type)", code: result == 0 ? EBADMSG : result) }
        return value
    }

    func readString(_ type: Unicode.Scalar = "s") throws(BusError) -> String {
        String(cString: try self.readCString(type))
    }

    func readUInt64() throws(BusError) -> UInt64 {
        var value: UInt64 = 0
        let result = sd_bus_message_read_basic(self.message, typeCode("t"), &value)
        guard result > 0 else { throw BusError("read t", code: result == 0 ? EBADMSG : result) }
        return value
    }

    func readUInt32() throws(BusError) -> UInt32 {
        var value: UInt32 = 0
        let result = sd_bus_message_read_basic(self.message, typeCode("u"), &value)
        guard result > 0 else { throw BusError("read u", code: result == 0 ? EBADMSG : result) }
        return value
    }

    func readBool() throws(BusError) -> Bool {
        var value: Int32 = 0
        let result = sd_bus_message_read_basic(self.message, typeCode("b"), &value)
        guard result > 0 else { throw BusError("read b", code: result == 0 ? EBADMSG : result) }
        return value != 0
    }

    /// An array of bytes (`ay`).
    func readBytes() throws(BusError) -> [UInt8] {
        var pointer: UnsafeRawPointer?
        var size = 0
        let result = sd_bus_message_read_array(self.message, typeCode("y"), &pointer, &size)
        guard result >= 0 else { throw BusError("read ay", code: result) }
        guard let pointer, size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: size))
    }

    /// Whether this is the signal `member` of `interface`.
    func isSignal(_ interface: String, _ member: String) -> Bool {
        sd_bus_message_is_signal(self.message, interface, member) > 0
    }

    /// The object path the message is about (for a signal, the object that emitted it).
    var path: UnsafePointer<CChar>? { sd_bus_message_get_path(self.message) }

    /// The signature of the variant at the cursor (`"t"`, `"s"`…), without moving the cursor.
    func peekVariantSignature() throws(BusError) -> UnsafePointer<CChar>? {
        var type: CChar = 0
        var contents: UnsafePointer<CChar>?
        let result = sd_bus_message_peek_type(self.message, &type, &contents)
        guard result > 0 else { throw BusError("peek", code: result == 0 ? EBADMSG : result) }
        return type == typeCode("v") ? contents : nil
    }
}

@inline(__always)
private func typeCode(_ code: Unicode.Scalar) -> CChar {
    CChar(bitPattern: UInt8(ascii: code))
}
