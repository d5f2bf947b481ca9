#if canImport(Glibc)
import Glibc
#endif

/// Where and how the journal forwarder sends its batches: the `forward:` section of the configuration
/// file. The defaults follow fluentd's out_forward.
public struct ForwardConfiguration: Sendable {
    /// TLS towards one target (fluentd's `transport tls`).
    public struct TLS: Sendable {
        /// PEM file of the CA certificates to trust; the system's trust store when nil.
        public var caFile: String?
        /// PEM client certificate (chain), for servers that require one.
        public var certFile: String?
        /// PEM private key of `certFile`.
        public var keyFile: String?
        /// The name the server's certificate must carry (and the SNI sent); the target's host when nil.
        public var serverName: String?
        /// Whether to verify the server's certificate chain and name (never turn off outside tests).
        public var verify: Bool = true

        public init(
            caFile: String? = nil,
            certFile: String? = nil,
            keyFile: String? = nil,
            serverName: String? = nil,
            verify: Bool = true
        ) {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
            self.serverName = serverName
            self.verify = verify
        }
    }

    /// One receiver (fluentd's `<server>`).
    public struct Target: Sendable {
        public var host: String
        public var port: Int = 24224
        /// The target's name in logs and metric labels; `host:port` when nil.
        public var name: String?
        /// Share of batches in weighted round robin; 0 excludes the target.
        public var weight: Int = 60
        /// Used only while regular targets are unavailable, to cover their lost weight.
        public var standby: Bool = false
        /// TLS settings; plain TCP when nil.
        public var tls: TLS?
        /// Shared key for the HELO/PING/PONG handshake; overrides the configuration's `sharedKey`.
        public var sharedKey: String?
        /// User name for the handshake's user authentication (needs a shared key).
        public var username: String?
        public var password: String?

        public init(
            host: String,
            port: Int = 24224,
            name: String? = nil,
            weight: Int = 60,
            standby: Bool = false,
            tls: TLS? = nil,
            sharedKey: String? = nil,
            username: String? = nil,
            password: String? = nil
        ) {
            self.host = host
            self.port = port
            self.name = name
            self.weight = weight
            self.standby = standby
            self.tls = tls
            self.sharedKey = sharedKey
            self.username = username
            self.password = password
        }

        /// How the target appears in logs and in the `target` metric label.
        public var label: String { self.name ?? "\(self.host):\(self.port)" }
    }

    /// How `entries` travel: PackedForward (`text`) or CompressedPackedForward (`gzip`).
    public enum Compression: String, Sendable {
        case text, gzip
    }

    public var targets: [Target]
    /// The name this node gives in the handshake; a server with the same name is refused.
    public var selfHostname: String
    /// Shared key for targets without their own.
    public var sharedKey: String?
    public var compression: Compression = .text
    /// How long to wait for the ack of a batch before the connection is dropped and the batch resent.
    public var ackTimeout: Duration = .seconds(30)
    /// How long a TCP connect, the TLS handshake and the forward handshake may take, each.
    public var connectTimeout: Duration = .seconds(10)
    /// How often every target is probed with a connect (+ handshake), fluentd's `transport` heartbeat.
    public var heartbeatInterval: Duration = .seconds(1)
    /// A target without a successful heartbeat for this long is marked down.
    public var hardTimeout: Duration = .seconds(60)
    /// A down target comes back after successful heartbeats for this long.
    public var recoverWait: Duration = .seconds(10)
    /// The first wait before a failed batch is sent again; doubles (with jitter) up to `maxRetryWait`.
    public var retryWait: Duration = .seconds(1)
    public var maxRetryWait: Duration = .seconds(60)
    /// The largest `entries` a batch may have; keep it well below the receivers' `chunk_size_limit`,
    /// which silently drops larger requests (no ack, endless resends).
    public var maxBatchBytes: Int = 1_024_000
    /// Whether a connection is kept open after a clean ack and used for the next batch (the server's
    /// HELO may refuse it). fluentd's default is one connection per batch.
    public var keepalive: Bool = true
    /// A kept-open connection idle for longer than this is closed rather than used again (middleboxes
    /// drop idle connections silently, which would cost an ack timeout).
    public var keepaliveTimeout: Duration = .seconds(30)

    public init(
        targets: [Target],
        selfHostname: String = ForwardConfiguration.hostname(),
        sharedKey: String? = nil,
        compression: Compression = .text,
        ackTimeout: Duration = .seconds(30),
        connectTimeout: Duration = .seconds(10),
        heartbeatInterval: Duration = .seconds(1),
        hardTimeout: Duration = .seconds(60),
        recoverWait: Duration = .seconds(10),
        retryWait: Duration = .seconds(1),
        maxRetryWait: Duration = .seconds(60),
        maxBatchBytes: Int = 1_024_000,
        keepalive: Bool = true,
        keepaliveTimeout: Duration = .seconds(30)
    ) {
        self.targets = targets
        self.selfHostname = selfHostname
        self.sharedKey = sharedKey
        self.compression = compression
        self.ackTimeout = ackTimeout
        self.connectTimeout = connectTimeout
        self.heartbeatInterval = heartbeatInterval
        self.hardTimeout = hardTimeout
        self.recoverWait = recoverWait
        self.retryWait = retryWait
        self.maxRetryWait = maxRetryWait
        self.maxBatchBytes = maxBatchBytes
        self.keepalive = keepalive
        self.keepaliveTimeout = keepaliveTimeout
    }

    /// This machine's host name (`gethostname`), the default `selfHostname`.
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
