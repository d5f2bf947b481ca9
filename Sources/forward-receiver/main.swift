import VigilForwardTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// forward-receiver: the strict forward-protocol receiver as a program, for benchmarks and manual tests.
/// Prints its counts once a second while they change.
let usage = """
    usage: forward-receiver [--listen HOST:PORT] [--shared-key KEY] [--user NAME:PASSWORD]...
                            [--hostname NAME] [--tls-cert FILE --tls-key FILE] [--record]
      --listen      address to listen on (default 127.0.0.1:24224)
      --shared-key  require the HELO/PING/PONG handshake with this key
      --user        with --shared-key: require user authentication (repeatable)
      --hostname    server hostname sent in PONG (default forward-receiver.test)
      --tls-cert, --tls-key  PEM certificate and key: TLS on every connection
      --record      keep every event in memory (default: counts only)
      --report-events N  print "reached N events at SECONDS" (CLOCK_MONOTONIC) as soon as N events
                    (resends not counted) have been received, before they are acked
    """

/// Writes a line unbuffered, so that a benchmark reading a pipe sees it at once.
func emit(_ line: String, to descriptor: Int32 = 1) {
    var text = line + "\n"
    text.withUTF8 { _ = write(descriptor, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    emit("forward-receiver: \(message)\n\(usage)", to: 2)
    exit(2)
}

var configuration = ForwardReceiver.Configuration(port: 24224, recordEvents: false)
var reportEvents: Int?
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    if flag == "--help" || flag == "-h" {
        print(usage)
        exit(0)
    }
    if flag == "--record" {
        configuration.recordEvents = true
        continue
    }
    let valueFlags: Set<String> = [
        "--listen", "--shared-key", "--user", "--hostname", "--tls-cert", "--tls-key", "--report-events",
    ]
    guard valueFlags.contains(flag) else { fail("unknown flag \(flag)") }
    guard let value = arguments.popFirst() else { fail("\(flag) needs a value") }
    switch flag {
    case "--listen":
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]) else {
            fail("--listen expects HOST:PORT, got \(value)")
        }
        configuration.host = String(value[..<colon])
        configuration.port = port
    case "--shared-key": configuration.sharedKey = value
    case "--user":
        guard let colon = value.firstIndex(of: ":") else { fail("--user expects NAME:PASSWORD") }
        configuration.users[String(value[..<colon])] = String(value[value.index(after: colon)...])
    case "--hostname": configuration.hostname = value
    case "--tls-cert": configuration.tlsCertificateFile = value
    case "--tls-key": configuration.tlsKeyFile = value
    case "--report-events":
        guard let count = Int(value), count > 0 else { fail("--report-events expects a positive count") }
        reportEvents = count
    default: fail("unknown flag \(flag)")
    }
}
if (configuration.tlsCertificateFile == nil) != (configuration.tlsKeyFile == nil) {
    fail("--tls-cert and --tls-key go together")
}

let receiver: ForwardReceiver
do {
    receiver = try await ForwardReceiver.start(configuration)
} catch {
    fail("cannot listen on \(configuration.host):\(configuration.port): \(error)")
}
emit("listening on \(configuration.host):\(receiver.port)")
if let reportEvents {
    receiver.notify(whenUniqueEventsReach: reportEvents) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let micros = String(Int(now.tv_nsec) / 1000)
        emit(
            "reached \(reportEvents) events at \(now.tv_sec).\(String(repeating: "0", count: 6 - micros.count) + micros)"
        )
    }
}
var last = ""
while true {
    try await Task.sleep(for: .seconds(1))
    let snapshot = receiver.snapshot
    let line =
        "requests \(snapshot.requestCount) events \(snapshot.eventCount) bytes \(snapshot.byteCount) duplicates \(snapshot.duplicateRequests) connections \(snapshot.connectionsAccepted) protocol_errors \(snapshot.protocolErrors.count) handshake_failures \(snapshot.handshakeFailures.count)"
    if line != last {
        emit(line)
        if let error = snapshot.protocolErrors.last { emit("last protocol error: \(error)") }
        last = line
    }
}
