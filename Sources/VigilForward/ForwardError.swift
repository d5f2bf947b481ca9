/// Why sending to a forward target failed, or why the forwarder cannot start.
public struct ForwardError: Error, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case connectFailed, tlsFailed, handshakeFailed, ackTimeout, connectionClosed, ackMismatch
            case invalidResponse, batchTooLarge, configuration
        }
        private let base: Base

        /// TCP connect failed or timed out (refused, unreachable, unknown host).
        public static let connectFailed = Code(base: .connectFailed)
        /// The TLS handshake failed (untrusted certificate, wrong name, protocol version).
        public static let tlsFailed = Code(base: .tlsFailed)
        /// The HELO/PING/PONG handshake failed (shared key or user mismatch, bad PONG digest).
        public static let handshakeFailed = Code(base: .handshakeFailed)
        /// No ack within `ackTimeout`.
        public static let ackTimeout = Code(base: .ackTimeout)
        /// The server closed the connection (or it broke) before the expected response.
        public static let connectionClosed = Code(base: .connectionClosed)
        /// The ack names another chunk than the one sent.
        public static let ackMismatch = Code(base: .ackMismatch)
        /// The server sent something that is not a valid response.
        public static let invalidResponse = Code(base: .invalidResponse)
        /// The batch's entries exceed `maxBatchBytes`: a bug in the caller, which must split batches.
        public static let batchTooLarge = Code(base: .batchTooLarge)
        /// The forward configuration cannot be used (unreadable TLS files, no targets).
        public static let configuration = Code(base: .configuration)

        public var description: String { "\(self.base)" }
    }

    public let code: Code
    public let message: String
    /// The underlying error (NIO, TLS), if any.
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { self.message }
}
