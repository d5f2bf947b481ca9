import Foundation
import Logging
import Synchronization
import VigilForward
import VigilForwardTestSupport

/// This suite's TCP ports: 21400–21499, handed out once each per test process.
private let portCounter = Atomic<Int>(21400)

func nextPort() -> Int {
    let port = portCounter.add(1, ordering: .relaxed).oldValue
    precondition(port < 21500, "out of test ports")
    return port
}

/// A batch of `count` journal-like events with a content-derived chunk id.
func makeBatch(tag: String = "journal.test", count: Int = 3, seed: Int = 0) -> (ForwardBatch, [ReceivedEvent]) {
    var writer = MessagePackWriter()
    var events: [ReceivedEvent] = []
    for index in 0..<count {
        let time = EventTime(seconds: 1_700_000_000 + UInt32(seed), nanoseconds: UInt32(index * 1000 + 7))
        let record: MessagePackValue = [
            "MESSAGE": .string("message \(index) of batch \(seed)"), "_PID": "4242", "PRIORITY": "6",
        ]
        writer.writeArrayHeader(2)
        writer.writeEventTime(time)
        record.write(into: &writer)
        events.append(ReceivedEvent(tag: tag, time: time, record: record))
    }
    return (ForwardBatch(tag: tag, entries: writer.bytes, count: count), events)
}

/// Forward settings with short timeouts so that failure paths run in a test's time.
func testConfiguration(
    _ targets: [ForwardConfiguration.Target],
    ackTimeout: Duration = .seconds(2),
    configure: (inout ForwardConfiguration) -> Void = { _ in }
) -> ForwardConfiguration {
    var configuration = ForwardConfiguration(
        targets: targets,
        selfHostname: "vigil-test-client",
        ackTimeout: ackTimeout,
        connectTimeout: .seconds(2),
        heartbeatInterval: .milliseconds(50),
        hardTimeout: .seconds(10),
        recoverWait: .milliseconds(200),
        retryWait: .milliseconds(50),
        maxRetryWait: .milliseconds(400)
    )
    configure(&configuration)
    return configuration
}

func target(_ receiver: ForwardReceiver, weight: Int = 60, standby: Bool = false) -> ForwardConfiguration.Target {
    ForwardConfiguration.Target(host: "127.0.0.1", port: receiver.port, weight: weight, standby: standby)
}

func startReceiver(
    _ configure: (inout ForwardReceiver.Configuration) -> Void = { _ in }
) async throws -> ForwardReceiver {
    var configuration = ForwardReceiver.Configuration(port: nextPort())
    configure(&configuration)
    return try await ForwardReceiver.start(configuration)
}

/// Log lines captured for assertions.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var messages: [String] { self.lines.withLock { $0 } }

    func contains(_ text: String) -> Bool { self.messages.contains { $0.contains(text) } }

    var logger: Logger {
        Logger(label: "vigil.forward.test") { _ in Handler(capture: self) }
    }

    fileprivate func append(_ line: String) { self.lines.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            self.capture.append("\(event.level): \(event.message)")
        }
    }
}

/// Waits for `condition`, polling; returns whether it held before `timeout`.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// A CA, a server certificate it signed (for localhost and 127.0.0.1), and an unrelated self-signed
/// certificate for the same names, made once per test process with the `openssl` command.
struct TestCertificates: Sendable {
    let directory: String
    var caFile: String { self.directory + "/ca.pem" }
    var serverCertificate: String { self.directory + "/server.pem" }
    var serverKey: String { self.directory + "/server.key" }
    var untrustedCertificate: String { self.directory + "/untrusted.pem" }
    var untrustedKey: String { self.directory + "/untrusted.key" }

    static let shared: Result<TestCertificates, any Error> = Result { try TestCertificates.make() }

    private static func make() throws -> TestCertificates {
        // One directory per test process; those of processes that have ended are removed.
        let prefix = "vigil-fwd-certs-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix(prefix) {
            if let pid = Int32(name.dropFirst(prefix.count)), kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: "/tmp/" + name)
            }
        }
        let directory = "/tmp/\(prefix)\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        let names = "subjectAltName=DNS:localhost,IP:127.0.0.1"
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vigil test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
            in: directory
        )
        try openssl(
            ["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
            in: directory
        )
        try "\(names)\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            .write(toFile: directory + "/server.ext", atomically: true, encoding: .utf8)
        try openssl(
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
            ],
            in: directory
        )
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", "untrusted.key", "-out", "untrusted.pem", "-days", "2", "-subj", "/CN=localhost",
                "-addext", names,
            ],
            in: directory
        )
        return TestCertificates(directory: directory)
    }

    private static func openssl(_ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw CertificateError(description: "openssl \(arguments.joined(separator: " ")) failed: \(message)")
        }
    }

    struct CertificateError: Error, CustomStringConvertible {
        let description: String
    }
}
