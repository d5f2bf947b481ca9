import NIOCore
import Synchronization
import VigilForward

/// The server side of one forward-protocol connection: handshake when a shared key is configured, then
/// requests, each validated, recorded and acked (or mistreated, as the receiver's fault says).
final class ReceiverConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case awaitingPing(ForwardHandshake.Helo)
        case transport
        case closed
    }

    private let receiver: ForwardReceiver
    private var phase: Phase = .transport
    private var pending: [UInt8] = []
    private var answered = 0

    init(receiver: ForwardReceiver) {
        self.receiver = receiver
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        self.receiver.state.withLock {
            $0.snapshot.connectionsAccepted += 1
            $0.connections[ObjectIdentifier(channel)] = channel
        }
        if self.receiver.configuration.sharedKey != nil {
            let helo = ForwardHandshake.Helo(
                nonce: randomBytes(16),
                auth: randomBytes(16),
                keepalive: self.receiver.configuration.keepalive
            )
            self.phase = .awaitingPing(helo)
            self.write(ForwardHandshake.encode(helo), context: context)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let channel = context.channel
        self.phase = .closed
        _ = self.receiver.state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        if case .transport = self.phase, self.pending.isEmpty, self.receiver.pendingFault == .closeMidRequest,
            buffer.readableBytesView.first != 0xC0
        {
            _ = self.receiver.takeFault()
            self.receiver.state.withLock { $0.snapshot.requestsCutOff += 1 }
            self.close(context: context)
            return
        }
        self.pending.append(contentsOf: buffer.readableBytesView)
        var start = 0
        while case .awaitingPing = self.phase, start < self.pending.count, self.next(&start, context: context) {}
        while case .transport = self.phase, start < self.pending.count, self.next(&start, context: context) {}
        if start > 0 { self.pending.removeFirst(min(start, self.pending.count)) }
    }

    /// Handles the next complete message from `start`; false when it is incomplete or the connection ended.
    private func next(_ start: inout Int, context: ChannelHandlerContext) -> Bool {
        let length: Int
        do {
            guard let complete = try MessagePackReader.lengthOfFirstValue(in: self.pending[start...]) else {
                return false
            }
            length = complete
        } catch {
            self.protocolError("\(error)", context: context)
            return false
        }
        let message = self.pending[start..<start + length]
        start += length
        switch self.phase {
        case .awaitingPing(let helo):
            self.answerPing(message, helo: helo, context: context)
        case .transport:
            // A lone nil is the TCP heartbeat: ignored.
            if message.count == 1 && message.first == 0xC0 { return true }
            self.handleRequest(message, context: context)
        case .closed:
            return false
        }
        if case .closed = self.phase { return false }
        return true
    }

    private func answerPing(_ message: ArraySlice<UInt8>, helo: ForwardHandshake.Helo, context: ChannelHandlerContext) {
        let configuration = self.receiver.configuration
        let sharedKey = configuration.sharedKey ?? ""
        let ping: ForwardHandshake.Ping
        do {
            var reader = MessagePackReader(message)
            ping = try ForwardHandshake.ping(from: try reader.readValue())
        } catch {
            self.refuse("invalid ping message", context: context)
            return
        }
        let expected = ForwardHandshake.sharedKeyDigest(
            salt: ping.sharedKeySalt,
            hostname: ping.clientHostname,
            nonce: helo.nonce,
            sharedKey: sharedKey
        )
        guard ping.sharedKeyDigest == expected else {
            self.refuse("shared_key mismatch", context: context)
            return
        }
        if !configuration.users.isEmpty {
            let password = configuration.users[ping.username]
            let digest = password.map {
                ForwardHandshake.passwordDigest(auth: helo.auth, username: ping.username, password: $0)
            }
            guard let digest, digest == ping.passwordDigest else {
                self.refuse("username/password mismatch", context: context)
                return
            }
        }
        let pong = ForwardHandshake.Pong(
            authenticated: true,
            reason: "",
            serverHostname: configuration.hostname,
            sharedKeyDigest: ForwardHandshake.sharedKeyDigest(
                salt: ping.sharedKeySalt,
                hostname: configuration.hostname,
                nonce: helo.nonce,
                sharedKey: sharedKey
            )
        )
        self.write(ForwardHandshake.encode(pong), context: context)
        self.phase = .transport
    }

    private func refuse(_ reason: String, context: ChannelHandlerContext) {
        self.receiver.state.withLock { $0.snapshot.handshakeFailures.append(reason) }
        let pong = ForwardHandshake.Pong(authenticated: false, reason: reason, serverHostname: "", sharedKeyDigest: "")
        self.write(ForwardHandshake.encode(pong), context: context)
        self.close(context: context)
    }

    private func handleRequest(_ message: ArraySlice<UInt8>, context: ChannelHandlerContext) {
        let request: ReceivedRequest
        do {
            request = try ForwardRequestParser.parse(message, keepEvents: self.receiver.configuration.recordEvents)
        } catch {
            self.protocolError(error.description, context: context)
            return
        }
        let fault = self.receiver.takeFault()
        self.receiver.record(request)
        self.answered += 1
        let configuration = self.receiver.configuration
        let closeAfter =
            !configuration.keepalive || configuration.closeAfterRequests.map { self.answered >= $0 } ?? false
        guard let chunk = request.chunk else {
            if closeAfter { self.close(context: context) }
            return
        }
        var ack = chunk
        switch fault {
        case .dropAck?:
            return
        case .wrongAck?:
            ack = Array(base64Encode(randomBytes(16)).utf8)
        case .delayAck(let delay)?:
            let channel = context.channel
            let bytes = Self.ackBytes(ack)
            context.eventLoop.scheduleTask(in: TimeAmount(delay)) { [receiver] in
                receiver.state.withLock { $0.snapshot.acksSent += 1 }
                channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
                if closeAfter { channel.close(promise: nil) }
            }
            return
        case .closeMidRequest?, nil:
            break
        }
        self.receiver.state.withLock { $0.snapshot.acksSent += 1 }
        self.write(Self.ackBytes(ack), context: context)
        if closeAfter { self.close(context: context) }
    }

    /// `{"ack": chunk}` with the chunk's bytes as a str, exactly as received.
    private static func ackBytes(_ chunk: [UInt8]) -> [UInt8] {
        var writer = MessagePackWriter()
        writer.writeMapHeader(1)
        writer.writeString("ack")
        chunk.withUnsafeBytes { writer.writeString(utf8: $0) }
        return writer.bytes
    }

    private func protocolError(_ description: String, context: ChannelHandlerContext) {
        self.receiver.state.withLock { $0.snapshot.protocolErrors.append(description) }
        self.close(context: context)
    }

    private func write(_ bytes: [UInt8], context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
    }

    private func close(context: ChannelHandlerContext) {
        self.phase = .closed
        context.close(promise: nil)
    }
}

private func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}
