public import Logging
import Synchronization

/// Metrics that live in memory (vigil's own counters, build info): written after the collectors, on
/// every scrape, without blocking.
public protocol MetricSource: Sendable {
    func write(into writer: inout MetricWriter)
}

/// A request for a subset of collectors was wrong (node_exporter's `collect[]` / `exclude[]`).
public struct CollectorSelectionError: Error, CustomStringConvertible, Equatable {
    public let description: String
}

/// Runs the enabled collectors for one scrape and assembles their output.
///
/// Collectors run on ``BlockingPool`` threads ("lanes"): one by default, since a whole scrape takes about
/// a millisecond and every extra thread hand-over costs more CPU than it saves in latency; more only
/// when a lane stalls (and never many at once towards sysfs, which has deadlocked kernels under parallel
/// reads). A scrape has a deadline: whatever has not finished by then is reported as failed
/// (`node_scrape_collector_success 0`) and left behind, so the scrape returns on time. A lane stuck in one collector for longer than the stall threshold is
/// replaced, so one hung driver does not delay the collectors queued behind it. A collector whose
/// abandoned run is still blocked is skipped (and reported failed) by later scrapes until that run
/// returns: a hung mount parks one thread, not one per scrape.
public final class Scraper: Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let collector: any Collector

        public init(name: String, collector: any Collector) {
            self.name = name
            self.collector = collector
        }
    }

    /// What one scrape produced: the exposition in parts (each collector's output, then vigil's own
    /// families), sent or compressed one after the other rather than copied into one buffer.
    public struct Output: Sendable {
        public enum Part: Sendable {
            case bytes([UInt8])
            /// Written while the response is sent.
            case streamed(any StreamedFamilies)
        }

        public var parts: [Part]
        public let format: ExpositionFormat
        public let failedCollectors: [String]

        /// Whether some of the exposition is written while it is sent.
        public var isStreamed: Bool {
            self.parts.contains { if case .streamed = $0 { true } else { false } }
        }

        /// The whole exposition in one buffer (tests, small outputs).
        public var bytes: [UInt8] {
            var writer = MetricWriter(format: self.format)
            for part in self.parts {
                switch part {
                case .bytes(let bytes): writer.append(contentsOf: bytes)
                case .streamed(let families): families.writeAll(into: &writer)
                }
            }
            return writer.takeBytes()
        }
    }

    let entries: [Entry]
    private let knownNames: Set<String>
    private let paths: PathRoots
    private let pool: BlockingPool
    /// Threads for the lanes: as many as make progress on the cores, plus replacements for stuck ones.
    private let lanePool: BlockingPool
    private let logger: Logger
    private let lanes: Int
    private let stallThreshold: Duration
    let timeout: Duration
    private let abandoned: Mutex<[Int]>
    private let buffers = Mutex<[[UInt8]]>([])
    private let responseBuffers = Mutex<[[UInt8]]>([])
    private let readers = Mutex<[FileReader]>([])
    private let sources = Mutex<[any MetricSource]>([])

    /// - Parameters:
    ///   - entries: the enabled collectors.
    ///   - knownNames: every collector name vigil has, enabled or not (for `collect[]` errors).
    ///   - timeout: how long a scrape waits for its collectors at most.
    ///   - cpus: the CPUs the collectors run on (the event loop's, so that a scrape's hand-overs wake no
    ///     other CPU); nil for the process's.
    public init(
        entries: [Entry],
        knownNames: Set<String>,
        paths: PathRoots,
        pool: BlockingPool = .shared,
        logger: Logger,
        lanes: Int = 1,
        cpus: CPUSet? = nil,
        timeout: Duration = .seconds(5),
        stallThreshold: Duration = .milliseconds(200)
    ) {
        self.entries = entries.sorted { $0.name < $1.name }
        self.knownNames = knownNames
        self.paths = paths
        self.pool = pool
        self.lanePool = BlockingPool(name: "vigil-lane", cpus: cpus, softLimit: 4, stuckAfter: stallThreshold)
        self.logger = logger
        self.lanes = max(1, lanes)
        self.timeout = timeout
        self.stallThreshold = stallThreshold
        self.abandoned = Mutex([Int](repeating: 0, count: entries.count))
    }

    /// The names of the enabled collectors, sorted.
    public var collectorNames: [String] { self.entries.map(\.name) }

    /// Adds in-memory metrics written on every scrape (vigil's own, the log pipeline's).
    public func addSource(_ source: any MetricSource) {
        self.sources.withLock { $0.append(source) }
    }

    /// Resolves `collect[]` / `exclude[]` query parameters into the collectors to run.
    public func select(collect: [String], exclude: [String]) throws(CollectorSelectionError) -> [Int] {
        if !collect.isEmpty && !exclude.isEmpty {
            throw CollectorSelectionError(description: "Combined collect and exclude queries are not allowed.")
        }
        if collect.isEmpty && exclude.isEmpty { return Array(self.entries.indices) }
        for name in collect + exclude {
            guard self.knownNames.contains(name) else {
                throw CollectorSelectionError(
                    description:
                        "Couldn't create filtered metrics handler: couldn't create collector: missing collector: \(name)"
                )
            }
            guard self.entries.contains(where: { $0.name == name }) else {
                throw CollectorSelectionError(
                    description:
                        "Couldn't create filtered metrics handler: couldn't create collector: disabled collector: \(name)"
                )
            }
        }
        if !collect.isEmpty {
            let wanted = Set(collect)
            return self.entries.indices.filter { wanted.contains(self.entries[$0].name) }
        }
        let unwanted = Set(exclude)
        return self.entries.indices.filter { !unwanted.contains(self.entries[$0].name) }
    }

    /// Runs the selected collectors (all by default) and returns the exposition.
    ///
    /// - Parameter timeout: the scraper's own deadline for this scrape, if shorter than its default
    ///   (Prometheus announces its scrape timeout in a request header).
    public func scrape(
        format: ExpositionFormat,
        selection: [Int]? = nil,
        timeout: Duration? = nil
    ) async -> Output {
        await withCheckedContinuation { continuation in
            self.scrape(format: format, selection: selection, timeout: timeout) { continuation.resume(returning: $0) }
        }
    }

    /// Runs the selected collectors and hands the exposition to `completion`, on a scrape thread.
    ///
    /// Nothing of a scrape runs on Swift's cooperative pool: the collectors run on pool threads, the
    /// deadline is kept by the ``ScrapeWatchdog`` thread, and whichever finishes the scrape assembles it.
    public func scrape(
        format: ExpositionFormat,
        selection: [Int]? = nil,
        timeout: Duration? = nil,
        completion: @escaping @Sendable (Output) -> Void
    ) {
        let limit = min(timeout ?? self.timeout, self.timeout)
        let run = ScrapeRun(order: selection ?? Array(self.entries.indices), deadline: .now + limit) { run in
            ScrapeWatchdog.shared.ended(run)
            completion(self.assemble(run, format: format))
        }
        guard !run.order.isEmpty else {
            run.finishEmpty()
            return
        }
        let lanes = min(self.lanes, run.order.count)
        run.addLanes(lanes)
        // Watched before its lanes start, so that it is watched before it can end.
        ScrapeWatchdog.shared.watch(run) { now in self.check(run, format: format, now: now) }
        for _ in 0..<lanes { self.startLane(run, format: format) }
    }

    private func startLane(_ run: ScrapeRun, format: ExpositionFormat) {
        self.lanePool.submit { self.lane(run, format: format) }
    }

    /// One lane: claims collectors in turn and runs them.
    private func lane(_ run: ScrapeRun, format: ExpositionFormat) {
        // Readers are pooled: a fresh 16 KiB buffer per lane and scrape fragments the heap.
        let reader = self.readers.withLock { $0.popLast() } ?? FileReader()
        let shared = run.shared
        while let position = run.claim() {
            let index = run.order[position]
            let entry = self.entries[index]
            if self.abandoned.withLock({ $0[index] > 0 }) {
                self.logger.warning(
                    "collector is still blocked in an earlier scrape; skipping it",
                    metadata: ["collector": "\(entry.name)"]
                )
                run.complete(position, outcome: ScrapeRun.Outcome(seconds: 0, success: false))
                continue
            }
            var writer = MetricWriter(format: format, reusing: self.takeBuffer())
            let context = ScrapeContext(
                paths: self.paths,
                reader: reader,
                deadline: run.deadline,
                shared: shared,
                logger: self.logger,
                pool: self.pool
            )
            let start = ContinuousClock.now
            var success = true
            do {
                try entry.collector.collect(into: &writer, context: context)
                if !context.failures.isEmpty {
                    success = false
                    for failure in context.failures {
                        self.logger.error(
                            "collector failed",
                            metadata: ["collector": "\(entry.name)", "err": "\(failure)"]
                        )
                    }
                }
            } catch let error as FileError where error.isNotFound {
                success = false
                self.logger.debug(
                    "collector returned no data",
                    metadata: ["collector": "\(entry.name)", "err": "\(error)"]
                )
            } catch CollectorError.noData(let reason) {
                success = false
                self.logger.debug(
                    "collector returned no data",
                    metadata: ["collector": "\(entry.name)", "err": "\(reason)"]
                )
            } catch {
                success = false
                self.logger.error("collector failed", metadata: ["collector": "\(entry.name)", "err": "\(error)"])
            }
            let elapsed = start.duration(to: .now)
            let outcome = ScrapeRun.Outcome(
                bytes: writer.takeBytes(),
                streamed: writer.takeStreamed(),
                seconds: elapsed.seconds,
                success: success
            )
            if let late = run.complete(position, outcome: consume outcome) {
                // The scrape gave up on this collector; it has returned now.
                self.abandoned.withLock { $0[index] -= 1 }
                self.recycle(late.bytes)
                self.logger.warning(
                    "collector returned after its scrape had given up on it",
                    metadata: ["collector": "\(entry.name)", "duration_seconds": "\(elapsed.seconds)"]
                )
            }
        }
        self.readers.withLock { readers in
            if readers.count < 8 { readers.append(reader) }
        }
        run.laneEnded()
    }

    /// Called by the watchdog while the scrape runs: replaces stalled lanes, and at the deadline gives
    /// up on whatever is still running. Returns whether the scrape is over.
    private func check(_ run: ScrapeRun, format: ExpositionFormat, now: ContinuousClock.Instant) -> Bool {
        if run.isFinished { return true }
        if now >= run.deadline {
            run.finishAtDeadline { running in
                for position in running {
                    let index = run.order[position]
                    self.abandoned.withLock { $0[index] += 1 }
                    self.logger.warning(
                        "collector did not finish before the scrape deadline; its series are missing from this scrape",
                        metadata: ["collector": "\(self.entries[index].name)"]
                    )
                }
            }
            return true
        }
        let extra = run.lanesToAdd(wanted: self.lanes, stalledAfter: self.stallThreshold)
        for _ in 0..<extra { self.startLane(run, format: format) }
        return false
    }

    private func assemble(_ run: ScrapeRun, format: ExpositionFormat) -> Output {
        var outcomes = run.finalOutcomes()
        for position in outcomes.indices
        where !outcomes[position].bytes.isEmpty && self.entries[run.order[position]].collector.definesArbitraryFamilies
        {
            self.dropRedefinedFamilies(at: position, of: &outcomes, run: run, format: format)
        }
        // Taken before this scrape's empty buffers go back: one still referenced by `outcomes` would be
        // emptied into new storage, not reused.
        var writer = MetricWriter(format: format, reusing: self.takeBuffer())
        var parts: [Output.Part] = []
        for position in outcomes.indices {
            var bytes: [UInt8] = []
            swap(&bytes, &outcomes[position].bytes)
            if bytes.isEmpty {
                self.recycle(bytes)
            } else {
                parts.append(.bytes(bytes))
            }
            if let streamed = outcomes[position].streamed { parts.append(.streamed(streamed)) }
        }
        var failed: [String] = []
        writer.family(
            "node_scrape_collector_duration_seconds",
            help: "node_exporter: Duration of a collector scrape.",
            type: .gauge
        )
        for (position, outcome) in outcomes.enumerated() {
            writer.sample(outcome.seconds, ("collector", self.entries[run.order[position]].name))
        }
        writer.family(
            "node_scrape_collector_success",
            help: "node_exporter: Whether a collector succeeded.",
            type: .gauge
        )
        for (position, outcome) in outcomes.enumerated() {
            let name = self.entries[run.order[position]].name
            writer.sample(outcome.success ? 1 : 0, ("collector", name))
            if !outcome.success { failed.append(name) }
        }
        for source in self.sources.withLock({ $0 }) {
            source.write(into: &writer)
        }
        writer.finish()
        parts.append(.bytes(writer.takeBytes()))
        return Output(parts: parts, format: format, failedCollectors: failed)
    }

    /// Drops the families of a collector whose names come from outside vigil (textfile) that another
    /// collector wrote in this scrape: the same family twice would make the exposition invalid.
    private func dropRedefinedFamilies(
        at position: Int,
        of outcomes: inout [ScrapeRun.Outcome],
        run: ScrapeRun,
        format: ExpositionFormat
    ) {
        // Its own families (`node_textfile_*`) are vigil's; with no other family there is nothing to check.
        let own = Array("node_\(self.entries[run.order[position]].name)_".utf8)
        let wanted = Set(FamilyCollisions.names(in: outcomes[position].bytes).filter { !$0.starts(with: own) })
        guard !wanted.isEmpty else { return }
        var taken = Set<ArraySlice<UInt8>>()
        for other in outcomes.indices where other != position {
            taken.formUnion(FamilyCollisions.declared(wanted, in: outcomes[other].bytes))
            if let streamed = outcomes[other].streamed {
                var headers = MetricWriter(format: format)
                for family in streamed.families { headers.family(family) }
                taken.formUnion(FamilyCollisions.declared(wanted, in: headers.bytes))
            }
        }
        guard !taken.isEmpty else { return }
        let result = FamilyCollisions.removing(from: outcomes[position].bytes) { taken.contains($0) }
        outcomes[position].bytes = result.bytes
        outcomes[position].success = false
        self.logger.error(
            "collector redefines families that another collector wrote; dropped",
            metadata: [
                "collector": "\(self.entries[run.order[position]].name)",
                "families": "\(result.removed.joined(separator: ","))",
            ]
        )
    }

    /// The pools buffers come from and go back to. A collector writes its families into one from
    /// `collectors`; a response gathers collectors' text for the compressor, a chunk of 64 KiB and more,
    /// in one from `response`. Kept apart, since buffers only grow: going round the collectors, the
    /// response's would in time make every pooled buffer as large (`make bench-node`, 36 collectors:
    /// steady RSS 14.9–15.1 MiB, 13.2 with the pools apart).
    public enum BufferPool: Sendable {
        case collectors, response
    }

    private func withPool<T>(_ pool: BufferPool, _ body: (inout sending [[UInt8]]) -> sending T) -> sending T {
        switch pool {
        case .collectors: self.buffers.withLock(body)
        case .response: self.responseBuffers.withLock(body)
        }
    }

    /// Returns a buffer for reuse once its contents have been sent.
    ///
    /// Only buffers of ordinary size are kept: the one-off output of a node with a thousand containers is
    /// freed, not kept resident until the next scrape.
    public func recycle(_ buffer: [UInt8], to pool: BufferPool = .collectors) {
        guard buffer.capacity > 0, buffer.capacity <= 1 << 20 else { return }
        self.withPool(pool) { buffers in
            if buffers.count < 64 { buffers.append(buffer) }
        }
    }

    /// A buffer from one of the scraper's pools (give it back with ``recycle(_:to:)``).
    public func takeBuffer(from pool: BufferPool = .collectors) -> [UInt8] {
        self.withPool(pool) { $0.popLast() ?? [] }
    }

    /// How many buffers the pools hold (tests: every buffer taken is given back, and no more).
    var pooledBuffers: Int { self.withPool(.collectors) { $0.count } + self.withPool(.response) { $0.count } }

    /// Where the pooled buffers' storage lies, and its capacity (tests: a scrape writes into the storage
    /// it takes, rather than replacing it).
    func pooledStorage(_ pool: BufferPool) -> [UInt: Int] {
        self.withPool(pool) { buffers in
            Dictionary(
                buffers.map { ($0.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }, $0.capacity) },
                uniquingKeysWith: { first, _ in first }
            )
        }
    }
}

/// The state of one scrape, shared by its lanes and its watchdog.
final class ScrapeRun: Sendable {
    struct Outcome: Sendable {
        var bytes: [UInt8] = []
        var streamed: (any StreamedFamilies)?
        var seconds: Double
        var success: Bool
    }

    private struct State {
        var next = 0
        var outcomes: [Outcome?]
        var started: [Int: ContinuousClock.Instant] = [:]
        var activeLanes = 0
        var finished = false
        var remaining: Int
    }

    let order: [Int]
    let deadline: ContinuousClock.Instant
    let shared = ScrapeShared()
    private let state: Mutex<State>
    /// Called once, by whoever finishes the scrape (the last collector's lane or the watchdog), and
    /// taken when called: the run lives on in a lane that returns late, and what the closure holds (the
    /// response's promise, which holds the output's buffers) must not.
    private let onFinish: Mutex<(@Sendable (ScrapeRun) -> Void)?>

    init(order: [Int], deadline: ContinuousClock.Instant, onFinish: @escaping @Sendable (ScrapeRun) -> Void) {
        self.order = order
        self.deadline = deadline
        self.onFinish = Mutex(onFinish)
        self.state = Mutex(State(outcomes: Array(repeating: nil, count: order.count), remaining: order.count))
    }

    var isFinished: Bool { self.state.withLock { $0.finished } }

    /// Finishes a scrape that has no collectors to run.
    func finishEmpty() {
        self.state.withLock { $0.finished = true }
        self.finish()
    }

    func addLanes(_ count: Int) {
        self.state.withLock { $0.activeLanes += count }
    }

    func laneEnded() {
        self.state.withLock { $0.activeLanes -= 1 }
    }

    /// The next collector position to run, or nil when none is left or the scrape is over.
    func claim() -> Int? {
        self.state.withLock { state in
            guard !state.finished, state.next < self.order.count else { return nil }
            let position = state.next
            state.next += 1
            state.started[position] = .now
            return position
        }
    }

    /// Records a collector's outcome. Returns it back when the scrape had already given up on it.
    ///
    /// The outcome is moved, not copied, into the run: the last one finishes the scrape, whose buffers
    /// go back to the scraper's pool, and a copy still held here would make the next taker of one of
    /// them write into new storage.
    @discardableResult
    func complete(_ position: Int, outcome: consuming Outcome) -> Outcome? {
        var pending: Outcome? = consume outcome
        let (late, last) = self.state.withLock { state -> (Outcome?, Bool) in
            state.started.removeValue(forKey: position)
            guard !state.finished else { return (pending.take(), false) }
            state.outcomes[position] = pending.take()
            state.remaining -= 1
            guard state.remaining == 0 else { return (nil, false) }
            state.finished = true
            return (nil, true)
        }
        if last { self.finish() }
        return late
    }

    /// How many lanes to start so that `wanted` lanes make progress while others are stuck.
    func lanesToAdd(wanted: Int, stalledAfter threshold: Duration) -> Int {
        self.state.withLock { state in
            guard !state.finished, state.next < self.order.count else { return 0 }
            let now = ContinuousClock.now
            let stalled = state.started.values.filter { $0.duration(to: now) >= threshold }.count
            let progressing = state.activeLanes - stalled
            let extra = max(0, min(wanted - progressing, self.order.count - state.next))
            state.activeLanes += extra
            return extra
        }
    }

    /// Gives up at the deadline: unfinished collectors fail. `abandon` gets the positions still running,
    /// before the scrape is handed on (so that the next scrape already knows they are blocked).
    func finishAtDeadline(abandon: ([Int]) -> Void) {
        let running = self.state.withLock { state -> [Int]? in
            guard !state.finished else { return nil }
            state.finished = true
            let now = ContinuousClock.now
            let running = Array(state.started.keys)
            for position in state.outcomes.indices where state.outcomes[position] == nil {
                let seconds = state.started[position].map { $0.duration(to: now).seconds } ?? 0
                state.outcomes[position] = Outcome(seconds: seconds, success: false)
            }
            return running
        }
        guard let running else { return }
        abandon(running)
        self.finish()
    }

    private func finish() {
        let onFinish = self.onFinish.withLock { onFinish in
            defer { onFinish = nil }
            return onFinish
        }
        onFinish?(self)
    }

    func finalOutcomes() -> [Outcome] {
        self.state.withLock { state in
            // Moved out, not copied: the run may outlive its scrape (in a lane that returns late), and
            // buffers it still referenced would be copied, not reused, when the scraper's pool hands them
            // out again.
            let outcomes = state.outcomes.map { $0 ?? Outcome(seconds: 0, success: false) }
            state.outcomes = []
            return outcomes
        }
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
