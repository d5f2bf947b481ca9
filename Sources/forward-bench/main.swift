import Logging
import VigilForward
import VigilForwardTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// forward-bench: how fast ForwardOutput delivers journal-like batches to the strict receiver over
/// loopback (acks awaited), and how fast the in-project SHA-512 hashes. Run it from a release build:
/// `swift run -c release forward-bench [--batches N] [--records M] [--window K] [--port P]`.
var batchCount = 200
var recordsPerBatch = 1000
var window = 4
var port = 21480
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst().flatMap({ Int($0) }), value > 0 else {
        print("usage: forward-bench [--batches N] [--records M] [--window K] [--port P]")
        exit(2)
    }
    switch flag {
    case "--batches": batchCount = value
    case "--records": recordsPerBatch = value
    case "--window": window = value
    case "--port": port = value
    default:
        print("unknown flag \(flag)")
        exit(2)
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func format(_ value: Double) -> String {
    String(Double(Int(value * 10)) / 10)
}

// SHA-512 (chunk ids from content, handshake digests).
let block = [UInt8](repeating: 0x5A, count: 1 << 20)
let clock = ContinuousClock()
let hashed = clock.measure {
    var hasher = SHA512()
    for _ in 0..<32 { hasher.update(block) }
    _ = hasher.finalize()
}
print("sha512: \(format(32 / seconds(hashed))) MB/s")

// Journal-like records: a dozen fields, ~450 bytes each.
func makeBatch(_ index: Int, records recordsPerBatch: Int) -> ForwardBatch {
    var writer = MessagePackWriter(capacity: recordsPerBatch * 512)
    for record in 0..<recordsPerBatch {
        writer.writeArrayHeader(2)
        writer.writeEventTime(EventTime(microseconds: 1_700_000_000_000_000 + UInt64(index * recordsPerBatch + record)))
        let fields: [(String, String)] = [
            ("MESSAGE", "request \(record) of batch \(index) served in 3 ms, status 200, 5120 bytes"),
            ("PRIORITY", "6"), ("SYSLOG_IDENTIFIER", "nginx"), ("_PID", "1234"), ("_UID", "33"), ("_GID", "33"),
            ("_COMM", "nginx"), ("_EXE", "/usr/sbin/nginx"), ("_SYSTEMD_UNIT", "nginx.service"),
            ("_HOSTNAME", "node-17.example.org"), ("_TRANSPORT", "stdout"),
            ("_BOOT_ID", "0b5c7a34e1a94f0c9b5d6f27c3a8e901"),
        ]
        writer.writeMapHeader(fields.count)
        for (key, value) in fields {
            writer.writeString(key)
            writer.writeString(value)
        }
    }
    return ForwardBatch(tag: "journal.nginx.service", entries: writer.bytes, count: recordsPerBatch)
}

let batches = (0..<batchCount).map { makeBatch($0, records: recordsPerBatch) }
let totalBytes = batches.reduce(0) { $0 + $1.entries.count }
print(
    "\(batchCount) batches × \(recordsPerBatch) records, \(format(Double(totalBytes) / Double(batchCount) / 1024)) KiB each, window \(window)"
)

for compression in [ForwardConfiguration.Compression.text, .gzip] {
    let receiver = try await ForwardReceiver.start(.init(port: port, recordEvents: false))
    var logger = Logger(label: "forward-bench")
    logger.logLevel = .warning
    let output = try ForwardOutput(
        configuration: ForwardConfiguration(
            targets: [.init(host: "127.0.0.1", port: receiver.port)],
            compression: compression,
            maxBatchBytes: 64 << 20
        ),
        logger: logger
    )
    let elapsed = try await clock.measure {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            while next < min(window, batches.count) {
                let batch = batches[next]
                group.addTask { try await output.deliver(batch) }
                next += 1
            }
            while try await group.next() != nil, next < batches.count {
                let batch = batches[next]
                group.addTask { try await output.deliver(batch) }
                next += 1
            }
            try await group.waitForAll()
        }
    }
    let snapshot = receiver.snapshot
    let rate = Double(batchCount * recordsPerBatch) / seconds(elapsed)
    print(
        "\(compression): \(format(rate / 1000))k records/s, \(format(Double(totalBytes) / seconds(elapsed) / 1_048_576)) MiB/s of entries, \(snapshot.byteCount / 1024) KiB on the wire, \(snapshot.requestCount) requests, \(snapshot.duplicateRequests) duplicates, \(snapshot.protocolErrors.count) protocol errors"
    )
    output.closeIdleConnections()
    await receiver.stop()
}
