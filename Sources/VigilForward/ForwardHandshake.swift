/// The forward protocol's authentication handshake (server `HELO`, client `PING`, server `PONG`): the
/// messages and their SHA-512 digests. Nonces and salts are used as raw bytes, whether they travel as
/// `str` or `bin`.
public enum ForwardHandshake {
    /// What a server's `HELO` asks for.
    public struct Helo: Sendable, Equatable {
        public var nonce: [UInt8]
        /// Salt for the password digest; empty when the server does not authenticate users.
        public var auth: [UInt8]
        /// Whether the server keeps the connection open for further requests.
        public var keepalive: Bool

        public init(nonce: [UInt8], auth: [UInt8], keepalive: Bool) {
            self.nonce = nonce
            self.auth = auth
            self.keepalive = keepalive
        }
    }

    /// A client's `PING`.
    public struct Ping: Sendable, Equatable {
        public var clientHostname: String
        public var sharedKeySalt: [UInt8]
        public var sharedKeyDigest: String
        public var username: String
        public var passwordDigest: String

        public init(
            clientHostname: String,
            sharedKeySalt: [UInt8],
            sharedKeyDigest: String,
            username: String,
            passwordDigest: String
        ) {
            self.clientHostname = clientHostname
            self.sharedKeySalt = sharedKeySalt
            self.sharedKeyDigest = sharedKeyDigest
            self.username = username
            self.passwordDigest = passwordDigest
        }
    }

    /// A server's `PONG`.
    public struct Pong: Sendable, Equatable {
        public var authenticated: Bool
        public var reason: String
        public var serverHostname: String
        public var sharedKeyDigest: String

        public init(authenticated: Bool, reason: String, serverHostname: String, sharedKeyDigest: String) {
            self.authenticated = authenticated
            self.reason = reason
            self.serverHostname = serverHostname
            self.sharedKeyDigest = sharedKeyDigest
        }
    }

    /// `hex(SHA512(salt ‖ hostname ‖ nonce ‖ sharedKey))`: the PING digest with the client's hostname,
    /// the PONG digest with the server's.
    public static func sharedKeyDigest(salt: [UInt8], hostname: String, nonce: [UInt8], sharedKey: String) -> String {
        var hasher = SHA512()
        hasher.update(salt)
        hasher.update(hostname)
        hasher.update(nonce)
        hasher.update(sharedKey)
        return SHA512.hex(hasher.finalize())
    }

    /// `hex(SHA512(auth ‖ username ‖ password))`.
    public static func passwordDigest(auth: [UInt8], username: String, password: String) -> String {
        var hasher = SHA512()
        hasher.update(auth)
        hasher.update(username)
        hasher.update(password)
        return SHA512.hex(hasher.finalize())
    }

    /// Encodes `["HELO", {"nonce": bin, "auth": bin, "keepalive": bool}]`, as fluentd's in_forward does.
    public static func encode(_ helo: Helo) -> [UInt8] {
        var writer = MessagePackWriter()
        writer.writeArrayHeader(2)
        writer.writeString("HELO")
        writer.writeMapHeader(3)
        writer.writeString("nonce")
        writer.writeBinary(helo.nonce)
        writer.writeString("auth")
        writer.writeBinary(helo.auth)
        writer.writeString("keepalive")
        writer.writeBool(helo.keepalive)
        return writer.bytes
    }

    /// Encodes `["PING", hostname, salt, digest, username, password_digest]`; the salt goes as `str`
    /// (the client makes it printable), which every server accepts.
    public static func encode(_ ping: Ping) -> [UInt8] {
        var writer = MessagePackWriter()
        writer.writeArrayHeader(6)
        writer.writeString("PING")
        writer.writeString(ping.clientHostname)
        ping.sharedKeySalt.withUnsafeBytes { writer.writeString(utf8: $0) }
        writer.writeString(ping.sharedKeyDigest)
        writer.writeString(ping.username)
        writer.writeString(ping.passwordDigest)
        return writer.bytes
    }

    /// Encodes `["PONG", authenticated, reason, server_hostname, digest]`.
    public static func encode(_ pong: Pong) -> [UInt8] {
        var writer = MessagePackWriter()
        writer.writeArrayHeader(5)
        writer.writeString("PONG")
        writer.writeBool(pong.authenticated)
        writer.writeString(pong.reason)
        writer.writeString(pong.serverHostname)
        writer.writeString(pong.sharedKeyDigest)
        return writer.bytes
    }

    /// The PING a client sends in answer to `helo`.
    public static func ping(
        answering helo: Helo,
        hostname: String,
        salt: [UInt8],
        sharedKey: String,
        username: String?,
        password: String?
    ) -> Ping {
        let passwordDigest =
            username.map { self.passwordDigest(auth: helo.auth, username: $0, password: password ?? "") } ?? ""
        return Ping(
            clientHostname: hostname,
            sharedKeySalt: salt,
            sharedKeyDigest: self.sharedKeyDigest(
                salt: salt,
                hostname: hostname,
                nonce: helo.nonce,
                sharedKey: sharedKey
            ),
            username: username ?? "",
            passwordDigest: passwordDigest
        )
    }

    /// Reads a HELO; nil if the value is not one (so the caller can tell "no HELO" from "bad HELO").
    public static func helo(from value: MessagePackValue) throws(ForwardError) -> Helo? {
        guard let elements = value.arrayValue, elements.first == "HELO" else { return nil }
        guard elements.count == 2, case .map = elements[1] else {
            throw ForwardError(.invalidResponse, "invalid HELO: \(value)")
        }
        let options = elements[1]
        guard let nonce = options["nonce"]?.bytesValue else {
            throw ForwardError(.invalidResponse, "invalid HELO: no nonce")
        }
        let auth = options["auth"]?.bytesValue ?? []
        var keepalive = true
        if let value = options["keepalive"] {
            guard case .bool(let flag) = value else { throw ForwardError(.invalidResponse, "invalid HELO: keepalive") }
            keepalive = flag
        }
        return Helo(nonce: nonce, auth: auth, keepalive: keepalive)
    }

    /// Reads a PING strictly (exactly six elements of the right types).
    public static func ping(from value: MessagePackValue) throws(ForwardError) -> Ping {
        guard let elements = value.arrayValue, elements.count == 6, elements[0] == "PING",
            let hostname = elements[1].stringValue, let salt = elements[2].bytesValue,
            let digest = elements[3].stringValue, let username = elements[4].stringValue,
            let passwordDigest = elements[5].stringValue
        else { throw ForwardError(.invalidResponse, "invalid ping message: \(value)") }
        return Ping(
            clientHostname: hostname,
            sharedKeySalt: salt,
            sharedKeyDigest: digest,
            username: username,
            passwordDigest: passwordDigest
        )
    }

    /// Reads a PONG strictly (exactly five elements of the right types).
    public static func pong(from value: MessagePackValue) throws(ForwardError) -> Pong {
        guard let elements = value.arrayValue, elements.count == 5, elements[0] == "PONG",
            case .bool(let authenticated) = elements[1], let reason = elements[2].stringValue,
            let serverHostname = elements[3].stringValue, let digest = elements[4].stringValue
        else { throw ForwardError(.invalidResponse, "invalid PONG: \(value)") }
        return Pong(
            authenticated: authenticated,
            reason: reason,
            serverHostname: serverHostname,
            sharedKeyDigest: digest
        )
    }

    /// Checks a PONG as the client must: authenticated, from another host than this one, and with the
    /// digest only a server that knows the shared key can compute (mutual authentication).
    public static func verify(
        _ pong: Pong,
        helo: Helo,
        salt: [UInt8],
        selfHostname: String,
        sharedKey: String
    ) throws(ForwardError) {
        guard pong.authenticated else { throw ForwardError(.handshakeFailed, pong.reason) }
        guard pong.serverHostname != selfHostname else {
            throw ForwardError(
                .handshakeFailed,
                "server hostname '\(pong.serverHostname)' is this host's own: same hostname between input and output, invalid configuration"
            )
        }
        let expected = self.sharedKeyDigest(
            salt: salt,
            hostname: pong.serverHostname,
            nonce: helo.nonce,
            sharedKey: sharedKey
        )
        guard pong.sharedKeyDigest == expected else {
            throw ForwardError(.handshakeFailed, "PONG digest mismatch: the server does not know the shared key")
        }
    }
}
