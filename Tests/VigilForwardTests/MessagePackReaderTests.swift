import Testing
import VigilForward

@Suite struct MessagePackReaderTests {
    @Test func roundTripsEveryType() throws {
        let value: MessagePackValue = [
            nil, true, false, 0, 127, 128, 65535, 65536, -1, -32, -33, -129, -40000, -3_000_000_000,
            .uint(UInt64.max), .float(2.5), "", "héllo", .string(String(repeating: "x", count: 300)),
            .binary([1, 2, 3]), .binary([UInt8](repeating: 9, count: 70000)),
            ["nested": [1, 2, ["deep": "map"]]], .extension(type: 0, data: [0, 0, 0, 1, 0, 0, 0, 2]),
            .extension(type: 5, data: [1, 2, 3]), .array((0..<20).map { .int($0) }),
        ]
        var writer = MessagePackWriter()
        value.write(into: &writer)
        var reader = MessagePackReader(writer.bytes)
        #expect(try reader.readValue() == value)
        #expect(reader.isAtEnd)
        #expect(try MessagePackReader.lengthOfFirstValue(in: writer.bytes[...]) == writer.bytes.count)
    }

    @Test func reportsTruncationAtEveryCut() throws {
        var writer = MessagePackWriter()
        let value: MessagePackValue = ["tag", .binary([1, 2, 3, 4]), ["size": 1, "chunk": "abc"]]
        value.write(into: &writer)
        for cut in 0..<writer.bytes.count {
            #expect(try MessagePackReader.lengthOfFirstValue(in: writer.bytes[0..<cut]) == nil, "cut at \(cut)")
            var reader = MessagePackReader(writer.bytes[0..<cut])
            #expect(throws: MessagePackError.self) { _ = try reader.readValue() }
        }
    }

    @Test func refusesReservedByteAndInvalidUTF8() {
        var reader = MessagePackReader([0x91, 0xC1])
        #expect(errorCode { _ = try reader.readValue() } == .reservedByte)
        reader = MessagePackReader([0xA2, 0xC3, 0x28])
        #expect(errorCode { _ = try reader.readValue() } == .invalidUTF8)
        #expect(errorCode { _ = try MessagePackReader.lengthOfFirstValue(in: [0xC1][...]) } == .reservedByte)
    }

    @Test func refusesWrongTypesWithOffsets() {
        var reader = MessagePackReader([0x92, 0x01, 0xA1, 0x61])
        #expect(throws: Never.self) { _ = try reader.readArrayHeader() }
        let error = #expect(throws: MessagePackError.self) { _ = try reader.readString() }
        #expect(error?.code == .typeMismatch)
        #expect(error?.offset == 1)
    }

    @Test func refusesHugeCountsWithoutAllocating() {
        // An array32 header claiming 4 billion elements, followed by nothing.
        var reader = MessagePackReader([0xDD, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(errorCode { _ = try reader.readValue() } == .truncated)
    }

    @Test func limitsNesting() throws {
        let bytes = [UInt8](repeating: 0x91, count: 100) + [0xC0]
        var reader = MessagePackReader(bytes)
        #expect(errorCode { _ = try reader.readValue() } == .tooDeep)
        // Skipping needs no stack, so framing still finds the value's end.
        #expect(try MessagePackReader.lengthOfFirstValue(in: bytes[...]) == bytes.count)
    }

    @Test func readsEventTimeForms() throws {
        // fixext8, ext8 and integer seconds.
        var reader = MessagePackReader(
            [0xD7, 0x00, 0x65, 0x53, 0xF1, 0x00, 0x00, 0x00, 0x00, 0x05]
                + [0xC7, 0x08, 0x00, 0x65, 0x53, 0xF1, 0x00, 0x3B, 0x9A, 0xC9, 0xFF] + [0xCE, 0x65, 0x53, 0xF1, 0x00]
        )
        #expect(try reader.readEventTime() == EventTime(seconds: 1_700_000_000, nanoseconds: 5))
        #expect(try reader.readEventTime() == EventTime(seconds: 1_700_000_000, nanoseconds: 999_999_999))
        #expect(try reader.readEventTime() == EventTime(seconds: 1_700_000_000))
    }

    @Test func refusesTimestampExtensionMinusOne() {
        // The msgpack Timestamp (ext −1), which fluentd rejects with a connection reset.
        for bytes: [UInt8] in [
            [0xD6, 0xFF, 0x65, 0x53, 0xF1, 0x00], [0xD7, 0xFF, 0, 0, 0, 0, 0x65, 0x53, 0xF1, 0x00],
            [0xC7, 0x0C, 0xFF] + [UInt8](repeating: 0, count: 12),
        ] {
            var reader = MessagePackReader(bytes)
            #expect(errorCode { _ = try reader.readEventTime() } == .invalidValue)
        }
        var float = MessagePackReader([0xCB] + [UInt8](repeating: 0, count: 8))
        #expect(errorCode { _ = try float.readEventTime() } == .typeMismatch)
    }

    @Test func eventTimeFromJournalMicroseconds() {
        let time = EventTime(microseconds: 1_700_000_000_123_456)
        #expect(time == EventTime(seconds: 1_700_000_000, nanoseconds: 123_456_000))
        #expect(time.description == "1700000000.123456000")
    }
}

/// The code of the MessagePackError `body` throws, nil if it throws nothing or something else.
private func errorCode(_ body: () throws -> Void) -> MessagePackError.Code? {
    do {
        try body()
        return nil
    } catch {
        return (error as? MessagePackError)?.code
    }
}
