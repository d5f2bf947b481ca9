#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One entry of systemd's `ListUnits` reply.
struct ListedUnit: Sendable, Equatable {
    let name: String
    let loadState: String
    /// active, reloading, inactive, failed, activating, deactivating, maintenance (refreshing on 255+).
    let activeState: String
    /// The type-specific state (running, exited, listening, auto-restart…).
    let subState: String
    /// The unit's object path, as systemd returned it (no need to encode the name).
    let path: String
    /// The id of the job queued for the unit, 0 for none.
    let jobID: UInt32
    /// The unit type: the name's suffix after the last dot (`service`, `socket`…).
    let type: Substring

    init(name: String, loadState: String, activeState: String, subState: String = "", path: String, jobID: UInt32 = 0) {
        self.name = name
        self.loadState = loadState
        self.activeState = activeState
        self.subState = subState
        self.path = path
        self.jobID = jobID
        self.type = name.lastIndex(of: ".").map { name[name.index(after: $0)...] } ?? ""
    }

    /// Whether the unit is in the same state, with the same job, as `other` says.
    func sameState(as other: ListedUnit) -> Bool {
        self.activeState == other.activeState && self.subState == other.subState && self.jobID == other.jobID
            && self.loadState == other.loadState
    }
}

/// Reads a `ListUnits` reply: `a(ssssssouso)` — name, description, load state, active state, sub state,
/// following, object path, job id, job type, job path.
func decodeListUnits(_ reply: borrowing BusMessage) throws(BusError) -> [ListedUnit] {
    var units: [ListedUnit] = []
    guard try reply.enter("a", "(ssssssouso)") else { return units }
    while try reply.enter("r", "ssssssouso") {
        let name = try reply.readString()
        try reply.skip("s")
        let loadState = try reply.readString()
        let activeState = try reply.readString()
        let subState = try reply.readString()
        try reply.skip("s")
        let path = try reply.readString("o")
        let jobID = try reply.readUInt32()
        try reply.skip("so")
        try reply.exit()
        units.append(
            ListedUnit(
                name: name,
                loadState: loadState,
                activeState: activeState,
                subState: subState,
                path: path,
                jobID: jobID
            )
        )
    }
    try reply.exit()
    return units
}

/// The D-Bus properties vigil reads from systemd's manager and units.
enum BusProperty: Int, CaseIterable {
    // org.freedesktop.systemd1.Unit
    case activeEnterTimestamp, invocationID
    // Service and Mount
    case type
    // Service
    case nRestarts
    // the cgroup block of Service, Socket, Mount, Swap, Slice, Scope
    case controlGroup, tasksCurrent, tasksMax, cpuUsageNSec, memoryCurrent, ioReadBytes, ioWriteBytes
    case ipIngressBytes, ipEgressBytes
    // Socket
    case accept, nAccepted, nConnections, nRefused
    // Timer
    case lastTriggerUSec
    // Manager
    case version, systemState

    var name: StaticString {
        switch self {
        case .activeEnterTimestamp: "ActiveEnterTimestamp"
        case .invocationID: "InvocationID"
        case .controlGroup: "ControlGroup"
        case .accept: "Accept"
        case .type: "Type"
        case .nRestarts: "NRestarts"
        case .tasksCurrent: "TasksCurrent"
        case .tasksMax: "TasksMax"
        case .cpuUsageNSec: "CPUUsageNSec"
        case .memoryCurrent: "MemoryCurrent"
        case .ioReadBytes: "IOReadBytes"
        case .ioWriteBytes: "IOWriteBytes"
        case .ipIngressBytes: "IPIngressBytes"
        case .ipEgressBytes: "IPEgressBytes"
        case .nAccepted: "NAccepted"
        case .nConnections: "NConnections"
        case .nRefused: "NRefused"
        case .lastTriggerUSec: "LastTriggerUSec"
        case .version: "Version"
        case .systemState: "SystemState"
        }
    }

    /// The D-Bus type systemd declares for the property: `t` (uint64), `u` (uint32), `s`, `b` or `ay`.
    var signature: StaticString {
        switch self {
        case .type, .version, .systemState, .controlGroup: "s"
        case .nRestarts, .nAccepted, .nConnections, .nRefused: "u"
        case .accept: "b"
        case .invocationID: "ay"
        default: "t"
        }
    }

    /// The properties by name length: a GetAll reply has a few hundred keys, and most are skipped
    /// after a length check, without building a String.
    private static let byLength: [[BusProperty]] = {
        var table: [[BusProperty]] = Array(repeating: [], count: 32)
        for property in BusProperty.allCases { table[property.name.utf8CodeUnitCount].append(property) }
        return table
    }()

    /// The property named by a NUL-terminated key, if vigil reads it.
    static func named(_ key: UnsafePointer<CChar>) -> BusProperty? {
        let length = strlen(key)
        guard length < Self.byLength.count else { return nil }
        for candidate in Self.byLength[length] where memcmp(candidate.name.utf8Start, key, length) == 0 {
            return candidate
        }
        return nil
    }
}

/// A property value as read from its variant.
enum BusValue: Equatable {
    case uint64(UInt64)
    case uint32(UInt32)
    case string(String)
    case bool(Bool)
    case bytes([UInt8])
}

/// A set of ``BusProperty`` values.
struct PropertySet: Sendable, Equatable {
    private var bits: UInt32

    init(_ properties: [BusProperty]) {
        self.bits = properties.reduce(0) { $0 | 1 << $1.rawValue }
    }

    var isEmpty: Bool { self.bits == 0 }

    func contains(_ property: BusProperty) -> Bool { self.bits & 1 << property.rawValue != 0 }

    mutating func remove(_ property: BusProperty) { self.bits &= ~(1 << property.rawValue) }
}

/// Reads a `Properties.GetAll` reply (`a{sv}`) and hands over the properties vigil knows, with the
/// type it expects; other keys, and known keys of an unexpected type, are skipped.
///
/// Reading stops once every property in `wanted` has been seen: systemd lists a service's
/// accounting properties before its execution settings, whose nested arrays sd-bus can only skip
/// element by element.
func decodeProperties(
    _ reply: borrowing BusMessage,
    wanted: PropertySet,
    _ found: (BusProperty, BusValue) -> Void
) throws(BusError) {
    var missing = wanted
    guard try reply.enter("a", "{sv}") else { return }
    while try reply.enter("e", "sv") {
        guard let property = BusProperty.named(try reply.readCString()) else {
            try reply.skip("v")
            try reply.exit()
            continue
        }
        if let value = try decodeVariant(reply, as: property) {
            found(property, value)
            missing.remove(property)
            if missing.isEmpty { return }  // the rest of the reply is left unread
        }
        try reply.exit()
    }
    try reply.exit()
}

/// Reads a reply of either kind: a `Get`'s variant (`single`), or a `GetAll`'s dictionary.
func decodeProperties(
    _ reply: borrowing BusMessage,
    wanted: PropertySet,
    single: BusProperty?,
    _ found: (BusProperty, BusValue) -> Void
) throws(BusError) {
    guard let single else { return try decodeProperties(reply, wanted: wanted, found) }
    if let value = try decodeVariant(reply, as: single) { found(single, value) }
}

/// Reads the variant at the cursor as `property` expects it; skips it and returns nil when it holds
/// another type.
func decodeVariant(_ reply: borrowing BusMessage, as property: BusProperty) throws(BusError) -> BusValue? {
    let expected = property.signature
    guard let signature = try reply.peekVariantSignature(),
        strcmp(signature, UnsafeRawPointer(expected.utf8Start).assumingMemoryBound(to: CChar.self)) == 0
    else {
        try reply.skip("v")
        return nil
    }
    let value: BusValue
    switch expected.utf8Start[0] {
    case UInt8(ascii: "t"):
        _ = try reply.enter("v", "t")
        value = .uint64(try reply.readUInt64())
    case UInt8(ascii: "u"):
        _ = try reply.enter("v", "u")
        value = .uint32(try reply.readUInt32())
    case UInt8(ascii: "b"):
        _ = try reply.enter("v", "b")
        value = .bool(try reply.readBool())
    case UInt8(ascii: "a"):
        _ = try reply.enter("v", "ay")
        value = .bytes(try reply.readBytes())
    default:
        _ = try reply.enter("v", "s")
        value = .string(try reply.readString())
    }
    try reply.exit()
    return value
}

/// What vigil exports of one unit, gathered from the GetAll replies of its interfaces. A property
/// that is missing (older systemd, vanished unit, failed call) stays nil and its series is left out.
struct UnitProperties: Sendable, Equatable {
    var activeEnterTimestamp: UInt64?
    /// `Service.Type` or `Mount.Type`.
    var type: String?
    var nRestarts: UInt32?
    var tasksCurrent: UInt64?
    var tasksMax: UInt64?
    var cpuUsageNSec: UInt64?
    var memoryCurrent: UInt64?
    var ioReadBytes: UInt64?
    var ioWriteBytes: UInt64?
    var ipIngressBytes: UInt64?
    var ipEgressBytes: UInt64?
    var nAccepted: UInt32?
    var nConnections: UInt32?
    var nRefused: UInt32?
    var lastTriggerUSec: UInt64?

    init() {}

    mutating func set(_ property: BusProperty, _ value: BusValue) {
        switch (property, value) {
        case (.activeEnterTimestamp, .uint64(let v)): self.activeEnterTimestamp = v
        case (.type, .string(let v)): self.type = v
        case (.nRestarts, .uint32(let v)): self.nRestarts = v
        case (.tasksCurrent, .uint64(let v)): self.tasksCurrent = v
        case (.tasksMax, .uint64(let v)): self.tasksMax = v
        case (.cpuUsageNSec, .uint64(let v)): self.cpuUsageNSec = v
        case (.memoryCurrent, .uint64(let v)): self.memoryCurrent = v
        case (.ioReadBytes, .uint64(let v)): self.ioReadBytes = v
        case (.ioWriteBytes, .uint64(let v)): self.ioWriteBytes = v
        case (.ipIngressBytes, .uint64(let v)): self.ipIngressBytes = v
        case (.ipEgressBytes, .uint64(let v)): self.ipEgressBytes = v
        case (.nAccepted, .uint32(let v)): self.nAccepted = v
        case (.nConnections, .uint32(let v)): self.nConnections = v
        case (.nRefused, .uint32(let v)): self.nRefused = v
        case (.lastTriggerUSec, .uint64(let v)): self.lastTriggerUSec = v
        default: break
        }
    }
}

/// What vigil exports of systemd's manager.
struct ManagerProperties: Sendable, Equatable {
    var version: String?
    var systemState: String?

    mutating func set(_ property: BusProperty, _ value: BusValue) {
        switch (property, value) {
        case (.version, .string(let v)): self.version = v
        case (.systemState, .string(let v)): self.systemState = v
        default: break
        }
    }
}

/// node_exporter's numeric systemd version: the first match of `[0-9]{3,}(\.[0-9]+)?` in the
/// manager's `Version` ("252.39-1~deb12u2" → 252.39), or nil when there is none.
func parseSystemdVersion(_ version: String) -> Double? {
    let bytes = Array(version.utf8)
    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    var start = 0
    while start < bytes.count {
        guard isDigit(bytes[start]) else {
            start += 1
            continue
        }
        var end = start
        while end < bytes.count && isDigit(bytes[end]) { end += 1 }
        guard end - start >= 3 else {
            start = end
            continue
        }
        if end + 1 < bytes.count && bytes[end] == UInt8(ascii: ".") && isDigit(bytes[end + 1]) {
            end += 1
            while end < bytes.count && isDigit(bytes[end]) { end += 1 }
        }
        return Double(String(decoding: bytes[start..<end], as: UTF8.self))
    }
    return nil
}
