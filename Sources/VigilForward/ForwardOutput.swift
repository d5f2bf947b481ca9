public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL
public import ServiceLifecycle
import Synchronization

/// Sends batches to Fluentd forward-protocol targets and returns only once one acknowledged them.
///
/// Targets are chosen as fluentd's out_forward does (see ``TargetSelector``): weighted round robin,
/// standby targets while regular ones are down, targets marked down on failures and recovered by
/// heartbeats. A failed attempt moves on to the next available target; when every target failed, the
/// batch waits with exponential backoff and jitter (`retryWait` … `maxRetryWait`) and is tried again,
/// forever, with the same chunk id. Several batches may be in flight at once, each on its own connection.
///
/// As a `Service`, it runs the heartbeats (a connect and handshake to every target each
/// `heartbeatInterval`) until graceful shutdown. Delivery works without it, but down targets then come
/// back only when a last-resort attempt succeeds.
public final class ForwardOutput: BatchSink, Service {
    /// The forwarder's own metrics; add them to the scraper.
    public let metrics: ForwardMetrics
    private let configuration: ForwardConfiguration
    private let targets: [ForwardTarget]
    private let selector: Mutex<TargetSelector>
    private let logger: Logger
    private let group: any EventLoopGroup

    /// - Throws: ``ForwardError`` with code `configuration` when there is no regular target of non-zero
    ///   weight or a TLS file cannot be used.
    public init(
        configuration: ForwardConfiguration,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(ForwardError) {
        guard !configuration.targets.isEmpty else {
            throw ForwardError(.configuration, "forward: no targets configured")
        }
        // Standby targets only stand in for regular ones (fluentd would never use them alone).
        guard configuration.targets.contains(where: { !$0.standby && $0.weight > 0 }) else {
            throw ForwardError(.configuration, "forward: no regular target with a weight above 0")
        }
        var targets: [ForwardTarget] = []
        for (index, target) in configuration.targets.enumerated() {
            let endpoint = ForwardConnection.Endpoint(
                label: target.label,
                host: target.host,
                port: target.port,
                tls: try target.tls.map { tls throws(ForwardError) in try Self.makeTLSContext(tls, target: target.label)
                },
                serverHostname: target.tls?.serverName ?? (Self.isIPAddress(target.host) ? nil : target.host),
                sharedKey: target.sharedKey ?? configuration.sharedKey,
                username: target.username,
                password: target.password,
                selfHostname: configuration.selfHostname
            )
            targets.append(
                ForwardTarget(index: index, endpoint: endpoint, weight: target.weight, standby: target.standby)
            )
        }
        self.configuration = configuration
        self.targets = targets
        self.metrics = ForwardMetrics(targets: targets.map(\.label))
        var selector = TargetSelector()
        selector.update(targets.map { .init(weight: $0.weight, standby: $0.standby, available: true) })
        self.selector = Mutex(selector)
        self.logger = logger
        self.group = eventLoopGroup
    }

    /// Whether each target (by label, in configuration order) is currently up.
    public var targetStatus: [(target: String, up: Bool)] {
        self.targets.map { ($0.label, $0.isUp) }
    }

    /// Delivers `batch` and returns once a target acked it; retries for as long as it takes.
    ///
    /// - Throws: `CancellationError` when the task is cancelled (the batch is then not delivered), or
    ///   ``ForwardError`` with code `batchTooLarge` when `entries` exceed `maxBatchBytes` — a bug in the
    ///   caller, which must split batches.
    public func deliver(_ batch: ForwardBatch) async throws {
        guard batch.entries.count <= self.configuration.maxBatchBytes else {
            let error = ForwardError(
                .batchTooLarge,
                "batch \(batch.chunkID) for tag \(batch.tag) has \(batch.entries.count) bytes of entries, more than maxBatchBytes \(self.configuration.maxBatchBytes); the caller must split it"
            )
            self.logger.error("\(error)")
            throw error
        }
        // Encoded (and compressed) once; every attempt writes the same buffer.
        let frame = ForwardFrame.buffer(batch, compression: self.configuration.compression)
        var failedRounds = 0
        while true {
            try Task.checkCancellation()
            var tried: Set<Int> = []
            while let index = self.nextTarget(excluding: tried) {
                tried.insert(index)
                do {
                    try await self.send(frame, batch: batch, to: self.targets[index])
                    return
                } catch {
                    if Task.isCancelled { throw CancellationError() }
                    self.recordFailure(error, target: self.targets[index], batch: batch)
                }
            }
            failedRounds += 1
            try await Task.sleep(for: self.backoff(afterFailedRounds: failedRounds))
        }
    }

    /// Runs the heartbeats until graceful shutdown or cancellation, then closes kept-open connections.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for target in self.targets {
                    group.addTask { await self.heartbeats(target) }
                }
            }
        }
        for target in self.targets { target.closeIdleConnections() }
    }

    /// Closes kept-open connections (``run()`` does this when it ends).
    public func closeIdleConnections() {
        for target in self.targets { target.closeIdleConnections() }
    }

    private func nextTarget(excluding tried: Set<Int>) -> Int? {
        let candidates = self.targets.map {
            TargetSelector.Candidate(weight: $0.weight, standby: $0.standby, available: $0.isUp)
        }
        return self.selector.withLock { selector in
            selector.update(candidates)
            if let index = selector.next(excluding: tried) { return index }
            // Nothing available: one last-resort attempt per round, at the retry pace.
            return tried.isEmpty ? selector.lastResort() : nil
        }
    }

    /// One attempt on one target: a kept-open connection or a new one, the request, the ack.
    private func send(_ frame: ByteBuffer, batch: ForwardBatch, to target: ForwardTarget) async throws {
        var connection: ForwardConnection
        var reused = false
        if let idle = target.takeIdleConnection(maxIdle: self.configuration.keepaliveTimeout) {
            if await idle.isReusable {
                connection = idle
                reused = true
            } else {
                idle.close()
                connection = try await self.connect(target)
            }
        } else {
            connection = try await self.connect(target)
        }
        var started = ContinuousClock.now
        self.recordSent(target, batch: batch)
        do {
            try await connection.send(frame, chunkID: batch.chunkID, ackTimeout: self.configuration.ackTimeout)
        } catch let error as ForwardError where reused && error.code == .connectionClosed && !Task.isCancelled {
            // The server closed the kept-open connection while it was idle: not a fault of the target.
            self.logger.debug("kept-open connection to \(target.label) was closed (\(error)); reconnecting")
            self.metrics.update(target.index) { $0.batchesRetried += 1 }
            connection = try await self.connect(target)
            started = ContinuousClock.now
            self.recordSent(target, batch: batch)
            try await connection.send(frame, chunkID: batch.chunkID, ackTimeout: self.configuration.ackTimeout)
        }
        self.metrics.recordAck(target.index, records: batch.count, latency: ContinuousClock.now - started)
        if target.markAcked() {
            self.targetCameUp(target, how: "batch acked")
        }
        if self.configuration.keepalive && connection.serverAllowsKeepalive, await connection.isReusable {
            target.keepIdle(connection)
        } else {
            connection.close()
        }
    }

    private func connect(_ target: ForwardTarget) async throws -> ForwardConnection {
        try await ForwardConnection.establish(
            to: target.endpoint,
            timeout: self.configuration.connectTimeout,
            group: self.group
        )
    }

    private func recordSent(_ target: ForwardTarget, batch: ForwardBatch) {
        self.metrics.update(target.index) {
            $0.batchesSent += 1
            $0.recordsSent += UInt64(batch.count)
        }
    }

    private func recordFailure(_ error: any Error, target: ForwardTarget, batch: ForwardBatch) {
        let error = error as? ForwardError ?? ForwardError(.connectionClosed, "\(error)", cause: error)
        self.countConnectionError(error, target: target)
        self.metrics.update(target.index) { $0.batchesRetried += 1 }
        // A wrong or garbled ack is the connection's fault (it was closed), not a reason to avoid the target.
        let marksDown = error.code != .ackMismatch && error.code != .invalidResponse
        if marksDown && target.markDown() {
            self.metrics.update(target.index) { $0.up = false }
            self.logger.warning("target \(target.label) down: \(error)")
        } else {
            self.logger.warning("batch \(batch.chunkID) (\(batch.count) records) to \(target.label) failed: \(error)")
        }
    }

    private func countConnectionError(_ error: ForwardError, target: ForwardTarget) {
        if error.code == .connectFailed || error.code == .tlsFailed {
            self.metrics.update(target.index) { $0.connectionErrors += 1 }
        } else if error.code == .handshakeFailed {
            self.metrics.update(target.index) { $0.handshakeErrors += 1 }
        }
    }

    private func targetCameUp(_ target: ForwardTarget, how: String) {
        self.metrics.update(target.index) { $0.up = true }
        self.logger.info("target \(target.label) up: \(how)")
    }

    /// `retryWait · 2ⁿ⁻¹`, at most `maxRetryWait`, times a random factor in [0.5, 1] so that batches
    /// waiting together do not retry in lockstep.
    private func backoff(afterFailedRounds rounds: Int) -> Duration {
        let base = self.configuration.retryWait * (1 << min(rounds - 1, 30))
        let capped = min(base, self.configuration.maxRetryWait)
        return capped * Double.random(in: 0.5...1)
    }

    private func heartbeats(_ target: ForwardTarget) async {
        let interval = self.configuration.heartbeatInterval
        let samplesToRecover = max(1, Int((self.configuration.recoverWait / interval).rounded(.up)))
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                let connection = try await self.connect(target)
                connection.close()
                if target.heartbeatSucceeded(samplesToRecover: samplesToRecover) {
                    self.targetCameUp(target, how: "heartbeats succeeded for \(self.configuration.recoverWait)")
                }
            } catch {
                if Task.isCancelled { return }
                let error = error as? ForwardError ?? ForwardError(.connectFailed, "\(error)", cause: error)
                self.countConnectionError(error, target: target)
                if target.heartbeatFailed(hardTimeout: self.configuration.hardTimeout) {
                    self.metrics.update(target.index) { $0.up = false }
                    self.logger.warning(
                        "target \(target.label) down: no successful heartbeat for \(self.configuration.hardTimeout) (\(error))"
                    )
                } else {
                    self.logger.debug("heartbeat to \(target.label) failed: \(error)")
                }
            }
            try? await Task.sleep(until: started + interval)
        }
    }

    private static func makeTLSContext(
        _ settings: ForwardConfiguration.TLS,
        target: String
    ) throws(ForwardError) -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = settings.verify ? .fullVerification : .none
        do {
            if let caFile = settings.caFile {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
            }
            if let certFile = settings.certFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
            }
            if let keyFile = settings.keyFile {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ForwardError(.configuration, "forward target \(target): TLS setup failed: \(error)", cause: error)
        }
    }

    private static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
