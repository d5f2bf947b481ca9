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
