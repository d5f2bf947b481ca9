import Synchronization

/// One configured receiver: how to reach it, whether it is up, and its kept-open connections.
///
/// Health follows fluentd's out_forward: a target is marked down when a connection or handshake fails
/// or a batch is not acked, or when no heartbeat succeeded for `hardTimeout`; it comes back after
/// successful heartbeats for `recoverWait` (or when a batch sent to it as a last resort is acked).
final class ForwardTarget: Sendable {
    let index: Int
    let endpoint: ForwardConnection.Endpoint
    let weight: Int
    let standby: Bool
    var label: String { self.endpoint.label }

    private struct State {
        var up = true
        var lastHeartbeat: ContinuousClock.Instant
        /// Successful heartbeats in a row while down.
        var recoverySamples = 0
        var idle: [(connection: ForwardConnection, since: ContinuousClock.Instant)] = []
    }

    private let state: Mutex<State>
    /// Kept-open connections beyond this many are closed (a few concurrent batches need no more).
    private static let maxIdleConnections = 4

    init(index: Int, endpoint: ForwardConnection.Endpoint, weight: Int, standby: Bool) {
        self.index = index
        self.endpoint = endpoint
        self.weight = weight
        self.standby = standby
        self.state = Mutex(State(lastHeartbeat: .now))
    }

    var isUp: Bool { self.state.withLock { $0.up } }

    /// Marks the target down; returns whether it was up.
    func markDown() -> Bool {
        let idle = self.state.withLock { state in
            defer {
                state.up = false
                state.recoverySamples = 0
                state.idle = []
            }
            return (state.up, state.idle)
        }
        for entry in idle.1 { entry.connection.close() }
        return idle.0
    }

    /// A batch was acked: the target is evidently up. Returns whether it was down.
    func markAcked() -> Bool {
        self.state.withLock { state in
            defer {
                state.up = true
                state.lastHeartbeat = .now
            }
            return !state.up
        }
    }

    /// Records a heartbeat; returns whether the target came back up.
    func heartbeatSucceeded(samplesToRecover: Int) -> Bool {
        self.state.withLock { state in
            state.lastHeartbeat = .now
            guard !state.up else { return false }
            state.recoverySamples += 1
            guard state.recoverySamples >= samplesToRecover else { return false }
            state.up = true
            state.recoverySamples = 0
            return true
        }
    }

    /// Records a failed heartbeat; returns true if the target, up until now, has had no successful
    /// heartbeat for `hardTimeout` and is now marked down.
    func heartbeatFailed(hardTimeout: Duration) -> Bool {
        let expired = self.state.withLock { state in
            state.recoverySamples = 0
            return state.up && ContinuousClock.now - state.lastHeartbeat >= hardTimeout
        }
        return expired && self.markDown()
    }

    /// A kept-open connection idle for less than `maxIdle`, if there is one; older ones are closed.
    func takeIdleConnection(maxIdle: Duration) -> ForwardConnection? {
        let now = ContinuousClock.now
        let (fresh, stale) = self.state.withLock { state -> (ForwardConnection?, [ForwardConnection]) in
            var stale: [ForwardConnection] = []
            while let entry = state.idle.popLast() {
                if now - entry.since < maxIdle { return (entry.connection, stale) }
                stale.append(entry.connection)
            }
            return (nil, stale)
        }
        for connection in stale { connection.close() }
        return fresh
    }

    /// Keeps a connection whose last request was acked cleanly for the next batch.
    func keepIdle(_ connection: ForwardConnection) {
        let kept = self.state.withLock { state in
            guard state.up, state.idle.count < Self.maxIdleConnections else { return false }
            state.idle.append((connection, .now))
            return true
        }
        if !kept { connection.close() }
    }

    func closeIdleConnections() {
        let idle = self.state.withLock { state in
            defer { state.idle = [] }
            return state.idle
        }
        for entry in idle { entry.connection.close() }
    }
}
