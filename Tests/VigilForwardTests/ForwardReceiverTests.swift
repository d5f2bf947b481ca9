import Foundation
import Testing
import VigilCore
import VigilForward
import VigilForwardTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The strict receiver is the oracle of the forwarder's tests: it must accept every mode of the spec and
/// refuse what fluentd refuses.
@Suite struct ForwardReceiverTests {
    @Test func acceptsEveryModeAndAcksByteForByte() async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        let client = try RawClient(port: receiver.port)
        defer { client.close() }
        let time = EventTime(seconds: 1_700_000_000, nanoseconds: 5)
        let record: MessagePackValue = ["a": "b"]

        // Message with an option, Forward, PackedForward as str (fluentd's str32 form), and a heartbeat.
        var writer = MessagePackWriter()
        writer.writeNil()
        let message: MessagePackValue = [
            "tag.message", .extension(type: 0, data: [0x65, 0x53, 0xF1, 0, 0, 0, 0, 5]), record,
            ["chunk": "bWVzc2FnZQ==\n"],
        ]
        message.write(into: &writer)
        let forward: MessagePackValue = [
            "tag.forward", [[1_700_000_000, record]], ["size": 1, "chunk": "Zm9yd2FyZA=="],
        ]
        forward.write(into: &writer)
        var entries = MessagePackWriter()
        entries.writeArrayHeader(2)
        entries.writeEventTime(time)
        record.write(into: &entries)
        writer.writeArrayHeader(3)
        writer.writeString("tag.packed")
        writer.bytes += [0xDB, 0, 0, 0, UInt8(entries.bytes.count)] + entries.bytes
        let option: MessagePackValue = ["size": 1, "chunk": "cGFja2Vk", "compressed": "text"]
        option.write(into: &writer)
        try client.send(writer.bytes)

        for chunk in ["bWVzc2FnZQ==\n", "Zm9yd2FyZA==", "cGFja2Vk"] {
            var expected = MessagePackWriter()
            (["ack": .string(chunk)] as MessagePackValue).write(into: &expected)
            #expect(try client.receive(count: expected.bytes.count) == expected.bytes)
        }
        let snapshot = receiver.snapshot
        #expect(snapshot.protocolErrors.isEmpty)
        #expect(snapshot.requests.map(\.mode) == [.message, .forward, .packedForward])
        #expect(snapshot.events.map(\.tag) == ["tag.message", "tag.forward", "tag.packed"])
        #expect(snapshot.events.map(\.time) == [time, EventTime(seconds: 1_700_000_000), time])
        #expect(snapshot.events.allSatisfy { $0.record == record })
    }

    /// Requests fluentd refuses or a strict reading of the spec forbids; each carries a chunk, so an ack
    /// would be owed if it were accepted.
    static let violations: [(String, [UInt8])] = {
        let chunk: [UInt8] = [0x81, 0xA5] + Array("chunk".utf8) + [0xA1, 0x78]
        let size2: [UInt8] = [0x82, 0xA4] + Array("size".utf8) + [0x02, 0xA5] + Array("chunk".utf8) + [0xA1, 0x78]
        let gzip: [UInt8] = [0x81, 0xAA] + Array("compressed".utf8) + [0xA4] + Array("gzip".utf8)
        var cases: [(String, [UInt8])] = []
        // Timestamp ext −1 (fixext4): fluentd resets the connection.
        cases.append(
            ("ext -1", [0x93, 0xA1, 0x74, 0xC4, 0x08, 0x92, 0xD6, 0xFF, 0x65, 0x53, 0xF1, 0x00, 0x80] + chunk)
        )
        cases.append(("record not a map", [0x93, 0xA1, 0x74, 0xC4, 0x03, 0x92, 0x01, 0x01] + chunk))
        cases.append(("float time", [0x94, 0xA1, 0x74, 0xCB, 0, 0, 0, 0, 0, 0, 0, 0, 0x80] + chunk))
        cases.append(("not an array", [0x81, 0xA1, 0x61, 0x01]))
        cases.append(("size mismatch", [0x93, 0xA1, 0x74, 0xC4, 0x03, 0x92, 0x01, 0x80] + size2))
        cases.append(("gzip as str", [0x93, 0xA1, 0x74, 0xA3, 0x01, 0x02, 0x03] + gzip))
        return cases
    }()

    @Test(arguments: Self.violations)
    func refusesProtocolViolationsWithoutAck(_ name: String, _ bytes: [UInt8]) async throws {
        let receiver = try await startReceiver()
        defer { Task { await receiver.stop() } }
        let client = try RawClient(port: receiver.port)
        defer { client.close() }
        try client.send(bytes)
        // The connection is closed without an ack.
        #expect(try client.receive(count: 1).isEmpty, "\(name)")
        #expect(receiver.snapshot.protocolErrors.count == 1, "\(name)")
        #expect(receiver.snapshot.requests.isEmpty, "\(name)")
    }
}

/// A blocking TCP client on loopback, for speaking raw bytes to the receiver.
private final class RawClient {
    private let descriptor: Int32

    init(port: Int) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw POSIXError(.EIO) }
    }

    /// Reads `count` bytes, fewer if the server closes the connection first.
    func receive(count: Int) throws -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        while received.count < count {
            let n = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, count - received.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw POSIXError(.ETIMEDOUT) }
            received += buffer[0..<n]
        }
        return received
    }

    func close() {
        Glibc.close(self.descriptor)
    }
}
