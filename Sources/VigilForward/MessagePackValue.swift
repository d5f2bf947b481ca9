/// A decoded MessagePack value: handshake and ack messages, and the events a test receiver records.
public enum MessagePackValue: Sendable, Equatable, CustomStringConvertible {
    case `nil`
    case bool(Bool)
    /// Every integer that fits an `Int64`, whatever its encoding.
    case int(Int64)
    /// Only integers above `Int64.max`.
    case uint(UInt64)
    case float(Double)
    /// A `str`; always valid UTF-8 (the reader refuses anything else).
    case string(String)
    case binary([UInt8])
    case array([MessagePackValue])
    /// Key-value pairs in wire order (duplicates kept, so that nothing is hidden from a test).
    case map([(key: MessagePackValue, value: MessagePackValue)])
    case `extension`(type: Int8, data: [UInt8])

    public static func == (lhs: MessagePackValue, rhs: MessagePackValue) -> Bool {
        switch (lhs, rhs) {
        case (.nil, .nil): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.uint(let a), .uint(let b)): a == b
        case (.float(let a), .float(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.binary(let a), .binary(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.map(let a), .map(let b)):
            a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.extension(let typeA, let dataA), .extension(let typeB, let dataB)): typeA == typeB && dataA == dataB
        default: false
        }
    }

    /// The value of the first entry whose key is the string `key`, for maps.
    public subscript(key: String) -> MessagePackValue? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.key == .string(key) }?.value
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The raw bytes of a `str` or a `bin`.
    public var bytesValue: [UInt8]? {
        switch self {
        case .string(let value): Array(value.utf8)
        case .binary(let value): value
        default: nil
        }
    }

    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    public var arrayValue: [MessagePackValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// Writes the value back as MessagePack (integers in their smallest encoding).
    public func write(into writer: inout MessagePackWriter) {
        switch self {
        case .nil: writer.writeNil()
        case .bool(let value): writer.writeBool(value)
        case .int(let value): writer.writeInt(value)
        case .uint(let value): writer.writeUInt(value)
        case .float(let value): writer.writeDouble(value)
        case .string(let value): writer.writeString(value)
        case .binary(let value): writer.writeBinary(value)
        case .array(let values):
            writer.writeArrayHeader(values.count)
            for value in values { value.write(into: &writer) }
        case .map(let entries):
            writer.writeMapHeader(entries.count)
            for entry in entries {
                entry.key.write(into: &writer)
                entry.value.write(into: &writer)
            }
        case .extension(let type, let data):
            writer.writeExtension(type: type, data: data)
        }
    }

    public var description: String {
        switch self {
        case .nil: "nil"
        case .bool(let value): "\(value)"
        case .int(let value): "\(value)"
        case .uint(let value): "\(value)"
        case .float(let value): "\(value)"
        case .string(let value): "\"\(value)\""
        case .binary(let value): "bin(\(value.count) bytes)"
        case .array(let values): "[\(values.map(\.description).joined(separator: ", "))]"
        case .map(let entries): "{\(entries.map { "\($0.key): \($0.value)" }.joined(separator: ", "))}"
        case .extension(let type, let data): "ext(\(type), \(data.count) bytes)"
        }
    }
}

extension MessagePackValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: MessagePackValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (MessagePackValue, MessagePackValue)...) {
        self = .map(elements.map { (key: $0.0, value: $0.1) })
    }
    public init(nilLiteral: ()) { self = .nil }
}
