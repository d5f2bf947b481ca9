import Synchronization
public import VigilCore

/// The forwarder's own metrics, per target (label `target`: the target's name or `host:port`).
public final class ForwardMetrics: MetricSource {
    /// Upper bounds of the ack latency histogram, in seconds.
    public static let latencyBuckets: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ]

    /// One target's counters.
    public struct Counters: Sendable, Equatable {
        public var recordsSent: UInt64 = 0
        public var recordsAcked: UInt64 = 0
        public var batchesSent: UInt64 = 0
        public var batchesAcked: UInt64 = 0
        public var batchesRetried: UInt64 = 0
        public var connectionErrors: UInt64 = 0
        public var handshakeErrors: UInt64 = 0
        public var up = true
        /// Non-cumulative counts per bucket of ``ForwardMetrics/latencyBuckets``, plus one for +Inf.
        public var latencyCounts = [UInt64](repeating: 0, count: ForwardMetrics.latencyBuckets.count + 1)
        public var latencySum: Double = 0
    }

    /// The targets' labels, in configuration order.
    public let targets: [String]
    private let counters: Mutex<[Counters]>

    init(targets: [String]) {
        self.targets = targets
        self.counters = Mutex(Array(repeating: Counters(), count: targets.count))
    }

    /// A copy of one target's counters.
    public func counters(for target: String) -> Counters? {
        guard let index = self.targets.firstIndex(of: target) else { return nil }
        return self.counters.withLock { $0[index] }
    }

    func update(_ index: Int, _ body: (inout Counters) -> Void) {
        self.counters.withLock { body(&$0[index]) }
    }

    func recordAck(_ index: Int, records: Int, latency: Duration) {
        let seconds = Double(latency.components.seconds) + Double(latency.components.attoseconds) / 1e18
        let bucket = Self.latencyBuckets.firstIndex { seconds <= $0 } ?? Self.latencyBuckets.count
        self.update(index) {
            $0.batchesAcked += 1
            $0.recordsAcked += UInt64(records)
            $0.latencyCounts[bucket] += 1
            $0.latencySum += seconds
        }
    }

    public func write(into writer: inout MetricWriter) {
        let all = self.counters.withLock { $0 }
        let families: [(String, String, KeyPath<Counters, UInt64>)] = [
            (
                "vigil_forward_records_sent_total",
                "Records written to a connection to the target, resends included.", \.recordsSent
            ),
            ("vigil_forward_records_acked_total", "Records in batches the target acknowledged.", \.recordsAcked),
            (
                "vigil_forward_batches_sent_total",
                "Batches (forward requests) written to a connection to the target, resends included.",
                \.batchesSent
            ),
            (
                "vigil_forward_batches_acked_total", "Batches the target acknowledged with a matching ack.",
                \.batchesAcked
            ),
            (
                "vigil_forward_batches_retried_total",
                "Attempts to send a batch to the target that failed (connect, handshake, ack timeout, closed connection, wrong ack) and are retried.",
                \.batchesRetried
            ),
            (
                "vigil_forward_connection_errors_total",
                "Connections to the target that could not be established (TCP connect or TLS), heartbeats included.",
                \.connectionErrors
            ),
            (
                "vigil_forward_handshake_errors_total",
                "Forward-protocol handshakes (HELO/PING/PONG) with the target that failed, heartbeats included.",
                \.handshakeErrors
            ),
        ]
        for (name, help, field) in families {
            writer.family(name, help: help, type: .counter)
            for (index, target) in self.targets.enumerated() {
                writer.sample(Double(all[index][keyPath: field]), ("target", target))
            }
        }
        writer.family(
            "vigil_forward_target_up",
            help: "Whether the target is available for batches (1) or marked down (0).",
            type: .gauge
        )
        for (index, target) in self.targets.enumerated() {
            writer.sample(all[index].up ? 1 : 0, ("target", target))
        }
        writer.family(
            "vigil_forward_ack_latency_seconds",
            help: "Time from writing a batch to receiving its ack.",
            type: .histogram
        )
        for (index, target) in self.targets.enumerated() {
            var cumulative: UInt64 = 0
            for (bucket, bound) in Self.latencyBuckets.enumerated() {
                cumulative += all[index].latencyCounts[bucket]
                writer.sample(suffix: "_bucket", Double(cumulative), ("target", target), ("le", formatBound(bound)))
            }
            cumulative += all[index].latencyCounts[Self.latencyBuckets.count]
            writer.sample(suffix: "_bucket", Double(cumulative), ("target", target), ("le", "+Inf"))
            writer.sample(suffix: "_sum", all[index].latencySum, ("target", target))
            writer.sample(suffix: "_count", Double(cumulative), ("target", target))
        }
    }
}

/// A bucket bound as Prometheus client libraries write it (`0.005`, `1`, `2.5`).
private func formatBound(_ bound: Double) -> String {
    bound == bound.rounded() ? String(Int(bound)) : String(bound)
}
