public import NIOCore
public import NIOPosix
import NIOSSL
import Synchronization
import VigilForward

/// A strict Fluentd forward-protocol server for tests and benchmarks.
///
/// It validates every request (``ForwardRequestParser``), records what it received, acks each `chunk`
/// byte for byte, and misbehaves on demand: delayed, dropped or wrong acks, connections closed in the
/// middle of a request or after some requests, refusing connections and coming back on the same port.
/// With a shared key it runs the server side of the HELO/PING/PONG handshake; with a certificate, TLS.
public final class ForwardReceiver: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        /// 0 picks a free port; ``ForwardReceiver/port`` tells which.
        public var port: Int
        /// The server hostname in PONG.
        public var hostname: String
        /// Requires the handshake with this key.
        public var sharedKey: String?
        /// With a shared key: users (name → password) that must authenticate; empty means no user auth.
        public var users: [String: String]
        /// PEM certificate (chain) and key: TLS on every connection.
        public var tlsCertificateFile: String?
        public var tlsKeyFile: String?
        /// The HELO's `keepalive`; false closes each connection after its first request is answered.
        public var keepalive: Bool
        /// Closes each connection once it has answered this many requests (fault injection).
        public var closeAfterRequests: Int?
        /// Keeps every request and event for assertions; false keeps only the counts (benchmarks).
        public var recordEvents: Bool

        public init(
            host: String = "127.0.0.1",
            port: Int = 0,
            hostname: String = "forward-receiver.test",
            sharedKey: String? = nil,
            users: [String: String] = [:],
            tlsCertificateFile: String? = nil,
            tlsKeyFile: String? = nil,
            keepalive: Bool = true,
            closeAfterRequests: Int? = nil,
            recordEvents: Bool = true
        ) {
            self.host = host
            self.port = port
            self.hostname = hostname
            self.sharedKey = sharedKey
            self.users = users
            self.tlsCertificateFile = tlsCertificateFile
            self.tlsKeyFile = tlsKeyFile
            self.keepalive = keepalive
            self.closeAfterRequests = closeAfterRequests
            self.recordEvents = recordEvents
        }
    }

    /// Misbehaviour for the next requests (see ``inject(_:times:)``).
    public enum Fault: Sendable, Equatable {
        /// Records the request, acks after this delay.
        case delayAck(Duration)
        /// Records the request, never acks it (the connection stays open).
        case dropAck
        /// Records the request, acks another chunk id.
        case wrongAck
        /// Closes the connection as soon as bytes of a request arrive, without recording or acking it.
        case closeMidRequest
    }

    /// Everything the receiver has seen so far.
    public struct Snapshot: Sendable {
        /// Every valid request, resends included, in arrival order (empty unless `recordEvents`).
        public var requests: [ReceivedRequest] = []
        /// Valid requests, events in them and their bytes on the wire, resends included.
        public var requestCount = 0
        public var eventCount = 0
        public var byteCount = 0
        /// Requests whose chunk id had been received before (resends after a lost ack).
        public var duplicateRequests = 0
        /// Events in requests whose chunk id was new (or that had none): ``eventCount`` without resends.
        public var uniqueEventCount = 0
        public var connectionsAccepted = 0
        /// Connections closed in the middle of a request by ``Fault/closeMidRequest``.
        public var requestsCutOff = 0
        /// Failed handshakes, with the PONG reason.
        public var handshakeFailures: [String] = []
        /// Requests that broke the protocol (the connection was closed without an ack).
        public var protocolErrors: [String] = []
        /// Acks written (wrong ones included).
        public var acksSent = 0

        /// All events, resends included.
        public var events: [ReceivedEvent] { self.requests.flatMap(\.events) }

        /// The requests with a chunk id seen for the first time, and those without one.
        public var uniqueRequests: [ReceivedRequest] {
            var seen: Set<[UInt8]> = []
            return self.requests.filter { $0.chunk.map { seen.insert($0).inserted } ?? true }
        }

        /// Events of ``uniqueRequests``: what arrived, duplicates removed.
        public var uniqueEvents: [ReceivedEvent] { self.uniqueRequests.flatMap(\.events) }

        /// How often each chunk id arrived.
        public var chunkCounts: [String: Int] {
            self.requests.reduce(into: [:]) { counts, request in
                if let id = request.chunkID { counts[id, default: 0] += 1 }
            }
        }
    }

    struct State {
        var snapshot = Snapshot()
        var fault: Fault?
        var faultRemaining: Int?
        var seenChunks: Set<[UInt8]> = []
        var server: (any Channel)?
        var port = 0
        var connections: [ObjectIdentifier: any Channel] = [:]
        var eventWatch: (count: Int, body: @Sendable () -> Void)?
    }

    public let configuration: Configuration
    /// The port it listens on (also after ``resumeListening()``).
    public var port: Int { self.state.withLock { $0.port } }
    let state: Mutex<State>
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?

    private init(configuration: Configuration, group: any EventLoopGroup, tls: NIOSSLContext?) {
        self.configuration = configuration
        self.group = group
        self.tls = tls
        self.state = Mutex(State())
    }

    /// Starts listening.
    public static func start(
        _ configuration: Configuration = Configuration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ForwardReceiver {
        var tls: NIOSSLContext?
        if let certificateFile = configuration.tlsCertificateFile, let keyFile = configuration.tlsKeyFile {
            let serverConfiguration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            )
            tls = try NIOSSLContext(configuration: serverConfiguration)
        }
        let receiver = ForwardReceiver(configuration: configuration, group: group, tls: tls)
        let server = try await receiver.bind(port: configuration.port)
        receiver.state.withLock {
            $0.server = server
            $0.port = server.localAddress?.port ?? configuration.port
        }
        return receiver
    }

    /// What the receiver has recorded so far.
    public var snapshot: Snapshot { self.state.withLock { $0.snapshot } }

    /// Makes the next `times` requests (every request while nil) misbehave; nil `fault` clears it.
    public func inject(_ fault: Fault?, times: Int? = 1) {
        self.state.withLock {
            $0.fault = fault
            $0.faultRemaining = fault == nil ? nil : times
        }
    }

    /// Calls `body` once, right after the request that brings ``Snapshot/uniqueEventCount`` to `count`
    /// is recorded and before it is acked (on the connection's event loop: keep it short). For
    /// benchmarks that time the delivery of a known number of events to the microsecond.
    public func notify(whenUniqueEventsReach count: Int, _ body: @escaping @Sendable () -> Void) {
        let reached = self.state.withLock { state in
            if state.snapshot.uniqueEventCount >= count { return true }
            state.eventWatch = (count, body)
            return false
        }
        if reached { body() }
    }

    /// Waits until `condition` holds for the snapshot, or `timeout` passes; returns whether it held.
    @discardableResult
    public func wait(
        timeout: Duration = .seconds(10),
        until condition: (Snapshot) -> Bool
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(self.snapshot) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(self.snapshot)
    }

    /// Stops accepting connections (clients get "connection refused") and, by default, closes the open
    /// ones, like a receiver that went down.
    public func stopListening(closeConnections: Bool = true) async {
        let (server, connections) = self.state.withLock { state in
            defer { state.server = nil }
            return (state.server, closeConnections ? Array(state.connections.values) : [])
        }
        for connection in connections { try? await connection.close() }
        if let server {
            try? await server.close()
        }
    }

    /// Listens again on the same port.
    public func resumeListening() async throws {
        let server = try await self.bind(port: self.port)
        self.state.withLock { $0.server = server }
    }

    /// Stops listening and closes every connection.
    public func stop() async {
        await self.stopListening(closeConnections: true)
    }

    private func bind(port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = self.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandler(ReceiverConnectionHandler(receiver: self))
                }
            }
            .bind(host: self.configuration.host, port: port)
            .get()
    }

    /// Takes the fault for one request, counting it down.
    func takeFault() -> Fault? {
        self.state.withLock { state in
            guard let fault = state.fault else { return nil }
            if let remaining = state.faultRemaining {
                if remaining <= 1 {
                    state.fault = nil
                    state.faultRemaining = nil
                } else {
                    state.faultRemaining = remaining - 1
                }
            }
            return fault
        }
    }

    /// Peeks at the fault without taking it.
    var pendingFault: Fault? { self.state.withLock { $0.fault } }

    func record(_ request: ReceivedRequest) {
        let watch = self.state.withLock { state -> (@Sendable () -> Void)? in
            if let chunk = request.chunk, !state.seenChunks.insert(chunk).inserted {
                state.snapshot.duplicateRequests += 1
            } else {
                state.snapshot.uniqueEventCount += request.eventCount
            }
            state.snapshot.requestCount += 1
            state.snapshot.eventCount += request.eventCount
            state.snapshot.byteCount += request.byteCount
            if self.configuration.recordEvents { state.snapshot.requests.append(request) }
            guard let watch = state.eventWatch, state.snapshot.uniqueEventCount >= watch.count else { return nil }
            state.eventWatch = nil
            return watch.body
        }
        watch?()
    }
}
