import Foundation
import Logging
import ServiceLifecycle
import Testing
import VigilForward

@testable import VigilJournal

/// The pipeline against a real journald, with a test double for the sink interface that acknowledges
/// batches when and in the order the test says.
@Suite struct LogPipelineTests {
    private func configuration(
        _ journald: Journald,
        run: String,
        cursorFile: String,
        maxEntries: Int = 10,
        window: Int = 4
    ) -> JournalConfiguration {
        JournalConfiguration(
            source: .namespace(journald.namespace),
            matches: ["VIGIL_RUN=\(run)"],
            cursorFile: cursorFile,
            // Batches end on their count (a long wait, so that a slow machine does not cut them shorter).
            batching: .init(maxEntries: maxEntries, maxWait: .seconds(2)),
            window: window,
            commitInterval: .milliseconds(10),
            shutdownGrace: .milliseconds(500)
        )
    }

    private func write(_ journald: Journald, run: String, _ range: Range<Int>) async throws -> [ExportedEntry] {
        for index in range { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
        return try await journald.waitForEntries(range.upperBound, matching: ["VIGIL_RUN=\(run)"])
    }

    @Test func commitsTheCursorOnlyOverAcknowledgedBatchesInOrder() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let exported = try await self.write(journald, run: run, 0..<30)
                let cursorFile = directory.file("state/journal.cursor")
                let sink = ControlledSink()
                let pipeline = try LogPipeline(
                    configuration: self.configuration(journald, run: run, cursorFile: cursorFile),
                    sink: sink,
                    maxBatchBytes: 1_024_000,
                    logger: testLogger
                )
                try await withRunningPipeline(pipeline) {
                    #expect(await eventually { sink.count == 3 })
                    #expect(try sink.events(0).compactMap { $0.text("MESSAGE") } == (0..<10).map { "m\($0)" })

                    sink.ack(1)
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(!FileManager.default.fileExists(atPath: cursorFile), "saved before batch 0 was acked")

                    sink.ack(0)
                    #expect(await eventually { CursorStore(path: cursorFile).load() == .cursor(exported[19].cursor) })

                    sink.ack(2)
                    #expect(await eventually { CursorStore(path: cursorFile).load() == .cursor(exported[29].cursor) })
                }
                #expect(pipeline.metrics.batchesAcked.loadRelaxed == 3)
                #expect(pipeline.metrics.entriesAcked.loadRelaxed == 30)
                #expect(pipeline.metrics.batchesInFlight.loadRelaxed == 0)
                #expect(pipeline.metrics.cursorCommits.loadRelaxed >= 2)
            }
        }
    }

    @Test func aSinkThatNeverAcknowledgesStopsTheReader() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                _ = try await self.write(journald, run: run, 0..<200)
                let sink = ControlledSink()
                let pipeline = try LogPipeline(
                    configuration: self.configuration(
                        journald,
                        run: run,
                        cursorFile: directory.file("journal.cursor"),
                        maxEntries: 5,
                        window: 2
                    ),
                    sink: sink,
                    maxBatchBytes: 1_024_000,
                    logger: testLogger
                )
                let metrics = pipeline.metrics
                try await withRunningPipeline(pipeline) {
                    #expect(await eventually { sink.count == 2 })
                    try await Task.sleep(for: .milliseconds(500))
                    // Two batches of five in flight, and not one entry more read.
                    #expect(sink.count == 2)
                    #expect(metrics.entriesRead.loadRelaxed == 10)
                    #expect(metrics.readingPaused.loadRelaxed == 1)
                    #expect(metrics.batchesInFlight.loadRelaxed == 2)

                    // Acks return: reading resumes and everything arrives once. (Batches in flight together
                    // may reach the sink in either order: each is delivered by a task of its own.)
                    sink.acknowledgeEverything()
                    #expect(await eventually { sink.totalEntries == 200 })
                    #expect(metrics.readingPaused.loadRelaxed == 0)
                    let messages = try sink.allEvents().compactMap { $0.text("MESSAGE") }
                    #expect(messages.count == 200)
                    #expect(Set(messages) == Set((0..<200).map { "m\($0)" }))
                }
            }
        }
    }

    @Test func shutdownWaitsForAcksInGraceThenCommitsAndTheNextStartResumes() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let exported = try await self.write(journald, run: run, 0..<20)
                let cursorFile = directory.file("journal.cursor")
                let configuration = self.configuration(journald, run: run, cursorFile: cursorFile)
                let sink = ControlledSink()
                let pipeline = try LogPipeline(
                    configuration: configuration,
                    sink: sink,
                    maxBatchBytes: 1_024_000,
                    logger: testLogger
                )
                let group = ServiceGroup(configuration: .init(services: [pipeline], logger: testLogger))
                let running = Task { try await group.run() }
                #expect(await eventually { sink.count == 2 })
                let started = ContinuousClock.now
                await group.triggerGracefulShutdown()
                // Batch 0 is acknowledged during the grace period, batch 1 never.
                try await Task.sleep(for: .milliseconds(100))
                sink.ack(0)
                try await running.value
                #expect(started.duration(to: .now) < .seconds(3))
                #expect(CursorStore(path: cursorFile).load() == .cursor(exported[9].cursor))

                // The next start sends exactly what was not acknowledged.
                let collector = CollectingSink()
                let second = try LogPipeline(
                    configuration: configuration,
                    sink: collector,
                    maxBatchBytes: 1_024_000,
                    logger: testLogger
                )
                try await withRunningPipeline(second) {
                    #expect(await eventually { (try? collector.events().count) == 10 })
                }
                #expect(try collector.events().compactMap { $0.text("MESSAGE") } == (10..<20).map { "m\($0)" })
                #expect(CursorStore(path: cursorFile).load() == .cursor(exported[19].cursor))
            }
        }
    }

    @Test func aCorruptCursorFileIsReportedAndReadingStartsAtTheConfiguredPosition() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let exported = try await self.write(journald, run: run, 0..<5)
                let cursorFile = directory.file("journal.cursor")
                try Data([0x00, 0xFF, 0x13, 0x37, 0x0A]).write(to: URL(fileURLWithPath: cursorFile))
                let (logger, log) = RecordingLogHandler.logger()
                let collector = CollectingSink()
                let pipeline = try LogPipeline(
                    configuration: self.configuration(journald, run: run, cursorFile: cursorFile, maxEntries: 5),
                    sink: collector,
                    maxBatchBytes: 1_024_000,
                    logger: logger
                )
                try await withRunningPipeline(pipeline) {
                    #expect(await eventually { (try? collector.events().count) == 5 })
                }
                #expect(try collector.events().compactMap { $0.text("MESSAGE") } == (0..<5).map { "m\($0)" })
                #expect(log.contains(.error, "cursor file is corrupt"))
                #expect(log.contains(.error, "position=head"))
                #expect(CursorStore(path: cursorFile).load() == .cursor(exported[4].cursor))
            }
        }
    }
}

/// Runs the pipeline in a service group for the duration of `body`, then shuts it down gracefully.
func withRunningPipeline(_ pipeline: LogPipeline, _ body: () async throws -> Void) async throws {
    let group = ServiceGroup(configuration: .init(services: [pipeline], logger: testLogger))
    let running = Task { try await group.run() }
    do {
        try await body()
    } catch {
        await group.triggerGracefulShutdown()
        try? await running.value
        throw error
    }
    await group.triggerGracefulShutdown()
    try await running.value
}

/// A sink whose batches are acknowledged only when the test says so (in any order).
final class ControlledSink: BatchSink, @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private let lock = NSLock()
    private var received: [ForwardBatch] = []
    private var acknowledged: Set<Int> = []
    private var cancelled: Set<Int> = []
    private var acknowledgeAll = false
    private var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]

    func deliver(_ batch: ForwardBatch) async throws {
        let index = self.lock.withLock {
            self.received.append(batch)
            return self.received.count - 1
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = self.lock.withLock {
                    if self.acknowledgeAll || self.acknowledged.contains(index) { return .success(()) }
                    if self.cancelled.contains(index) { return .failure(CancellationError()) }
                    self.waiters[index] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waiter = self.lock.withLock {
                self.cancelled.insert(index)
                return self.waiters.removeValue(forKey: index)
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    func ack(_ index: Int) {
        let waiter = self.lock.withLock {
            self.acknowledged.insert(index)
            return self.waiters.removeValue(forKey: index)
        }
        waiter?.resume()
    }

    func acknowledgeEverything() {
        let waiters = self.lock.withLock {
            self.acknowledgeAll = true
            defer { self.waiters.removeAll() }
            return Array(self.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    var count: Int { self.lock.withLock { self.received.count } }

    var totalEntries: Int { self.lock.withLock { self.received.reduce(0) { $0 + $1.count } } }

    func events(_ index: Int) throws -> [Event] {
        try decodeEvents(self.lock.withLock { self.received[index] }.entries)
    }

    func allEvents() throws -> [Event] {
        try self.lock.withLock { self.received }.flatMap { try decodeEvents($0.entries) }
    }
}
