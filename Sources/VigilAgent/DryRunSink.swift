import VigilCore
import VigilForward

#if canImport(Glibc)
import Glibc
#endif

/// The dry run's sink: prints every record the forwarder would send as one JSON line on standard output
/// and acknowledges at once, for people setting up filters and tags.
///
/// A line is `{"tag":…,"time":SECONDS.NANOSECONDS,"record":{…}}`; a repeated field is an array; a value
/// that is not UTF-8 (sent as msgpack `bin`) is `{"base64":"…"}`.
struct DryRunSink: BatchSink {
    private let pool: BlockingPool
    private let output: Int32

    init(pool: BlockingPool = .shared, output: Int32 = 1) {
        self.pool = pool
        self.output = output
    }

    func deliver(_ batch: ForwardBatch) async throws {
        let text = Self.render(batch)
        let output = self.output
        // Standard output may be a pipe that blocks: write off the cooperative pool.
        await withCheckedContinuation { continuation in
            self.pool.submit {
                writeAll(output, text)
                continuation.resume()
            }
        }
    }

    /// The JSON lines for a batch.
    static func render(_ batch: ForwardBatch) -> [UInt8] {
        var text = ""
        var reader = MessagePackReader(batch.entries)
        while !reader.isAtEnd {
            guard case .array(let event) = try? reader.readValue(), event.count == 2 else {
                text += "{\"tag\":\(jsonString(batch.tag)),\"error\":\"undecodable entry\"}\n"
                break
            }
            text += "{\"tag\":\(jsonString(batch.tag)),\"time\":\(jsonTime(event[0])),\"record\":\(json(event[1]))}\n"
        }
        return Array(text.utf8)
    }
}

private func jsonTime(_ value: MessagePackValue) -> String {
    guard case .extension(0, let data) = value, data.count == 8 else { return "null" }
    let seconds = data[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    let nanoseconds = data[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    let fraction = String(nanoseconds)
    return "\(seconds).\(String(repeating: "0", count: 9 - fraction.count))\(fraction)"
}

private func json(_ value: MessagePackValue) -> String {
    switch value {
    case .string(let text): return jsonString(text)
    case .binary(let bytes): return "{\"base64\":\"\(base64Encode(bytes))\"}"
    case .array(let values): return "[" + values.map(json).joined(separator: ",") + "]"
    case .map(let entries):
        return "{" + entries.map { "\(json($0.key)):\(json($0.value))" }.joined(separator: ",") + "}"
    case .int(let number): return "\(number)"
    case .uint(let number): return "\(number)"
    case .bool(let flag): return "\(flag)"
    default: return "null"
    }
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
