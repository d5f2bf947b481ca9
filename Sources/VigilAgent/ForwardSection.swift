import VigilCore
import VigilForward

/// Reads the configuration file's `forward:` section into a ``ForwardConfiguration``; `--forward.target`
/// flags, when given, replace its `targets`.
///
/// ```yaml
/// forward:
///   targets:
///     - 10.0.0.5:24224                  # HOST:PORT, or a mapping:
///     - host: logs.example.com
///       port: 24224
///       name: central
///       weight: 60
///       standby: false
///       tls: {ca_file: /etc/vigil/ca.pem, cert_file: …, key_file: …, server_name: …, verify: true}
///       shared_key_file: forward-key    # or shared_key; relative names are in $CREDENTIALS_DIRECTORY
///       username: vigil
///       password_file: forward-password # or password
///   self_hostname: node-1
///   shared_key_file: forward-key
///   compression: gzip                   # or text
///   ack_timeout: 30s
///   connect_timeout: 10s
///   heartbeat_interval: 1s
///   hard_timeout: 60s
///   recover_wait: 10s
///   retry_wait: 1s
///   max_retry_wait: 60s
///   max_batch_bytes: 1024000
///   keepalive: true
///   keepalive_timeout: 30s
/// ```
///
/// Returns nil when no target is configured: vigil then forwards nothing.
func parseForwardSection(
    _ node: YAMLNode?,
    flagTargets: [String],
    settings: Settings,
    parser: SectionParser
) -> ForwardConfiguration? {
    var configuration = ForwardConfiguration(targets: [])
    var fileTargets: [ForwardConfiguration.Target] = []
    if let node, let section = parser.mapping(node, path: "forward") {
        fileTargets =
            parser.list(section, "targets") { item, path in parseTarget(item, path: path, parser: parser) } ?? []
        if let name = parser.string(section, "self_hostname") {
            if name.isEmpty { parser.error(in: section, "self_hostname", "must not be empty") }
            configuration.selfHostname = name
        }
        configuration.sharedKey = parser.secret(section, "shared_key")
        if let compression = parser.choice(section, "compression", ["text", "gzip"]) {
            configuration.compression = ForwardConfiguration.Compression(rawValue: compression) ?? .text
        }
        if let value = parser.duration(section, "ack_timeout") { configuration.ackTimeout = value }
        if let value = parser.duration(section, "connect_timeout") { configuration.connectTimeout = value }
        if let value = parser.duration(section, "heartbeat_interval") { configuration.heartbeatInterval = value }
        if let value = parser.duration(section, "hard_timeout") { configuration.hardTimeout = value }
        if let value = parser.duration(section, "recover_wait") { configuration.recoverWait = value }
        if let value = parser.duration(section, "retry_wait") { configuration.retryWait = value }
        if let value = parser.duration(section, "max_retry_wait") { configuration.maxRetryWait = value }
        if configuration.maxRetryWait < configuration.retryWait {
            parser.error(in: section, "max_retry_wait", "must not be shorter than retry_wait")
        }
        if let value = parser.integer(section, "max_batch_bytes", in: 1024...(256 << 20)) {
            configuration.maxBatchBytes = value
        }
        if let value = parser.bool(section, "keepalive") { configuration.keepalive = value }
        if let value = parser.duration(section, "keepalive_timeout") { configuration.keepaliveTimeout = value }
        parser.finish(section)
    }
    configuration.targets = fileTargets
    if !fileTargets.isEmpty, !fileTargets.contains(where: { !$0.standby && $0.weight > 0 }), let node {
        parser.error(node.line, "forward.targets", "needs a target that is not standby and has a weight above 0")
    }
    if !flagTargets.isEmpty {
        configuration.targets = []
        for text in flagTargets {
            guard let (host, port) = parseHostPort(text) else {
                parser.add(settings.error(AgentOption.forwardTarget, "\"\(text)\" is not HOST:PORT"))
                continue
            }
            configuration.targets.append(ForwardConfiguration.Target(host: host, port: port))
        }
    }
    return configuration.targets.isEmpty ? nil : configuration
}

private func parseTarget(_ node: YAMLNode, path: String, parser: SectionParser) -> ForwardConfiguration.Target? {
    if case .scalar(let text, let line, _) = node {
        guard let (host, port) = parseHostPort(text) else {
            parser.error(line, path, "\"\(text)\" is not HOST:PORT")
            return nil
        }
        return ForwardConfiguration.Target(host: host, port: port)
    }
    guard let mapping = parser.mapping(node, path: path) else { return nil }
    defer { parser.finish(mapping) }
    let host = parser.string(mapping, "host") ?? ""
    if host.isEmpty { parser.error(mapping.line, mapping.key("host"), "every target needs a host") }
    var target = ForwardConfiguration.Target(host: host)
    if let port = parser.integer(mapping, "port", in: 1...65535) { target.port = port }
    target.name = parser.string(mapping, "name")
    if let weight = parser.integer(mapping, "weight", in: 0...1_000_000) { target.weight = weight }
    if let standby = parser.bool(mapping, "standby") { target.standby = standby }
    if let tlsMapping = parser.child(mapping, "tls") {
        var tls = ForwardConfiguration.TLS()
        for key in ["ca_file", "cert_file", "key_file"] {
            guard let file = parser.string(tlsMapping, key) else { continue }
            if (try? readWholeFile(file)) == nil { parser.error(in: tlsMapping, key, "cannot read \(file)") }
            switch key {
            case "ca_file": tls.caFile = file
            case "cert_file": tls.certFile = file
            default: tls.keyFile = file
            }
        }
        if (tls.certFile == nil) != (tls.keyFile == nil) {
            parser.error(in: tlsMapping, "cert_file", "cert_file and key_file go together")
        }
        tls.serverName = parser.string(tlsMapping, "server_name")
        if let verify = parser.bool(tlsMapping, "verify") { tls.verify = verify }
        parser.finish(tlsMapping)
        target.tls = tls
    }
    target.sharedKey = parser.secret(mapping, "shared_key")
    target.username = parser.string(mapping, "username")
    target.password = parser.secret(mapping, "password")
    if (target.username == nil) != (target.password == nil) {
        parser.error(in: mapping, target.username == nil ? "password" : "username", "username and password go together")
    }
    return host.isEmpty ? nil : target
}

/// `HOST:PORT`, `[IPv6]:PORT`, or a host alone (port 24224).
func parseHostPort(_ text: String) -> (String, Int)? {
    var host = text
    var port = 24224
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]") else { return nil }
        host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        if !rest.isEmpty {
            guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { return nil }
            port = value
        }
    } else if let colon = text.lastIndex(of: ":") {
        guard text.firstIndex(of: ":") == colon, let value = Int(text[text.index(after: colon)...]) else { return nil }
        host = String(text[..<colon])
        port = value
    }
    guard !host.isEmpty, (1...65535).contains(port) else { return nil }
    return (host, port)
}
