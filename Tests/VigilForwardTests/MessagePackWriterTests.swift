import Testing
import VigilForward

@Suite struct MessagePackWriterTests {
    @Test func encodesTheReferenceEntryByteForByte() {
        // [EventTime(1700000000, 5), {"a": "b"}] from the forward protocol reference.
        var writer = MessagePackWriter()
        writer.writeArrayHeader(2)
        writer.writeEventTime(seconds: 1_700_000_000, nanoseconds: 5)
        writer.writeMapHeader(1)
        writer.writeString("a")
        writer.writeString("b")
        #expect(
            writer.bytes == [
                0x92, 0xD7, 0x00, 0x65, 0x53, 0xF1, 0x00, 0x00, 0x00, 0x00, 0x05, 0x81, 0xA1, 0x61, 0xA1, 0x62,
            ]
        )
    }

    @Test(
        arguments: [
            (Int64(0), [UInt8]([0x00])), (127, [0x7F]), (128, [0xCC, 0x80]), (256, [0xCD, 0x01, 0x00]),
            (65536, [0xCE, 0x00, 0x01, 0x00, 0x00]), (-1, [0xFF]), (-32, [0xE0]), (-33, [0xD0, 0xDF]),
            (-129, [0xD1, 0xFF, 0x7F]), (4_294_967_296, [0xCF, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] as [(Int64, [UInt8])]
    )
    func encodesIntegersCompactly(_ value: Int64, _ expected: [UInt8]) {
        var writer = MessagePackWriter()
        writer.writeInt(value)
        #expect(writer.bytes == expected)
    }

    @Test func encodesStringAndBinaryLengths() {
        var writer = MessagePackWriter()
        writer.writeString(String(repeating: "x", count: 31))
        #expect(writer.bytes.first == 0xBF)
        writer = MessagePackWriter()
        writer.writeString(String(repeating: "x", count: 32))
        #expect(writer.bytes.prefix(2) == [0xD9, 32])
        writer = MessagePackWriter()
        writer.writeBinary([UInt8](repeating: 1, count: 70000))
        #expect(writer.bytes.prefix(5) == [0xC6, 0x00, 0x01, 0x11, 0x70])
    }

    @Test func base64MatchesRFC4648() {
        #expect(base64Encode(Array("".utf8)) == "")
        #expect(base64Encode(Array("f".utf8)) == "Zg==")
        #expect(base64Encode(Array("fo".utf8)) == "Zm8=")
        #expect(base64Encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(base64Encode([UInt8](repeating: 0, count: 16)) == "AAAAAAAAAAAAAAAAAAAAAA==")
    }
}
