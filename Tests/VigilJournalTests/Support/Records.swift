import Foundation
import Testing
import VigilJournal

/// A decoded MessagePack value, as far as journal records use MessagePack.
indirect enum Unpacked: Equatable, CustomStringConvertible {
    case string([UInt8])
    case binary([UInt8])
    case array([Unpacked])
    case map([(key: Unpacked, value: Unpacked)])
    case eventTime(seconds: UInt32, nanoseconds: UInt32)
    case other(UInt8)

    static func == (lhs: Unpacked, rhs: Unpacked) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)), (.binary(let a), .binary(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.map(let a), .map(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.eventTime(let s1, let n1), .eventTime(let s2, let n2)): s1 == s2 && n1 == n2
        case (.other(let a), .other(let b)): a == b
        default: false
        }
    }

    var description: String {
        switch self {
        case .string(let bytes):
            "\"\(String(decoding: bytes.prefix(60), as: UTF8.self))\"\(bytes.count > 60 ? "…(\(bytes.count))" : "")"
        case .binary(let bytes): "bin(\(bytes.count))"
        case .array(let values): "\(values)"
        case .map(let entries): "{\(entries.map { "\($0.key): \($0.value)" }.joined(separator: ", "))}"
        case .eventTime(let seconds, let nanoseconds): "EventTime(\(seconds), \(nanoseconds))"
        case .other(let byte): "other(0x\(String(byte, radix: 16)))"
        }
    }

    var bytes: [UInt8]? {
        switch self {
        case .string(let bytes), .binary(let bytes): bytes
        default: nil
        }
    }
}

/// Decodes MessagePack strictly enough for tests: str, bin, array, map, EventTime; anything else is
/// recorded as `.other` with its type byte.
struct Unpacker {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { self.index >= self.bytes.count }

    mutating func next() throws -> Unpacked {
        let type = try self.take(1)[0]
        switch type {
        case 0xA0...0xBF: return .string(try self.take(Int(type & 0x1F)))
        case 0xD9: return .string(try self.take(Int(try self.uint(1))))
        case 0xDA: return .string(try self.take(Int(try self.uint(2))))
        case 0xDB: return .string(try self.take(Int(try self.uint(4))))
        case 0xC4: return .binary(try self.take(Int(try self.uint(1))))
        case 0xC5: return .binary(try self.take(Int(try self.uint(2))))
        case 0xC6: return .binary(try self.take(Int(try self.uint(4))))
        case 0x90...0x9F: return .array(try self.values(Int(type & 0x0F)))
        case 0xDC: return .array(try self.values(Int(try self.uint(2))))
        case 0xDD: return .array(try self.values(Int(try self.uint(4))))
        case 0x80...0x8F: return .map(try self.pairs(Int(type & 0x0F)))
        case 0xDE: return .map(try self.pairs(Int(try self.uint(2))))
        case 0xDF: return .map(try self.pairs(Int(try self.uint(4))))
        case 0xD7:
            let ext = try self.take(1)[0]
            guard ext == 0 else { return .other(type) }
            return .eventTime(seconds: UInt32(try self.uint(4)), nanoseconds: UInt32(try self.uint(4)))
        default: return .other(type)
        }
    }

    private mutating func take(_ count: Int) throws -> [UInt8] {
        guard self.index + count <= self.bytes.count else { throw HarnessError("msgpack: truncated at \(self.index)") }
        defer { self.index += count }
        return Array(self.bytes[self.index..<(self.index + count)])
    }

    private mutating func uint(_ size: Int) throws -> UInt64 {
        try self.take(size).reduce(0) { $0 << 8 | UInt64($1) }
    }

    private mutating func values(_ count: Int) throws -> [Unpacked] {
        try (0..<count).map { _ in try self.next() }
    }

    private mutating func pairs(_ count: Int) throws -> [(key: Unpacked, value: Unpacked)] {
        try (0..<count).map { _ in (try self.next(), try self.next()) }
    }
}

/// One decoded event: its time and its record's key-value pairs.
struct Event {
    let seconds: UInt32
    let nanoseconds: UInt32
    let record: [(key: String, value: Unpacked)]

    subscript(key: String) -> Unpacked? { self.record.first { $0.key == key }?.value }

    func text(_ key: String) -> String? { self[key]?.bytes.map { String(decoding: $0, as: UTF8.self) } }

    var keys: [String] { self.record.map(\.key) }
}

/// Decodes the concatenated `[EventTime, record]` arrays of a batch.
func decodeEvents(_ entries: [UInt8]) throws -> [Event] {
    var unpacker = Unpacker(entries)
    var events: [Event] = []
    while !unpacker.atEnd {
        guard case .array(let pair) = try unpacker.next(), pair.count == 2,
            case .eventTime(let seconds, let nanoseconds) = pair[0], case .map(let entries) = pair[1]
        else { throw HarnessError("not an [EventTime, map] event") }
        let record = try entries.map { entry -> (key: String, value: Unpacked) in
            guard case .string(let key) = entry.key else { throw HarnessError("record key is not a str") }
            return (String(decoding: key, as: UTF8.self), entry.value)
        }
        events.append(Event(seconds: seconds, nanoseconds: nanoseconds, record: record))
    }
    return events
}

/// The record the reader should produce for an exported entry: its fields, a repeated name as an array
/// of its values in order, each value `str` if valid UTF-8 and `bin` otherwise.
func expectedRecord(_ entry: ExportedEntry) -> [String: Unpacked] {
    var grouped: [String: [[UInt8]]] = [:]
    for field in entry.dataFields { grouped[field.name, default: []].append(field.value) }
    return grouped.mapValues { values in
        let packed = values.map { value -> Unpacked in
            String(validating: value, as: UTF8.self) != nil ? .string(value) : .binary(value)
        }
        return packed.count == 1 ? packed[0] : .array(packed)
    }
}

/// Checks that an event is exactly the exported entry: every field and value, and the time to the
/// nanosecond from `__REALTIME_TIMESTAMP`.
func expectSame(_ event: Event, _ entry: ExportedEntry, sourceLocation: SourceLocation = #_sourceLocation) {
    let expected = expectedRecord(entry)
    #expect(
        event.record.count == expected.count,
        "keys: \(event.keys.sorted()) vs \(expected.keys.sorted())",
        sourceLocation: sourceLocation
    )
    #expect(
        Set(event.keys).count == event.keys.count,
        "duplicate keys in \(event.keys)",
        sourceLocation: sourceLocation
    )
    for (key, value) in expected {
        #expect(event[key] == value, "field \(key)", sourceLocation: sourceLocation)
    }
    #expect(UInt64(event.seconds) == entry.realtime / 1_000_000, sourceLocation: sourceLocation)
    #expect(UInt64(event.nanoseconds) == entry.realtime % 1_000_000 * 1000, sourceLocation: sourceLocation)
}
