import CSystemd
public import Logging
public import ServiceLifecycle
import Synchronization
public import VigilCore
public import VigilForward

/// Why the log pipeline could not start.
public struct LogPipelineError: Error, CustomStringConvertible {
    public let description: String
}

/// Reads the journal, hands batches to a ``BatchSink`` and saves the journal cursor once batches are
/// acknowledged: the journal is the buffer, so a crash, a kill -9 or a receiver outage loses nothing
/// (at worst a batch is sent twice).
///
/// Up to `window` batches are in flight; acks may come back in any order and the cursor advances over
/// the acknowledged prefix only. When the window is full (every target down), reading pauses and memory
/// stays flat until acks return. On graceful shutdown reading stops, batches in flight get
/// `shutdownGrace` to be acknowledged, and the cursor of what was acknowledged is written.
public final class LogPipeline: Service {
    /// The pipeline's metrics, for the scraper.
    public let metrics: JournalMetrics
    private let configuration: JournalConfiguration
    private let reader: JournalReader
    private let window: DeliveryWindow
    /// Nil when no cursor is kept (dry run).
    private let store: CursorStore?
    private let sink: any BatchSink
    private let pool: BlockingPool
    private let logger: Logger

    /// - Parameters:
    ///   - sink: where batches go (the forward output, or the dry-run printer).
    ///   - maxBatchBytes: the sink's batch size limit (the forward configuration's `maxBatchBytes`).
    ///   - pool: threads for the blocking journal calls and cursor writes.
    public init(
        configuration: JournalConfiguration,
        sink: any BatchSink,
        maxBatchBytes: Int,
        logger: Logger,
        pool: BlockingPool = .shared
    ) throws(TagTemplate.ParseError) {
        let metrics = JournalMetrics(window: configuration.window)
        self.metrics = metrics
        self.configuration = configuration
        self.reader = try JournalReader(
            configuration: configuration,
            maxBatchBytes: maxBatchBytes,
            metrics: metrics,
            logger: logger
        )
        self.window = DeliveryWindow(size: configuration.window, metrics: metrics)
        self.store = configuration.cursorFile.map { CursorStore(path: $0) }
        self.sink = sink
        self.pool = pool
        self.logger = logger
    }

    public func run() async throws {
        var saved = CursorStore.Loaded.missing
        if let store = self.store {
            do {
                try await self.offload { () throws(FileError) in try store.prepareDirectory() }
            } catch {
                throw LogPipelineError(description: "cannot use the directory of the journal cursor file: \(error)")
            }
            saved = await self.offload { store.load() }
        }
        do {
            try await self.offload { [saved] () throws(JournalError) in try self.reader.open(saved: saved) }
        } catch {
            throw LogPipelineError(description: "cannot read the journal: \(error)")
        }
        self.logger.info(
            "log pipeline started",
            metadata: [
                "source": "\(self.configuration.source)", "matches": "\(self.configuration.journalMatches)",
                "tag": "\(self.configuration.tag)", "cursor_file": "\(self.configuration.cursorFile ?? "none")",
            ]
        )
        let stop = StopSignal()
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { background in
                background.addTask { await self.commitLoop() }
                background.addTask { await self.refreshLoop() }
                await withGracefulShutdownHandler {
                    await self.readAndDeliver(stop: stop)
                } onGracefulShutdown: {
                    stop.stop()
                    self.window.stop()
                }
                self.window.finish()
                background.cancelAll()
            }
        } onCancel: {
            stop.stop()
            self.window.stop()
        }
        await self.offload { self.reader.close() }
        self.logger.info("log pipeline stopped")
    }

    private func readAndDeliver(stop: StopSignal) async {
        await withDiscardingTaskGroup { deliveries in
            while await self.window.acquireSlot() {
                guard let batch = await self.offload({ self.reader.nextBatch(stop: stop) }) else {
                    self.window.releaseUnused()
                    break
                }
                let sequence = self.window.register(batch)
                deliveries.addTask { await self.deliver(batch, sequence: sequence) }
            }
            guard self.window.inFlight > 0 else { return }
            if await !self.window.waitUntilDrained(timeout: self.configuration.shutdownGrace) {
                self.logger.warning(
                    "batches not acknowledged within the shutdown grace period; they will be sent again after the next start",
                    metadata: ["batches": "\(self.window.inFlight)"]
                )
                deliveries.cancelAll()
            }
        }
    }

    /// Hands a batch to the sink until it is acknowledged (or the pipeline is cancelled).
    private func deliver(_ batch: JournalBatch, sequence: Int) async {
        let forwardBatch = ForwardBatch(
            tag: batch.tag,
            entries: batch.entries,
            count: batch.count,
            chunkID: newChunkID()
        )
        self.metrics.batchesSent.add(1, ordering: .relaxed)
        var pause = Duration.seconds(1)
        while true {
            do {
                try await self.sink.deliver(forwardBatch)
                self.metrics.batchesAcked.add(1, ordering: .relaxed)
                self.metrics.entriesAcked.add(batch.count, ordering: .relaxed)
                self.window.acknowledge(sequence)
                return
            } catch {
                if Task.isCancelled || error is CancellationError { return }
                // The sink retries by itself; an error here is a bug or a misconfiguration.
                self.metrics.deliveryErrors.add(1, ordering: .relaxed)
                self.logger.error(
                    "the forward output failed to deliver a batch; sending it again",
                    metadata: ["err": "\(error)", "tag": "\(batch.tag)", "entries": "\(batch.count)"]
                )
                do {
                    try await Task.sleep(for: pause)
                } catch {
                    return
                }
                pause = min(pause * 2, .seconds(30))
            }
        }
    }

    /// Writes the cursor of the acknowledged prefix, at most once per `commitInterval`, and what is left
    /// once the window finishes.
    private func commitLoop() async {
        while let cursor = await self.window.nextCommit() {
            guard let store = self.store else { continue }
            do {
                try await self.offload { () throws(FileError) in try store.save(cursor) }
                self.metrics.cursorCommits.add(1, ordering: .relaxed)
                self.metrics.lastCommitTime.store(realtimeMicroseconds(), ordering: .relaxed)
            } catch {
                self.metrics.cursorCommitErrors.add(1, ordering: .relaxed)
                self.logger.error(
                    "cannot save the journal cursor; acknowledged entries will be sent again after a restart",
                    metadata: ["cursor_file": "\(store.path)", "err": "\(error)"]
                )
            }
            // Cancelled when the pipeline stops, so that the last cursor is written without delay.
            try? await Task.sleep(for: self.configuration.commitInterval)
        }
    }

    /// Keeps the lag metric current while reading is paused (the reader updates it while it reads).
    private func refreshLoop() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(5))
            } catch {
                return
            }
            await self.offload { self.reader.refreshLag() }
        }
    }

    /// Runs blocking work on the pool, off Swift's cooperative threads.
    private func offload<T: Sendable>(_ job: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            self.pool.submit { continuation.resume(returning: job()) }
        }
    }

    private func offload<T: Sendable, E: Error>(_ job: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await self.offload { () -> Result<T, E> in
            do throws(E) {
                return .success(try job())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// A random 128-bit chunk id in Base64; the batch keeps it for every resend.
private func newChunkID() -> String {
    var generator = SystemRandomNumberGenerator()
    var bytes: [UInt8] = []
    bytes.reserveCapacity(16)
    for _ in 0..<2 {
        withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
    }
    return base64Encode(bytes)
}
