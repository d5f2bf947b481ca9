import Foundation
import Logging
import Synchronization
import VigilCore
import VigilForward
import VigilJournal

/// A temporary directory under /tmp (`/tmp/vigil-journal-test-…`), removed by `with`.
struct TemporaryDirectory {
    let path: String

    static func with<T>(_ body: (TemporaryDirectory) async throws -> T) async throws -> T {
        let path = "/tmp/vigil-journal-test-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(TemporaryDirectory(path: path))
    }

    func file(_ name: String) -> String { "\(self.path)/\(name)" }
}

/// This suite's TCP ports: 19700–19799, handed out once each per test process.
private let portCounter = Atomic<Int>(19700)

func nextPort() -> Int {
    let port = portCounter.add(1, ordering: .relaxed).oldValue
    precondition(port < 19800, "out of test ports")
    return port
}

/// A logger for tests: warnings and worse on standard error.
let testLogger: Logger = {
    var logger = Logger(label: "vigil-test") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .warning
    return logger
}()

/// A logger that keeps every message, for tests that check what vigil says.
final class RecordingLogHandler: LogHandler, @unchecked Sendable {
    // @unchecked: `messages` is guarded by `lock`.
    private let lock = NSLock()
    private var recorded: [(Logger.Level, String)] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var text = "\(event.message)"
        for (key, value) in (event.metadata ?? [:]).sorted(by: { $0.key < $1.key }) { text += " \(key)=\(value)" }
        self.lock.withLock { self.recorded.append((event.level, text)) }
    }

    var messages: [(level: Logger.Level, text: String)] { self.lock.withLock { self.recorded } }

    func contains(_ level: Logger.Level, _ fragment: String) -> Bool {
        self.messages.contains { $0.level == level && $0.text.contains(fragment) }
    }

    static func logger() -> (Logger, RecordingLogHandler) {
        let handler = RecordingLogHandler()
        return (Logger(label: "vigil-test") { _ in handler }, handler)
    }
}

/// Reads batches until `count` events have come (or `timeout` passes), on a thread of its own.
func readEvents(
    _ reader: JournalReader,
    count: Int,
    timeout: Duration = .seconds(20)
) async throws -> (events: [Event], batches: [JournalBatch]) {
    let stop = StopSignal()
    let stopper = Task {
        try? await Task.sleep(for: timeout)
        stop.stop()
    }
    defer { stopper.cancel() }
    var batches: [JournalBatch] = []
    var events: [Event] = []
    while events.count < count {
        let batch = await blocking { reader.nextBatch(stop: stop) }
        guard let batch else { break }
        batches.append(batch)
        events += try decodeEvents(batch.entries)
    }
    return (events, batches)
}

/// Runs blocking work on a pool thread, never on Swift's cooperative pool (a blocked cooperative thread
/// would stall the tests running beside it).
func blocking<T: Sendable>(_ job: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        BlockingPool.shared.submit { continuation.resume(returning: job()) }
    }
}

/// A journal reader over a namespace (or another source), opened at `saved`.
func makeReader(
    _ configuration: JournalConfiguration,
    saved: CursorStore.Loaded = .missing,
    maxBatchBytes: Int = 1_024_000,
    metrics: JournalMetrics? = nil,
    logger: Logger = testLogger
) throws -> (JournalReader, JournalMetrics) {
    let metrics = metrics ?? JournalMetrics(window: configuration.window)
    let reader = try JournalReader(
        configuration: configuration,
        maxBatchBytes: maxBatchBytes,
        metrics: metrics,
        logger: logger
    )
    try reader.open(saved: saved)
    return (reader, metrics)
}

/// Writes journal files with systemd-journal-remote from entries in export form, so that tests can have
/// fields journald would not take from a client (`_SYSTEMD_UNIT`) and exact timestamps.
func makeJournalFile(at path: String, entries: [[(String, String)]]) throws {
    var export: [UInt8] = []
    for (index, entry) in entries.enumerated() {
        var fields = entry
        if !fields.contains(where: { $0.0 == "__REALTIME_TIMESTAMP" }) {
            fields.insert(("__REALTIME_TIMESTAMP", "\(1_700_000_000_000_000 + index * 1_000_001)"), at: 0)
        }
        if !fields.contains(where: { $0.0 == "__MONOTONIC_TIMESTAMP" }) {
            fields.insert(("__MONOTONIC_TIMESTAMP", "\(1000 + index)"), at: 1)
        }
        if !fields.contains(where: { $0.0 == "_BOOT_ID" }) {
            fields.append(("_BOOT_ID", "f3070d0cdeee48ca8c86c4f77cf925ec"))
        }
        for (name, value) in fields { export += Array("\(name)=\(value)\n".utf8) }
        export.append(0x0A)
    }
    try run("/lib/systemd/systemd-journal-remote", ["-o", path, "-"], input: export)
}

/// A sink that records what it is given and acknowledges it at once.
final class CollectingSink: BatchSink, @unchecked Sendable {
    // @unchecked: `received` is guarded by `lock`.
    private let lock = NSLock()
    private var received: [ForwardBatch] = []

    func deliver(_ batch: ForwardBatch) async throws {
        self.lock.withLock { self.received.append(batch) }
    }

    var batches: [ForwardBatch] { self.lock.withLock { self.received } }

    func events() throws -> [Event] { try self.batches.flatMap { try decodeEvents($0.entries) } }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}

extension Atomic where Value == Int {
    var loadRelaxed: Int { self.load(ordering: .relaxed) }
}
