import Testing
import VigilCore
import VigilForward
import VigilForwardTestSupport

@Suite struct ForwardFrameTests {
    /// `[EventTime(1700000000, 5), {"a": "b"}]`, the reference's example entry (§3).
    static let referenceEntry: [UInt8] = [
        0x92, 0xD7, 0x00, 0x65, 0x53, 0xF1, 0x00, 0x00, 0x00, 0x00, 0x05, 0x81, 0xA1, 0x61, 0xA1, 0x62,
    ]

    @Test func packedForwardMatchesTheReferenceExample() {
        let batch = ForwardBatch(tag: "t", entries: Self.referenceEntry, count: 1, chunkID: "AAAAAAAAAAAAAAAAAAAAAA==")
        let expected: [UInt8] =
            [0x93, 0xA1, 0x74, 0xC4, 0x10] + Self.referenceEntry
            + [0x82, 0xA4, 0x73, 0x69, 0x7A, 0x65, 0x01, 0xA5, 0x63, 0x68, 0x75, 0x6E, 0x6B, 0xB8]
            + Array("AAAAAAAAAAAAAAAAAAAAAA==".utf8)
        #expect(ForwardFrame.encode(batch, compression: .text) == expected)
    }

    @Test func compressedPackedForwardCarriesTheSameEvents() throws {
        let batch = ForwardBatch(tag: "journal.test", entries: Self.referenceEntry + Self.referenceEntry, count: 2)
        let frame = ForwardFrame.encode(batch, compression: .gzip)
        // [tag, bin(gzip), {"size": 2, "chunk": id, "compressed": "gzip"}]
        var reader = MessagePackReader(frame)
        #expect(try reader.readArrayHeader() == 3)
        #expect(try reader.readString() == "journal.test")
        #expect(try reader.peekType() == .binary)
        let gzipped = try reader.readStringOrBinary()
        #expect(gzipped.prefix(2) == [0x1F, 0x8B])
        #expect(try Gzip.decompress(Array(gzipped)) == batch.entries)
        #expect(try reader.readValue() == ["size": 2, "chunk": .string(batch.chunkID), "compressed": "gzip"])
        #expect(reader.isAtEnd)

        let plain = try ForwardRequestParser.parse(ForwardFrame.encode(batch, compression: .text)[...])
        let compressed = try ForwardRequestParser.parse(frame[...])
        #expect(plain.mode == .packedForward)
        #expect(compressed.mode == .compressedPackedForward)
        #expect(compressed.events == plain.events)
        #expect(
            plain.events.first
                == ReceivedEvent(
                    tag: "journal.test",
                    time: EventTime(seconds: 1_700_000_000, nanoseconds: 5),
                    record: ["a": "b"]
                )
        )
    }

    @Test func contentChunkIDIsStableAndStrictBase64() {
        let first = ForwardBatch(tag: "t", entries: Self.referenceEntry, count: 1)
        let again = ForwardBatch(tag: "t", entries: Self.referenceEntry, count: 1)
        let otherTag = ForwardBatch(tag: "u", entries: Self.referenceEntry, count: 1)
        #expect(first.chunkID == again.chunkID)
        #expect(first.chunkID != otherTag.chunkID)
        #expect(first.chunkID.utf8.count == 24)
        #expect(first.chunkID.hasSuffix("=="))
        #expect(!first.chunkID.contains("\n"))
    }

    /// Digests against values computed independently (Python's hashlib) for the same inputs.
    @Test func handshakeDigestsMatchIndependentComputation() {
        let salt = Array("0123456789abcdef0123456789abcdef".utf8)
        let nonce = (0..<16).map { UInt8($0) }
        #expect(
            ForwardHandshake.sharedKeyDigest(salt: salt, hostname: "client.example", nonce: nonce, sharedKey: "secret")
                == "3a680037d3979b4f789647cd22e7e55f2197791eb498799823c424e2213124ed63938d1c422f50e08ec02957ef44df338e46c77e8ea164b0dde6d64e171b30df"
        )
        #expect(
            ForwardHandshake.passwordDigest(
                auth: (16..<32).map { UInt8($0) },
                username: "alice",
                password: "wonderland"
            )
                == "1daaa509348956e57b66eac22905c8523d4cae77ae602b745834b30762d493440eaacaf99aba596782a998527ac292460787abde8b7f028b7b83f4cb9f9af932"
        )
    }

    @Test func heloMatchesFluentdBytes() throws {
        let helo = ForwardHandshake.Helo(
            nonce: [UInt8](repeating: 1, count: 16),
            auth: [UInt8](repeating: 2, count: 16),
            keepalive: true
        )
        let bytes = ForwardHandshake.encode(helo)
        // 92 A4 "HELO" 83 A5 "nonce" C4 10 <16> A4 "auth" C4 10 <16> A9 "keepalive" C3
        let expected: [UInt8] =
            [0x92, 0xA4] + Array("HELO".utf8) + [0x83, 0xA5] + Array("nonce".utf8) + [0xC4, 0x10] + helo.nonce + [0xA4]
            + Array("auth".utf8) + [0xC4, 0x10] + helo.auth + [0xA9] + Array("keepalive".utf8) + [0xC3]
        #expect(bytes == expected)
        var reader = MessagePackReader(bytes)
        #expect(try ForwardHandshake.helo(from: reader.readValue()) == helo)
    }

    @Test func pongVerificationIsMutual() throws {
        let helo = ForwardHandshake.Helo(nonce: Array("nonce-nonce-1234".utf8), auth: [], keepalive: true)
        let salt = Array("salt".utf8)
        func pong(_ hostname: String, key: String, ok: Bool = true) -> ForwardHandshake.Pong {
            ForwardHandshake.Pong(
                authenticated: ok,
                reason: ok ? "" : "shared_key mismatch",
                serverHostname: hostname,
                sharedKeyDigest: ForwardHandshake.sharedKeyDigest(
                    salt: salt,
                    hostname: hostname,
                    nonce: helo.nonce,
                    sharedKey: key
                )
            )
        }
        func verify(_ pong: ForwardHandshake.Pong) -> String? {
            do {
                try ForwardHandshake.verify(pong, helo: helo, salt: salt, selfHostname: "me", sharedKey: "k")
                return nil
            } catch {
                return error.message
            }
        }
        #expect(verify(pong("server", key: "k")) == nil)
        #expect(verify(pong("server", key: "other"))?.contains("digest mismatch") == true)
        #expect(verify(pong("me", key: "k"))?.contains("same hostname") == true)
        #expect(verify(pong("server", key: "k", ok: false)) == "shared_key mismatch")
    }
}
