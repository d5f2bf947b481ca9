import Synchronization

/// The batches between the reader and the saved cursor: at most `size` of them are sent and not yet
/// committed. Acks may arrive in any order; the cursor advances only over a prefix of acknowledged
/// batches, so a saved cursor never passes an entry that a receiver has not acknowledged.
///
/// One reading loop takes slots, one commit loop takes cursors, one shutdown waits for it to drain.
final class DeliveryWindow: Sendable {
    private struct Batch {
        let sequence: Int
        let cursor: String
        let count: Int
        let firstRealtime: UInt64
        var acked = false
    }

    private struct State {
        var batches: [Batch] = []
        /// Slots taken: batches registered plus a slot reserved for the batch being read.
        var taken = 0
        var nextSequence = 0
        /// The newest cursor that may be saved and has not been handed to the commit loop yet.
        var committable: String?
        var stopping = false
        var finished = false
        var idleWaitCancelled = false
        var slotWaiter: CheckedContinuation<Bool, Never>?
        var idleWaiter: CheckedContinuation<Void, Never>?
        var commitWaiter: CheckedContinuation<String?, Never>?
    }

    let size: Int
    private let metrics: JournalMetrics
    private let state = Mutex(State())

    init(size: Int, metrics: JournalMetrics) {
        self.size = max(1, size)
        self.metrics = metrics
    }

    /// Waits for a free slot; false once the window is stopping.
    func acquireSlot() async -> Bool {
        await withCheckedContinuation { continuation in
            let granted: Bool? = self.state.withLock { state in
                if state.stopping { return false }
                if state.taken < self.size {
                    state.taken += 1
                    return true
                }
                state.slotWaiter = continuation
                self.metrics.readingPaused.store(1, ordering: .relaxed)
                return nil
            }
            if let granted { continuation.resume(returning: granted) }
        }
    }

    /// Gives back a slot taken for a batch that never came (the reader stopped).
    func releaseUnused() {
        self.state.withLock { $0.taken -= 1 }
    }

    /// Records a batch sent in the slot taken for it; returns its sequence number.
    func register(_ batch: JournalBatch) -> Int {
        self.state.withLock { state in
            let sequence = state.nextSequence
            state.nextSequence += 1
            state.batches.append(
                Batch(sequence: sequence, cursor: batch.cursor, count: batch.count, firstRealtime: batch.firstRealtime)
            )
            self.publish(state)
            return sequence
        }
    }

    /// Marks a batch acknowledged; commits the cursor of the acknowledged prefix.
    func acknowledge(_ sequence: Int) {
        var wake: (slot: CheckedContinuation<Bool, Never>?, idle: CheckedContinuation<Void, Never>?) = (nil, nil)
        var commit: (CheckedContinuation<String?, Never>, String)?
        self.state.withLock { state in
            guard let index = state.batches.firstIndex(where: { $0.sequence == sequence }) else { return }
            state.batches[index].acked = true
            let prefix = state.batches.prefix { $0.acked }
            guard !prefix.isEmpty else { return }
            if let cursor = prefix.last(where: { !$0.cursor.isEmpty })?.cursor { state.committable = cursor }
            state.batches.removeFirst(prefix.count)
            state.taken -= prefix.count
            self.publish(state)
            if let waiter = state.slotWaiter, !state.stopping {
                state.taken += 1
                state.slotWaiter = nil
                self.metrics.readingPaused.store(0, ordering: .relaxed)
                wake.slot = waiter
            }
            if state.batches.isEmpty, let waiter = state.idleWaiter {
                state.idleWaiter = nil
                wake.idle = waiter
            }
            if let waiter = state.commitWaiter, let cursor = state.committable {
                state.commitWaiter = nil
                state.committable = nil
                commit = (waiter, cursor)
            }
        }
        wake.slot?.resume(returning: true)
        wake.idle?.resume()
        if let (waiter, cursor) = commit { waiter.resume(returning: cursor) }
    }

    /// Stops handing out slots (shutdown): a waiting reader gets false.
    func stop() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
            state.stopping = true
            self.metrics.readingPaused.store(0, ordering: .relaxed)
            defer { state.slotWaiter = nil }
            return state.slotWaiter
        }
        waiter?.resume(returning: false)
    }

    /// Waits until every registered batch is acknowledged, or `timeout` passes; true if drained.
    func waitUntilDrained(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.waitUntilIdle()
                return self.state.withLock { $0.batches.isEmpty }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || self.state.withLock { $0.batches.isEmpty }
        }
    }

    private func waitUntilIdle() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let done = self.state.withLock { state in
                    if state.batches.isEmpty || state.idleWaitCancelled { return true }
                    state.idleWaiter = continuation
                    return false
                }
                if done { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.idleWaitCancelled = true
                defer { state.idleWaiter = nil }
                return state.idleWaiter
            }
            waiter?.resume()
        }
    }

    /// Batches registered and not yet acknowledged (with the acknowledged ones behind them).
    var inFlight: Int { self.state.withLock { $0.batches.count } }

    /// The next cursor to save: waits until acks move it; nil once finished and nothing is left.
    func nextCommit() async -> String? {
        await withCheckedContinuation { continuation in
            let ready: String?? = self.state.withLock { state in
                if let cursor = state.committable {
                    state.committable = nil
                    return .some(cursor)
                }
                if state.finished { return .some(nil) }
                state.commitWaiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// No more acks will come: the commit loop saves what is left and ends.
    func finish() {
        let (waiter, cursor) = self.state.withLock { state -> (CheckedContinuation<String?, Never>?, String?) in
            state.finished = true
            let waiter = state.commitWaiter
            state.commitWaiter = nil
            let cursor = waiter == nil ? nil : state.committable
            if waiter != nil { state.committable = nil }
            return (waiter, cursor)
        }
        waiter?.resume(returning: cursor)
    }

    private func publish(_ state: State) {
        self.metrics.batchesInFlight.store(state.batches.count, ordering: .relaxed)
        self.metrics.oldestPendingRealtime.store(state.batches.first?.firstRealtime ?? 0, ordering: .relaxed)
    }
}
