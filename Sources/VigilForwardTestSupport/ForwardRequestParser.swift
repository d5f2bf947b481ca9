import VigilCore
public import VigilForward

/// One event as a receiver got it.
public struct ReceivedEvent: Sendable, Equatable, CustomStringConvertible {
    public var tag: String
    public var time: EventTime
    public var record: MessagePackValue

    public init(tag: String, time: EventTime, record: MessagePackValue) {
        self.tag = tag
        self.time = time
        self.record = record
    }

    public var description: String { "\(self.tag) \(self.time) \(self.record)" }
}

/// One forward-protocol request as a receiver got it.
public struct ReceivedRequest: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        case message, forward, packedForward, compressedPackedForward
    }

    public var mode: Mode
    public var tag: String
    /// The events, decoded; empty when the request was parsed without keeping them.
    public var events: [ReceivedEvent]
    /// How many events the request carried (kept or not).
    public var eventCount: Int
    /// The `chunk` option's raw bytes (the server must echo them in its ack), if any.
    public var chunk: [UInt8]?
    /// The whole option map, if the request had one.
    public var option: MessagePackValue?
    /// The request's size on the wire.
    public var byteCount: Int

    /// The chunk id as text.
    public var chunkID: String? { self.chunk.map { String(decoding: $0, as: UTF8.self) } }
}

/// Validates and decodes one forward-protocol request strictly: the four modes of the spec, EventTime
/// as ext type 0 only (ext type −1 is refused, as fluentd does), records as maps with `str` keys, option
/// maps with the documented types, `size` matching the events, nothing left over.
public enum ForwardRequestParser {
    /// A request that breaks the protocol; the receiver closes the connection without an ack.
    public struct ProtocolError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// Parses one complete MessagePack value (a request) from `bytes`.
    ///
    /// - Parameter keepEvents: whether to decode the events into ``ReceivedRequest/events``. Without, every
    ///   record is validated just as strictly but walked in place, not built (a counting receiver).
    public static func parse(
        _ bytes: ArraySlice<UInt8>,
        keepEvents: Bool = true
    ) throws(ProtocolError) -> ReceivedRequest {
        do {
            return try self.parseUnchecked(bytes, keepEvents: keepEvents)
        } catch let error as ProtocolError {
            throw error
        } catch {
            throw ProtocolError(description: "\(error)")
        }
    }

    private static func parseUnchecked(_ bytes: ArraySlice<UInt8>, keepEvents: Bool) throws -> ReceivedRequest {
        var reader = MessagePackReader(bytes)
        let count = try reader.readArrayHeader()
        let tag = try reader.readString()
        guard !tag.isEmpty else { throw ProtocolError(description: "empty tag") }
        var request = ReceivedRequest(
            mode: .message,
            tag: tag,
            events: [],
            eventCount: 0,
            chunk: nil,
            option: nil,
            byteCount: bytes.count
        )
        switch try reader.peekType() {
        case .string, .binary:
            guard count == 2 || count == 3 else {
                throw ProtocolError(description: "PackedForward with \(count) elements")
            }
            let isBinary = try reader.peekType() == .binary
            let entries = try reader.readStringOrBinary()
            if count == 3 { try self.readOption(&reader, into: &request) }
            var plain = entries
            switch request.option?["compressed"] {
            case nil, .string("text"):
                request.mode = .packedForward
            case .string("gzip"):
                guard isBinary else { throw ProtocolError(description: "CompressedPackedForward entries must be bin") }
                request.mode = .compressedPackedForward
                plain = try Gzip.decompress(Array(entries))[...]
            case let other?:
                throw ProtocolError(description: "unsupported compressed option \(other)")
            }
            var entryReader = MessagePackReader(plain)
            guard !entryReader.isAtEnd else { throw ProtocolError(description: "PackedForward without entries") }
            while !entryReader.isAtEnd {
                try self.readEntry(&entryReader, tag: tag, into: &request, keep: keepEvents)
            }
        case .array:
            guard count == 2 || count == 3 else { throw ProtocolError(description: "Forward with \(count) elements") }
            request.mode = .forward
            let entryCount = try reader.readArrayHeader()
            guard entryCount > 0 else { throw ProtocolError(description: "Forward without entries") }
            for _ in 0..<entryCount { try self.readEntry(&reader, tag: tag, into: &request, keep: keepEvents) }
            if count == 3 { try self.readOption(&reader, into: &request) }
        case .int, .extension:
            guard count == 3 || count == 4 else { throw ProtocolError(description: "Message with \(count) elements") }
            request.mode = .message
            let time = try reader.readEventTime()
            let record = try self.readRecord(&reader)
            request.events.append(ReceivedEvent(tag: tag, time: time, record: record))
            request.eventCount = 1
            if count == 4 { try self.readOption(&reader, into: &request) }
        case let other:
            throw ProtocolError(
                description: "second element is \(other.map { "\($0)" } ?? "missing"), not a time, entries or an array"
            )
        }
        guard reader.isAtEnd else { throw ProtocolError(description: "bytes after the request") }
        if let size = request.option?["size"], size != .int(Int64(request.eventCount)) {
            throw ProtocolError(description: "option size \(size) but \(request.eventCount) events")
        }
        return request
    }

    private static func readEntry(
        _ reader: inout MessagePackReader,
        tag: String,
        into request: inout ReceivedRequest,
        keep: Bool
    ) throws {
        guard try reader.readArrayHeader() == 2 else { throw ProtocolError(description: "entry is not [time, record]") }
        let time = try reader.readEventTime()
        if keep {
            request.events.append(ReceivedEvent(tag: tag, time: time, record: try self.readRecord(&reader)))
        } else {
            try self.validateRecord(&reader)
        }
        request.eventCount += 1
    }

    /// Checks a record as ``readRecord(_:)`` does (a map with `str` keys, every value well-formed, every
    /// `str` UTF-8) without building it.
    private static func validateRecord(_ reader: inout MessagePackReader) throws {
        guard try reader.peekType() == .map else {
            throw ProtocolError(description: "record is not a map: \(try reader.readValue())")
        }
        for _ in 0..<(try reader.readMapHeader()) {
            guard try reader.peekType() == .string else {
                throw ProtocolError(description: "record key is not a str: \(try reader.readValue())")
            }
            try self.validateValue(&reader, depth: 1)
            try self.validateValue(&reader, depth: 1)
        }
    }

    private static func validateValue(_ reader: inout MessagePackReader, depth: Int) throws {
        guard depth < 64 else { throw ProtocolError(description: "record nested more than 64 levels deep") }
        switch try reader.peekType() {
        case .string:
            guard isUTF8(try reader.readStringOrBinary()) else { throw ProtocolError(description: "str is not UTF-8") }
        case .array:
            for _ in 0..<(try reader.readArrayHeader()) { try self.validateValue(&reader, depth: depth + 1) }
        case .map:
            for _ in 0..<(2 * (try reader.readMapHeader())) { try self.validateValue(&reader, depth: depth + 1) }
        default:
            try reader.skipValue()
        }
    }

    private static func isUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = Unicode.UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    private static func readRecord(_ reader: inout MessagePackReader) throws -> MessagePackValue {
        let record = try reader.readValue()
        guard case .map(let fields) = record else { throw ProtocolError(description: "record is not a map: \(record)") }
        for field in fields where field.key.stringValue == nil {
            throw ProtocolError(description: "record key is not a str: \(field.key)")
        }
        return record
    }

    private static func readOption(_ reader: inout MessagePackReader, into request: inout ReceivedRequest) throws {
        let option = try reader.readValue()
        guard case .map(let entries) = option else {
            throw ProtocolError(description: "option is not a map: \(option)")
        }
        for (key, value) in entries {
            guard let name = key.stringValue else {
                throw ProtocolError(description: "option key is not a str: \(key)")
            }
            switch name {
            case "size":
                guard let size = value.intValue, size >= 0 else {
                    throw ProtocolError(description: "invalid size \(value)")
                }
            case "chunk":
                guard case .string(let chunk) = value, !chunk.isEmpty else {
                    throw ProtocolError(description: "chunk is not a non-empty str: \(value)")
                }
                request.chunk = Array(chunk.utf8)
            case "compressed":
                guard value.stringValue != nil else {
                    throw ProtocolError(description: "compressed is not a str: \(value)")
                }
            default:
                continue
            }
        }
        request.option = option
    }
}
