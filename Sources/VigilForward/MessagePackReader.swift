/// A MessagePack decoding error: where in the input, and what was wrong.
public struct MessagePackError: Error, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case truncated, reservedByte, typeMismatch, invalidUTF8, tooDeep, invalidValue
        }
        private let base: Base

        /// The input ends inside a value: more bytes may complete it.
        public static let truncated = Code(base: .truncated)
        /// The byte 0xC1, which MessagePack never uses.
        public static let reservedByte = Code(base: .reservedByte)
        /// A value of another type than the one expected here.
        public static let typeMismatch = Code(base: .typeMismatch)
        /// A `str` that is not valid UTF-8.
        public static let invalidUTF8 = Code(base: .invalidUTF8)
        /// Arrays and maps nested deeper than the reader allows.
        public static let tooDeep = Code(base: .tooDeep)
        /// A value of the right type but out of range (a negative time, ext type −1 as EventTime, …).
        public static let invalidValue = Code(base: .invalidValue)

        public var description: String { "\(self.base)" }
    }

    public let code: Code
    /// Offset of the offending value from the reader's start.
    public let offset: Int
    public let message: String

    public var description: String { "\(self.message) at byte \(self.offset)" }
}

/// The broad type of the next value, from its first byte.
public enum MessagePackType: Sendable, Equatable {
    case `nil`, bool, int, float, string, binary, array, map, `extension`
}

/// Reads MessagePack strictly: every wrong type, short input, invalid UTF-8 in a `str` or reserved byte
/// is an error naming the offset. Used for handshake and ack messages by the client and for every frame
/// by the test receiver.
public struct MessagePackReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    public init(_ bytes: [UInt8]) {
        self.init(bytes[...])
    }

    /// Bytes read so far.
    public var offset: Int { self.index - self.bytes.startIndex }
    public var isAtEnd: Bool { self.index == self.bytes.endIndex }
    /// The bytes not read yet.
    public var remainingBytes: ArraySlice<UInt8> { self.bytes[self.index...] }

    /// The type of the next value, without reading it; nil at the end of the input.
    public func peekType() throws(MessagePackError) -> MessagePackType? {
        guard self.index < self.bytes.endIndex else { return nil }
        let byte = self.bytes[self.index]
        switch byte {
        case 0x00...0x7F, 0xE0...0xFF, 0xCC...0xD3: return .int
        case 0x80...0x8F, 0xDE, 0xDF: return .map
        case 0x90...0x9F, 0xDC, 0xDD: return .array
        case 0xA0...0xBF, 0xD9...0xDB: return .string
        case 0xC0: return .nil
        case 0xC2, 0xC3: return .bool
        case 0xC4...0xC6: return .binary
        case 0xC7...0xC9, 0xD4...0xD8: return .extension
        case 0xCA, 0xCB: return .float
        default: throw self.error(.reservedByte, "reserved byte 0xC1")
        }
    }

    /// Reads any value; arrays and maps may nest `maxDepth` deep.
    public mutating func readValue(maxDepth: Int = 64) throws(MessagePackError) -> MessagePackValue {
        let start = self.index
        let byte = try self.readByte()
        switch byte {
        case 0x00...0x7F: return .int(Int64(byte))
        case 0xE0...0xFF: return .int(Int64(Int8(bitPattern: byte)))
        case 0xC0: return .nil
        case 0xC2: return .bool(false)
        case 0xC3: return .bool(true)
        case 0xCC...0xD3:
            self.index = start
            let value = try self.readAnyInteger()
            return value
        case 0xCA: return .float(Double(Float(bitPattern: try self.readBigEndian(UInt32.self))))
        case 0xCB: return .float(Double(bitPattern: try self.readBigEndian(UInt64.self)))
        case 0xA0...0xBF, 0xD9...0xDB, 0xC4...0xC6:
            self.index = start
            let isString = byte < 0xC4 || byte > 0xC6
            let raw = try self.readStringOrBinary()
            if isString {
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw self.error(.invalidUTF8, "str is not UTF-8", at: start)
                }
                return .string(text)
            }
            return .binary(Array(raw))
        case 0x90...0x9F, 0xDC, 0xDD:
            self.index = start
            let count = try self.readArrayHeader()
            guard maxDepth > 0 else { throw self.error(.tooDeep, "values nested too deep", at: start) }
            var elements: [MessagePackValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try self.readValue(maxDepth: maxDepth - 1)) }
            return .array(elements)
        case 0x80...0x8F, 0xDE, 0xDF:
            self.index = start
            let count = try self.readMapHeader()
            guard maxDepth > 0 else { throw self.error(.tooDeep, "values nested too deep", at: start) }
            var entries: [(key: MessagePackValue, value: MessagePackValue)] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let key = try self.readValue(maxDepth: maxDepth - 1)
                let value = try self.readValue(maxDepth: maxDepth - 1)
                entries.append((key: key, value: value))
            }
            return .map(entries)
        case 0xC7...0xC9, 0xD4...0xD8:
            self.index = start
            let (type, data) = try self.readExtension()
            return .extension(type: type, data: Array(data))
        default:
            throw self.error(.reservedByte, "reserved byte 0xC1", at: start)
        }
    }

    /// Skips one value of any type without building it; nesting costs no stack.
    public mutating func skipValue() throws(MessagePackError) {
        var pending = 1
        while pending > 0 {
            pending -= 1
            let start = self.index
            let byte = try self.readByte()
            switch byte {
            case 0x00...0x7F, 0xE0...0xFF, 0xC0, 0xC2, 0xC3: continue
            case 0xCC, 0xD0: try self.skip(1)
            case 0xCD, 0xD1: try self.skip(2)
            case 0xCE, 0xD2, 0xCA: try self.skip(4)
            case 0xCF, 0xD3, 0xCB: try self.skip(8)
            case 0xA0...0xBF, 0xD9...0xDB, 0xC4...0xC6, 0xC7...0xC9, 0xD4...0xD8:
                self.index = start
                if (0xC7...0xC9).contains(byte) || (0xD4...0xD8).contains(byte) {
                    _ = try self.readExtension()
                } else {
                    _ = try self.readStringOrBinary()
                }
            case 0x90...0x9F, 0xDC, 0xDD:
                self.index = start
                pending += try self.readArrayHeader()
            case 0x80...0x8F, 0xDE, 0xDF:
                self.index = start
                pending += 2 * (try self.readMapHeader())
            default:
                throw self.error(.reservedByte, "reserved byte 0xC1", at: start)
            }
        }
    }

    /// The length of the complete value at the start of `bytes`, or nil while it is incomplete: how a
    /// stream is cut into messages (MessagePack has no other framing).
    public static func lengthOfFirstValue(in bytes: ArraySlice<UInt8>) throws(MessagePackError) -> Int? {
        var reader = MessagePackReader(bytes)
        do {
            try reader.skipValue()
        } catch  where error.code == .truncated {
            return nil
        }
        return reader.offset
    }

    public mutating func readNil() throws(MessagePackError) {
        let start = self.index
        guard try self.readByte() == 0xC0 else { throw self.mismatch("nil", at: start) }
    }

    public mutating func readBool() throws(MessagePackError) -> Bool {
        let start = self.index
        switch try self.readByte() {
        case 0xC2: return false
        case 0xC3: return true
        default: throw self.mismatch("bool", at: start)
        }
    }

    /// Reads an integer of any encoding that fits an `Int64`.
    public mutating func readInt() throws(MessagePackError) -> Int64 {
        let start = self.index
        switch try self.readAnyInteger() {
        case .int(let value): return value
        default: throw self.error(.invalidValue, "integer out of range", at: start)
        }
    }

    /// Reads an array header and returns the element count.
    public mutating func readArrayHeader() throws(MessagePackError) -> Int {
        let start = self.index
        let byte = try self.readByte()
        let count: Int
        switch byte {
        case 0x90...0x9F: count = Int(byte & 0x0F)
        case 0xDC: count = Int(try self.readBigEndian(UInt16.self))
        case 0xDD: count = Int(try self.readBigEndian(UInt32.self))
        default: throw self.mismatch("array", at: start)
        }
        // Every element takes at least one byte: a count beyond the input is short input, not a reason
        // to reserve memory for it.
        if count > self.bytes.endIndex - self.index { throw self.error(.truncated, "array longer than the input") }
        return count
    }

    /// Reads a map header and returns the number of key-value pairs.
    public mutating func readMapHeader() throws(MessagePackError) -> Int {
        let start = self.index
        let byte = try self.readByte()
        let count: Int
        switch byte {
        case 0x80...0x8F: count = Int(byte & 0x0F)
        case 0xDE: count = Int(try self.readBigEndian(UInt16.self))
        case 0xDF: count = Int(try self.readBigEndian(UInt32.self))
        default: throw self.mismatch("map", at: start)
        }
        if 2 * count > self.bytes.endIndex - self.index { throw self.error(.truncated, "map longer than the input") }
        return count
    }

    /// Reads a `str` (only) and checks that it is UTF-8.
    public mutating func readString() throws(MessagePackError) -> String {
        let start = self.index
        guard let type = try self.peekType() else { throw self.error(.truncated, "input ends before a value") }
        guard type == .string else { throw self.mismatch("str", at: start) }
        let raw = try self.readStringOrBinary()
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw self.error(.invalidUTF8, "str is not UTF-8", at: start)
        }
        return text
    }

    /// Reads a `str` or a `bin` as raw bytes (nonces, salts, acks and packed entries may be either).
    public mutating func readStringOrBinary() throws(MessagePackError) -> ArraySlice<UInt8> {
        let start = self.index
        let byte = try self.readByte()
        let count: Int
        switch byte {
        case 0xA0...0xBF: count = Int(byte & 0x1F)
        case 0xD9, 0xC4: count = Int(try self.readBigEndian(UInt8.self))
        case 0xDA, 0xC5: count = Int(try self.readBigEndian(UInt16.self))
        case 0xDB, 0xC6: count = Int(try self.readBigEndian(UInt32.self))
        default: throw self.mismatch("str or bin", at: start)
        }
        return try self.take(count)
    }

    /// Reads an extension value: its type and data.
    public mutating func readExtension() throws(MessagePackError) -> (type: Int8, data: ArraySlice<UInt8>) {
        let start = self.index
        let byte = try self.readByte()
        let count: Int
        switch byte {
        case 0xD4: count = 1
        case 0xD5: count = 2
        case 0xD6: count = 4
        case 0xD7: count = 8
        case 0xD8: count = 16
        case 0xC7: count = Int(try self.readBigEndian(UInt8.self))
        case 0xC8: count = Int(try self.readBigEndian(UInt16.self))
        case 0xC9: count = Int(try self.readBigEndian(UInt32.self))
        default: throw self.mismatch("ext", at: start)
        }
        let type = Int8(bitPattern: try self.readByte())
        return (type, try self.take(count))
    }

    /// Reads an event time as the forward protocol allows it: EventTime (ext type 0, 8 bytes, as fixext8
    /// or ext8) or integer seconds. The msgpack Timestamp (ext type −1) is refused, as fluentd does.
    public mutating func readEventTime() throws(MessagePackError) -> EventTime {
        let start = self.index
        guard let type = try self.peekType() else { throw self.error(.truncated, "input ends before a value") }
        switch type {
        case .int:
            let seconds = try self.readInt()
            guard let value = UInt32(exactly: seconds) else {
                throw self.error(.invalidValue, "time \(seconds) out of range", at: start)
            }
            return EventTime(seconds: value)
        case .extension:
            let (type, data) = try self.readExtension()
            guard type == 0 else {
                throw self.error(.invalidValue, "time is ext type \(type), not EventTime (ext type 0)", at: start)
            }
            guard data.count == 8 else {
                throw self.error(.invalidValue, "EventTime has \(data.count) bytes, not 8", at: start)
            }
            var reader = MessagePackReader(data)
            let seconds = try reader.readBigEndian(UInt32.self)
            let nanoseconds = try reader.readBigEndian(UInt32.self)
            guard nanoseconds < 1_000_000_000 else {
                throw self.error(.invalidValue, "EventTime nanoseconds \(nanoseconds) ≥ 10⁹", at: start)
            }
            return EventTime(seconds: seconds, nanoseconds: nanoseconds)
        default:
            throw self.mismatch("EventTime or integer time", at: start)
        }
    }

    private mutating func readAnyInteger() throws(MessagePackError) -> MessagePackValue {
        let start = self.index
        let byte = try self.readByte()
        switch byte {
        case 0x00...0x7F: return .int(Int64(byte))
        case 0xE0...0xFF: return .int(Int64(Int8(bitPattern: byte)))
        case 0xCC: return .int(Int64(try self.readBigEndian(UInt8.self)))
        case 0xCD: return .int(Int64(try self.readBigEndian(UInt16.self)))
        case 0xCE: return .int(Int64(try self.readBigEndian(UInt32.self)))
        case 0xCF:
            let value = try self.readBigEndian(UInt64.self)
            return value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value)
        case 0xD0: return .int(Int64(Int8(bitPattern: try self.readBigEndian(UInt8.self))))
        case 0xD1: return .int(Int64(Int16(bitPattern: try self.readBigEndian(UInt16.self))))
        case 0xD2: return .int(Int64(Int32(bitPattern: try self.readBigEndian(UInt32.self))))
        case 0xD3: return .int(Int64(bitPattern: try self.readBigEndian(UInt64.self)))
        default: throw self.mismatch("integer", at: start)
        }
    }

    private mutating func readByte() throws(MessagePackError) -> UInt8 {
        guard self.index < self.bytes.endIndex else { throw self.error(.truncated, "input ends inside a value") }
        defer { self.index += 1 }
        return self.bytes[self.index]
    }

    private mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type) throws(MessagePackError) -> T {
        let raw = try self.take(MemoryLayout<T>.size)
        return raw.reduce(T.zero) { $0 << 8 | T($1) }
    }

    private mutating func take(_ count: Int) throws(MessagePackError) -> ArraySlice<UInt8> {
        guard count <= self.bytes.endIndex - self.index else {
            throw self.error(.truncated, "input ends inside a value")
        }
        defer { self.index += count }
        return self.bytes[self.index..<self.index + count]
    }

    private mutating func skip(_ count: Int) throws(MessagePackError) {
        _ = try self.take(count)
    }

    private func mismatch(_ expected: String, at start: Int) -> MessagePackError {
        var found = "end of input"
        if let type = try? MessagePackReader(self.bytes[start...]).peekType() { found = "\(type)" }
        return self.error(.typeMismatch, "expected \(expected), found \(found)", at: start)
    }

    private func error(_ code: MessagePackError.Code, _ message: String, at start: Int? = nil) -> MessagePackError {
        MessagePackError(code: code, offset: (start ?? self.index) - self.bytes.startIndex, message: message)
    }
}
