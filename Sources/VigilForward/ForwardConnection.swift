import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One client connection to a forward target, established: TCP connected, TLS negotiated, and the
/// HELO/PING/PONG handshake done when the target needs one.
///
/// It sends one request at a time and waits for its ack. Any failure — timeout, end of stream, garbage,
/// a wrong ack — closes the connection for good: a later response on it could be taken for the ack of
/// another batch (fluentd#3361).
final class ForwardConnection: Sendable {
    /// How to reach and authenticate with one target.
    struct Endpoint: Sendable {
        let label: String
        let host: String
        let port: Int
        let tls: NIOSSLContext?
        /// Name for SNI and certificate checks; nil checks the peer's IP address.
        let serverHostname: String?
        let sharedKey: String?
        let username: String?
        let password: String?
        let selfHostname: String
    }

    private let channel: any Channel
    private let handler: NIOLoopBound<ResponseHandler>
    let label: String
    /// Whether the server lets the connection carry further requests (its HELO's `keepalive`).
    let serverAllowsKeepalive: Bool

    private init(channel: any Channel, handler: NIOLoopBound<ResponseHandler>, label: String, keepalive: Bool) {
        self.channel = channel
        self.handler = handler
        self.label = label
        self.serverAllowsKeepalive = keepalive
    }

    /// Connects, negotiates TLS and does the forward handshake, each step bounded by `timeout`.
    static func establish(
        to endpoint: Endpoint,
        timeout: Duration,
        group: any EventLoopGroup
    ) async throws -> ForwardConnection {
        let channel: any Channel
        let slot = HandlerSlot()
        do {
            let connecting = ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(timeout))  // and TCP_NODELAY, which NIO sets
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let context = endpoint.tls {
                            let tls = try NIOSSLClientHandler(context: context, serverHostname: endpoint.serverHostname)
                            try channel.pipeline.syncOperations.addHandler(tls)
                        }
                        let handler = ResponseHandler()
                        try channel.pipeline.syncOperations.addHandler(handler)
                        slot.handler.withLock { $0 = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
            // A connect cannot be cancelled; on cancellation stop waiting for it, and close the channel
            // should it still succeed.
            let connected = connecting.eventLoop.makePromise(of: (any Channel).self)
            connecting.cascade(to: connected)
            connected.futureResult.whenFailure { _ in connecting.whenSuccess { $0.close(promise: nil) } }
            channel = try await withTaskCancellationHandler {
                try await connected.futureResult.get()
            } onCancel: {
                connected.fail(CancellationError())
            }
        } catch {
            throw ForwardError(
                .connectFailed,
                "connect to \(endpoint.label) failed: \(describeConnectError(error))",
                cause: error
            )
        }
        // Taken from the initializer rather than looked up in the pipeline: the server may have closed
        // the channel (emptying its pipeline) already, and the handler knows why.
        guard let handler = slot.handler.withLock({ $0 }) else {
            channel.close(promise: nil)
            throw ForwardError(.connectFailed, "connect to \(endpoint.label) failed: channel not initialized")
        }
        let connection = ForwardConnection(channel: channel, handler: handler, label: endpoint.label, keepalive: true)
        do {
            if endpoint.tls != nil {
                try await connection.awaitTLSHandshake(timeout: timeout)
            }
            guard let sharedKey = endpoint.sharedKey else { return connection }
            let keepalive = try await connection.handshake(endpoint: endpoint, sharedKey: sharedKey, timeout: timeout)
            return ForwardConnection(channel: channel, handler: handler, label: endpoint.label, keepalive: keepalive)
        } catch {
            connection.close()
            throw error
        }
    }

    /// Whether the connection is still open and holds no unread bytes, i.e. may carry another request.
    var isReusable: Bool {
        get async {
            (try? await self.channel.eventLoop.submit { [handler] in handler.value.isClean }.get()) ?? false
        }
    }

    /// Sends one request and waits for the ack naming `chunkID`.
    func send(_ frame: ByteBuffer, chunkID: String, ackTimeout: Duration) async throws {
        do {
            try await self.channel.writeAndFlush(frame)
        } catch {
            self.close()
            throw ForwardError(.connectionClosed, "sending to \(self.label) failed: \(error)", cause: error)
        }
        let response = try await self.receive(timeout: ackTimeout, awaiting: "ack")
        do {
            try Self.checkAck(response, chunkID: chunkID, label: self.label)
        } catch {
            self.close()
            throw error
        }
    }

    func close() {
        self.channel.close(promise: nil)
    }

    /// Checks that `response` is `{"ack": chunkID}`, byte for byte; the ack may be `str` or `bin`.
    static func checkAck(_ response: MessagePackValue, chunkID: String, label: String) throws(ForwardError) {
        if (try? ForwardHandshake.helo(from: response)) != nil {
            throw ForwardError(
                .handshakeFailed,
                "handshake with \(label) failed: the server requires authentication (sent HELO) but no shared_key is configured"
            )
        }
        guard case .map(let entries) = response, entries.count == 1, let ack = response["ack"] else {
            throw ForwardError(.invalidResponse, "invalid response from \(label): \(response)")
        }
        guard let bytes = ack.bytesValue else {
            throw ForwardError(.invalidResponse, "invalid ack from \(label): \(ack)")
        }
        guard bytes.elementsEqual(chunkID.utf8) else {
            throw ForwardError(
                .ackMismatch,
                "ack from \(label) does not match: sent chunk \(chunkID), got ack \(String(decoding: bytes, as: UTF8.self))"
            )
        }
    }

    private func awaitTLSHandshake(timeout: Duration) async throws {
        let promise = self.channel.eventLoop.makePromise(of: Void.self)
        self.channel.eventLoop.execute { [handler, channel, label] in
            handler.value.awaitTLS(promise)
            let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                handler.value.fail(ForwardError(.tlsFailed, "TLS handshake with \(label) timed out after \(timeout)"))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        do {
            try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                self.close()
            }
        } catch let error as ForwardError {
            throw error
        } catch {
            throw ForwardError(
                .tlsFailed,
                "TLS handshake with \(self.label) failed: \(describeTLSError(error))",
                cause: error
            )
        }
    }

    /// HELO → PING → PONG; returns whether the server allows keepalive.
    private func handshake(endpoint: Endpoint, sharedKey: String, timeout: Duration) async throws -> Bool {
        let greeting = try await self.receive(timeout: timeout, awaiting: "HELO")
        guard let helo = try ForwardHandshake.helo(from: greeting) else {
            throw ForwardError(.handshakeFailed, "handshake with \(self.label) failed: expected HELO, got \(greeting)")
        }
        // A printable salt (fluentd's SecureRandom.hex(16)): 16 random bytes, hex-encoded.
        var generator = SystemRandomNumberGenerator()
        let salt = Array(SHA512.hex((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }).utf8)
        let ping = ForwardHandshake.ping(
            answering: helo,
            hostname: endpoint.selfHostname,
            salt: salt,
            sharedKey: sharedKey,
            username: endpoint.username,
            password: endpoint.password
        )
        do {
            try await self.channel.writeAndFlush(ByteBuffer(bytes: ForwardHandshake.encode(ping)))
        } catch {
            throw ForwardError(.connectionClosed, "handshake with \(self.label) failed: \(error)", cause: error)
        }
        let answer = try await self.receive(timeout: timeout, awaiting: "PONG")
        do {
            let pong = try ForwardHandshake.pong(from: answer)
            try ForwardHandshake.verify(
                pong,
                helo: helo,
                salt: salt,
                selfHostname: endpoint.selfHostname,
                sharedKey: sharedKey
            )
        } catch {
            throw ForwardError(.handshakeFailed, "handshake with \(self.label) failed: \(error.message)")
        }
        return helo.keepalive
    }

    /// Waits for the next complete MessagePack value from the server.
    private func receive(timeout: Duration, awaiting what: String) async throws -> MessagePackValue {
        let promise = self.channel.eventLoop.makePromise(of: MessagePackValue.self)
        self.channel.eventLoop.execute { [handler, channel, label] in
            handler.value.awaitValue(promise)
            let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                let code: ForwardError.Code = what == "ack" ? .ackTimeout : .handshakeFailed
                handler.value.fail(ForwardError(code, "no \(what) from \(label) within \(timeout)"))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        do {
            return try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                self.close()
            }
        } catch {
            self.close()
            if let error = error as? ForwardError { throw error }
            if let error = error as? MessagePackError {
                throw ForwardError(.invalidResponse, "invalid response from \(self.label): \(error)", cause: error)
            }
            if error is NIOSSLError {
                throw ForwardError(
                    .tlsFailed,
                    "TLS with \(self.label) failed: \(describeTLSError(error))",
                    cause: error
                )
            }
            throw ForwardError(
                .connectionClosed,
                "connection to \(self.label) closed while waiting for \(what): \(error)",
                cause: error
            )
        }
    }
}

/// The reason of a failed connect, without NIO's wrapping: "Connection refused", "timed out after …".
private func describeConnectError(_ error: any Error) -> String {
    if let error = error as? NIOConnectionError {
        if let dnsError = error.dnsAError ?? error.dnsAAAAError, error.connectionErrors.isEmpty {
            return "DNS lookup of \(error.host) failed: \(dnsError)"
        }
        var reasons: [String] = []
        for failure in error.connectionErrors {
            let reason = describeConnectError(failure.error)
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        return reasons.isEmpty ? "\(error)" : reasons.joined(separator: "; ")
    }
    if let error = error as? IOError {
        return String(cString: strerror(error.errnoCode))
    }
    if let error = error as? ChannelError, case .connectTimeout(let timeout) = error {
        return "timed out after \(Duration.nanoseconds(timeout.nanoseconds))"
    }
    return "\(error)"
}

/// BoringSSL's reason codes (`CERTIFICATE_VERIFY_FAILED`) rather than NIOSSL's full error stack.
private func describeTLSError(_ error: any Error) -> String {
    let text = "\(error)"
    var reasons: [Substring] = []
    var rest = text[...]
    while let range = rest.firstRange(of: "OPENSSL_internal:") {
        rest = rest[range.upperBound...]
        let reason = rest.prefix { $0 != " " && $0 != "]" && $0 != ")" && $0 != "," }
        if !reason.isEmpty && !reasons.contains(reason) { reasons.append(reason) }
    }
    return reasons.isEmpty ? text : reasons.joined(separator: ", ")
}

/// Hands a connection's handler from the channel initializer to ``ForwardConnection/establish``.
private final class HandlerSlot: Sendable {
    let handler = Mutex<NIOLoopBound<ResponseHandler>?>(nil)
}

/// Collects the server's bytes and hands out complete MessagePack values to whoever waits for one.
/// Runs on the channel's event loop only.
private final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var pending: [UInt8] = []
    private var waiting: EventLoopPromise<MessagePackValue>?
    private var tlsWaiting: EventLoopPromise<Void>?
    private var tlsDone = false
    /// Set once the connection is unusable; every later wait fails with it.
    private var failure: (any Error)?

    var isClean: Bool { self.failure == nil && self.pending.isEmpty }

    func awaitValue(_ promise: EventLoopPromise<MessagePackValue>) {
        precondition(self.waiting == nil, "one request at a time per connection")
        self.waiting = promise
        self.deliver()
    }

    func awaitTLS(_ promise: EventLoopPromise<Void>) {
        if self.tlsDone {
            promise.succeed()
        } else if let failure = self.failure {
            promise.fail(failure)
        } else {
            self.tlsWaiting = promise
        }
    }

    /// Makes the connection unusable and fails whoever waits.
    func fail(_ error: any Error) {
        if self.failure == nil { self.failure = error }
        let failure = self.failure!
        self.waiting.take()?.fail(failure)
        self.tlsWaiting.take()?.fail(failure)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        self.pending.append(contentsOf: buffer.readableBytesView)
        self.deliver()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            self.tlsDone = true
            self.tlsWaiting.take()?.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(error)
        context.close(promise: nil)
    }

    private func deliver() {
        guard let waiting = self.waiting else { return }
        if !self.pending.isEmpty {
            do {
                if let length = try MessagePackReader.lengthOfFirstValue(in: self.pending[...]) {
                    var reader = MessagePackReader(self.pending[..<length])
                    let value = try reader.readValue()
                    self.pending.removeFirst(length)
                    self.waiting = nil
                    waiting.succeed(value)
                    return
                }
            } catch {
                self.fail(error)
                return
            }
        }
        if let failure = self.failure {
            self.waiting = nil
            waiting.fail(failure)
        }
    }
}
