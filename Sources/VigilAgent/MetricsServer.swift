import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import VigilCore

/// A `--web.listen-address` value: `HOST:PORT`, `:PORT` (every address) or `[IPv6]:PORT`.
struct ListenAddress: Equatable {
    let host: String?
    let port: Int

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? nil : host
        self.port = port
    }
}

/// Counts scrapes in flight and refuses those beyond the limit (node_exporter's `--web.max-requests`).
final class RequestLimiter: Sendable {
    let limit: Int
    private let inFlight = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    func tryAcquire() -> Bool {
        let now = self.inFlight.wrappingAdd(1, ordering: .relaxed).newValue
        if self.limit > 0 && now > self.limit {
            self.inFlight.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func release() { self.inFlight.wrappingSubtract(1, ordering: .relaxed) }

    var current: Int { self.inFlight.load(ordering: .relaxed) }
}

/// The HTTP endpoint: `/metrics` (or `--web.telemetry-path`), a landing page at `/`, and `/healthz`.
final class MetricsServer: Service {
    private let addresses: [ListenAddress]
    private let telemetryPath: String
    private let scraper: Scraper
    private let limiter: RequestLimiter
    private let group: any EventLoopGroup
    private let logger: Logger
    private let boundAddresses = Mutex<[SocketAddress]>([])
    private let ready = Mutex<[CheckedContinuation<[SocketAddress], Never>]>([])

    init(
        addresses: [ListenAddress],
        telemetryPath: String,
        maxRequests: Int,
        scraper: Scraper,
        group: any EventLoopGroup,
        logger: Logger
    ) {
        self.addresses = addresses
        self.telemetryPath = telemetryPath
        self.scraper = scraper
        self.limiter = RequestLimiter(limit: maxRequests)
        self.group = group
        self.logger = logger
    }

    /// The addresses actually bound (port 0 resolves to a free port), once the server listens.
    func listeningAddresses() async -> [SocketAddress] {
        await withCheckedContinuation { continuation in
            let bound: [SocketAddress]? = self.ready.withLock { waiters in
                let bound = self.boundAddresses.withLock { $0 }
                if bound.count == self.addresses.count { return bound }
                waiters.append(continuation)
                return nil
            }
            if let bound { continuation.resume(returning: bound) }
        }
    }

    func run() async throws {
        let routes = Routes(
            telemetryPath: self.telemetryPath,
            scraper: self.scraper,
            limiter: self.limiter,
            logger: self.logger
        )
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 256)
            // NIO sets TCP_NODELAY on the listening socket, which accepted ones inherit. (As a socket
            // option it would be SOL_SOCKET's option 1, SO_DEBUG, refused to all but root.)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPHandler(routes: routes))
                }
            }
        var channels: [any Channel] = []
        do {
            for address in self.addresses {
                let channel = try await Self.bind(bootstrap, address)
                channels.append(channel)
                self.logger.info(
                    "Listening on",
                    metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"]
                )
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        let listeners = channels
        let bound = listeners.compactMap(\.localAddress)
        self.boundAddresses.withLock { $0 = bound }
        for waiter in self.ready.withLock({ waiters in
            defer { waiters = [] }
            return waiters
        }) {
            waiter.resume(returning: bound)
        }
        await withTaskCancellationOrGracefulShutdownHandler {
            for channel in listeners { try? await channel.closeFuture.get() }
        } onCancelOrGracefulShutdown: {
            for channel in listeners { channel.close(promise: nil) }
        }
        // Let scrapes in flight finish, for 5 s at most: their collectors are bounded by the collector
        // timeout, but a streamed response goes only as fast as its scraper reads.
        var waited = 0
        while self.limiter.current > 0 && waited < 100 {
            try? await Task.sleep(for: .milliseconds(50))
            waited += 1
        }
    }

    private static func bind(_ bootstrap: ServerBootstrap, _ address: ListenAddress) async throws -> any Channel {
        if let host = address.host {
            return try await bootstrap.bind(host: host, port: address.port).get()
        }
        // ":PORT" means every address; prefer a dual-stack IPv6 socket, as Go does.
        do {
            return try await bootstrap.bind(host: "::", port: address.port).get()
        } catch {
            return try await bootstrap.bind(host: "0.0.0.0", port: address.port).get()
        }
    }
}

/// What the endpoint serves, shared by all connections.
struct Routes: Sendable {
    let telemetryPath: String
    let scraper: Scraper
    let limiter: RequestLimiter
    let logger: Logger

    var landingPage: String {
        """
        <!DOCTYPE html>
        <html>
        <head><title>vigil</title></head>
        <body>
        <h1>vigil</h1>
        <p>Host, container and systemd unit metrics for Prometheus; journal forwarding to Fluentd.</p>
        <ul>
        <li><a href="\(self.telemetryPath)">Metrics</a></li>
        <li><a href="/healthz">Health</a></li>
        </ul>
        <p>Version \(vigilVersion)</p>
        </body>
        </html>

        """
    }
}

/// One HTTP/1.1 connection: routes each request and writes the response, keeping the connection alive
/// when the client asks for it.
private final class HTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: Routes
    private var request: HTTPRequestHead?

    init(routes: Routes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.request = head
        case .body:
            break
        case .end:
            guard let head = self.request else { return }
            self.request = nil
            self.handle(head, context: context)
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let (path, query) = splitTarget(head.uri)
        guard head.method == .GET || head.method == .HEAD else {
            self.respond(
                context,
                head,
                status: .methodNotAllowed,
                contentType: "text/plain; charset=utf-8",
                body: "Method not allowed\n"
            )
            return
        }
        switch path {
        case self.routes.telemetryPath:
            self.serveMetrics(head, query: query, context: context)
        case "/":
            self.respond(
                context,
                head,
                status: .ok,
                contentType: "text/html; charset=utf-8",
                body: self.routes.landingPage
            )
        case "/healthz":
            self.respond(
                context,
                head,
                status: .ok,
                contentType: "text/plain; charset=utf-8",
                body: "OK\n"
            )
        default:
            self.respond(
                context,
                head,
                status: .notFound,
                contentType: "text/plain; charset=utf-8",
                body: "404 page not found\n"
            )
        }
    }

    private func serveMetrics(_ head: HTTPRequestHead, query: [(String, String)], context: ChannelHandlerContext) {
        let routes = self.routes
        guard routes.limiter.tryAcquire() else {
            let message = "Limit of concurrent requests reached (\(routes.limiter.limit)), try again later.\n"
            self.respond(
                context,
                head,
                status: .serviceUnavailable,
                contentType: "text/plain; charset=utf-8",
                body: message
            )
            return
        }
        let selection: [Int]
        do {
            selection = try routes.scraper.select(
                collect: query.filter { $0.0 == "collect[]" }.map(\.1),
                exclude: query.filter { $0.0 == "exclude[]" }.map(\.1)
            )
        } catch {
            routes.limiter.release()
            self.respond(
                context,
                head,
                status: .badRequest,
                contentType: "text/plain; charset=utf-8",
                body: "\(error.description)\n"
            )
            return
        }
        let format = ExpositionFormat.negotiate(accept: head.headers.first(name: "accept"))
        let gzip = acceptsGzip(head.headers.first(name: "accept-encoding"))
        // Prometheus tells how long it waits; answer a little before that.
        let announced = head.headers.first(name: "x-prometheus-scrape-timeout-seconds").flatMap(Double.init)
        let timeout = announced.map { Duration.milliseconds(Int64(max(0.1, $0 - 0.25) * 1000)) }
        let promise = context.eventLoop.makePromise(of: Scraper.Output.self)
        routes.scraper.scrape(format: format, selection: selection, timeout: timeout) { promise.succeed($0) }
        promise.futureResult.assumeIsolated().whenSuccess { output in
            self.send(output, head, gzip: gzip, context: context) {
                routes.limiter.release()
                ResidentMemory.releaseStartupPages()
                ResidentMemory.trimHeapSoon(on: context.eventLoop)
            }
        }
    }

    /// Sends a scrape's exposition in chunks, each written once the previous one has gone to the
    /// socket: the streamed part of a big output (a thousand containers) is written only as fast as the
    /// scraper reads it, and never held whole. The body is chunked (HTTP/1.1) or ends with the
    /// connection (HTTP/1.0), as node_exporter's.
    private func send(
        _ output: Scraper.Output,
        _ head: HTTPRequestHead,
        gzip: Bool,
        context: ChannelHandlerContext,
        finished: @escaping () -> Void
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: output.format.contentType)
        if gzip { headers.add(name: "Content-Encoding", value: "gzip") }
        // Without a length, an HTTP/1.0 body ends when the connection does.
        let keepAlive = head.isKeepAlive && (head.version.major, head.version.minor) >= (1, 1)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let response = HTTPResponseHead(version: head.version, status: .ok, headers: headers)
        context.write(self.wrapOutboundOut(.head(response)), promise: nil)
        let sender = ExpositionSender(output, gzip: gzip && head.method != .HEAD, scraper: self.routes.scraper)
        let loop = context.eventLoop.assumeIsolated()
        // An output held whole in memory goes out at once; a streamed one is written chunk by chunk as the
        // socket takes it.
        let paced = output.isStreamed
        func sendNext() {
            while head.method != .HEAD, let chunk = sender.nextChunk(context.channel.allocator) {
                guard paced else {
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
                    continue
                }
                context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(chunk)))).assumeIsolated()
                    .whenComplete { result in
                        switch result {
                        case .success:
                            // Through the loop, not recursively: other connections get their turn between
                            // chunks.
                            loop.execute { sendNext() }
                        case .failure:
                            // The scraper went away; what is left is dropped.
                            finished()
                            context.close(promise: nil)
                        }
                    }
                return
            }
            let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
            finished()
            if !keepAlive { written.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
        }
        sendNext()
    }

    private func respond(
        _ context: ChannelHandlerContext,
        _ head: HTTPRequestHead,
        status: HTTPResponseStatus,
        contentType: String,
        body: String
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let response = HTTPResponseHead(version: head.version, status: status, headers: headers)
        context.write(self.wrapOutboundOut(.head(response)), promise: nil)
        if head.method != .HEAD {
            let buffer = context.channel.allocator.buffer(string: body)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// Cuts a scrape's exposition into the chunks of a response body: each collector's buffer as it is,
/// streamed families written a chunk at a time; with gzip, all of it compressed as one stream into
/// chunks of about the same size.
private final class ExpositionSender {
    /// Text per chunk: big enough that the writes cost little, small enough that a chunk and the
    /// `ByteBuffer` it is copied into (rounded up to a power of two) stay on malloc's heap, below the
    /// 256 KiB from which blocks are mapped on their own and faulted in anew each time.
    static let chunkSize = 64 << 10

    private var parts: ArraySlice<Scraper.Output.Part>
    /// Where streamed families are written, a chunk at a time; with gzip, also where collectors' buffers
    /// are gathered for one call into the compressor, which costs less than a call for each.
    private var writer: MetricWriter
    private let gzip: Gzip.Stream?
    private var compressed: [UInt8]
    private let scraper: Scraper
    private var finished = false

    init(_ output: Scraper.Output, gzip: Bool, scraper: Scraper) {
        self.parts = output.parts[...]
        // Both buffers come from the scraper's pool of response buffers and go back to it.
        self.writer = MetricWriter(format: output.format, reusing: scraper.takeBuffer(from: .response))
        self.gzip = gzip ? Gzip.Stream() : nil
        self.compressed = gzip ? scraper.takeBuffer(from: .response) : []
        self.scraper = scraper
    }

    deinit {
        self.scraper.recycle(self.writer.takeBytes(), to: .response)
        self.scraper.recycle(self.compressed, to: .response)
        for case .bytes(let bytes) in self.parts { self.scraper.recycle(bytes) }
    }

    /// The next chunk of the body, or nil when all has been given.
    func nextChunk(_ allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard !self.finished else { return nil }
        guard let gzip = self.gzip else {
            let chunk = self.withNextText { allocator.buffer(bytes: $0) }
            self.finished = chunk == nil
            return chunk
        }
        self.compressed.removeAll(keepingCapacity: true)
        while self.compressed.count < Self.chunkSize / 4 && !self.parts.isEmpty {
            // Collectors' buffers are gathered first; a chunk of streamed families is big enough alone.
            self.writer.removeAll()
            while self.writer.count < Self.chunkSize, case .bytes? = self.parts.first {
                _ = self.withNextText { self.writer.append(contentsOf: $0) }
            }
            if self.writer.count == 0 {
                _ = self.withNextText { gzip.compress($0, final: self.parts.isEmpty, appendingTo: &self.compressed) }
            } else {
                gzip.compress(self.writer.bytes, final: self.parts.isEmpty, appendingTo: &self.compressed)
            }
        }
        self.finished = self.parts.isEmpty
        return allocator.buffer(bytes: self.compressed)
    }

    /// Hands the next piece of text to `body`: a collector's buffer (given back to the scraper
    /// afterwards), or a chunk of streamed families. Nil when all has been handed.
    private func withNextText<T>(_ body: ([UInt8]) -> T) -> T? {
        guard let part = self.parts.first else { return nil }
        switch part {
        case .bytes(let bytes):
            self.parts.removeFirst()
            defer { self.scraper.recycle(bytes) }
            return body(bytes)
        case .streamed(var families):
            self.writer.removeAll()
            let done = families.write(into: &self.writer, until: Self.chunkSize)
            self.parts[self.parts.startIndex] = .streamed(families)
            if done { self.parts.removeFirst() }
            return body(self.writer.bytes)
        }
    }
}

/// Splits a request target into its path and decoded query parameters.
func splitTarget(_ uri: String) -> (path: String, query: [(String, String)]) {
    guard let questionMark = uri.firstIndex(of: "?") else { return (uri, []) }
    let path = String(uri[..<questionMark])
    var query: [(String, String)] = []
    for pair in uri[uri.index(after: questionMark)...].split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let name = percentDecode(parts[0])
        let value = parts.count > 1 ? percentDecode(parts[1]) : ""
        query.append((name, value))
    }
    return (path, query)
}

private func percentDecode(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    var utf8 = text.utf8[...]
    while let byte = utf8.popFirst() {
        if byte == UInt8(ascii: "+") {
            bytes.append(UInt8(ascii: " "))
        } else if byte == UInt8(ascii: "%"), utf8.count >= 2,
            let value = ArraySlice(utf8.prefix(2)).parseHex()
        {
            bytes.append(UInt8(value))
            utf8 = utf8.dropFirst(2)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Whether an `Accept-Encoding` header admits gzip (and does not refuse it with `q=0`).
func acceptsGzip(_ header: String?) -> Bool {
    guard let header else { return false }
    for coding in header.split(separator: ",") {
        let parts = coding.split(separator: ";").map { $0.trimmingSpaces() }
        guard let name = parts.first, name == "gzip" || name == "*" else { continue }
        if parts.dropFirst().contains(where: { $0 == "q=0" || $0 == "q=0.0" || $0 == "q=0.00" || $0 == "q=0.000" }) {
            continue
        }
        return true
    }
    return false
}
