import Foundation
import Logging
import Testing
import VigilCore

@testable import VigilAgent

/// The package's root directory, from this file's path.
let packageRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
}()

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory(_ prefix: String = "vigil-test") throws -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Parses a command line as `vigil` would, expecting a run.
func loadConfiguration(_ arguments: [String]) throws -> LoadedConfiguration {
    guard case .run(let configuration) = try ConfigurationLoader().invocation(arguments: arguments) else {
        throw TestFailure("not a run invocation")
    }
    return configuration
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An agent running in the test process on a free loopback port.
final class RunningAgent: Sendable {
    let agent: Agent
    let port: Int
    private let task: Task<Void, any Error>

    init(_ arguments: [String]) async throws {
        let configuration = try loadConfiguration(["--web.listen-address=127.0.0.1:0"] + arguments)
        let agent = try Agent(configuration: configuration, logger: Logger(label: "test"))
        self.agent = agent
        self.task = Task { try await agent.run(handlingSignals: false) }
        self.port = await agent.listeningPorts()[0]
    }

    func get(_ path: String, headers: [String: String] = [:]) async throws -> HTTPResponse {
        let port = self.port
        return try await runBlocking { try httpGet(port: port, path: path, headers: headers) }
    }

    /// Shuts the agent down gracefully and waits for it to stop.
    func stop() async throws {
        await self.agent.shutdown()
        try await self.task.value
    }
}

/// Runs `body` against an agent started with `arguments`, and stops the agent afterwards, also when
/// `body` throws.
func withAgent<T>(_ arguments: [String] = [], _ body: (RunningAgent) async throws -> T) async throws -> T {
    let agent = try await RunningAgent(arguments)
    do {
        let result = try await body(agent)
        try await agent.stop()
        return result
    } catch {
        try? await agent.stop()
        throw error
    }
}

struct HTTPResponse {
    let status: Int
    let headers: [String: String]
    let body: [UInt8]

    var text: String { String(decoding: self.body, as: UTF8.self) }
}

/// Runs blocking work (sockets, child processes) on a pool thread: blocking Swift's cooperative pool
/// (one thread per core) would stall the agent under test in the same process.
func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        BlockingPool.shared.submit { continuation.resume(with: Result { try work() }) }
    }
}

/// A blocking HTTP/1.1 GET on loopback with `Connection: close`, enough for tests.
func httpGet(
    host: String = "127.0.0.1",
    port: Int,
    path: String,
    headers: [String: String] = [:]
) throws -> HTTPResponse {
    let fd = try sendGet(host: host, port: port, path: path, headers: headers)
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &chunk, chunk.count, 0)
        if count <= 0 { break }
        data.append(contentsOf: chunk[0..<count])
    }
    guard let end = data.firstRange(of: Array("\r\n\r\n".utf8)) else { throw TestFailure("no HTTP header in response") }
    let head = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let status = Int(head[0].split(separator: " ")[1]) ?? 0
    var responseHeaders: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        responseHeaders[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
            in: .whitespaces
        )
    }
    var body = Array(data[end.upperBound...])
    if responseHeaders["transfer-encoding"] == "chunked" { body = try dechunk(body) }
    return HTTPResponse(status: status, headers: responseHeaders, body: body)
}

/// Connects to a loopback server and sends a GET with `Connection: close`; returns the socket.
private func sendGet(host: String, port: Int, path: String, headers: [String: String]) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, host, &address.sin_addr)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        close(fd)
        throw TestFailure("connect to \(port) failed: errno \(errno)")
    }
    var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
    for (name, value) in headers { request += "\(name): \(value)\r\n" }
    request += "\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    return fd
}

/// A GET whose client goes away after the first bytes of the response (a scraper that timed out).
func abandonedGet(host: String = "127.0.0.1", port: Int, path: String) throws {
    let fd = try sendGet(host: host, port: port, path: path, headers: [:])
    defer { close(fd) }
    var chunk = [UInt8](repeating: 0, count: 4096)
    guard recv(fd, &chunk, chunk.count, 0) > 0 else { throw TestFailure("no response") }
}

/// Decodes an HTTP/1.1 chunked body (Go's servers send one for large responses).
private func dechunk(_ data: [UInt8]) throws -> [UInt8] {
    var body: [UInt8] = []
    var rest = data[...]
    while let lineEnd = rest.firstRange(of: Array("\r\n".utf8)) {
        let sizeField = rest[..<lineEnd.lowerBound].split(separator: UInt8(ascii: ";")).first ?? []
        guard let size = Int(String(decoding: sizeField, as: UTF8.self), radix: 16) else {
            throw TestFailure("bad chunk size")
        }
        if size == 0 { break }
        let start = lineEnd.upperBound
        guard rest.endIndex >= start + size else { throw TestFailure("truncated chunk") }
        body.append(contentsOf: rest[start..<(start + size)])
        rest = rest[(start + size + 2)...]
    }
    return body
}

/// A port that is free now (bound and released), for servers the tests start.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw TestFailure("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A child process (Prometheus, node_exporter, promtool) killed when the value goes away.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: Process is used from one test at a time.
    let process = Process()
    let outputPath: String

    init(_ executable: String, _ arguments: [String], directory: String) throws {
        self.outputPath = directory + "/" + (executable as NSString).lastPathComponent + ".log"
        _ = FileManager.default.createFile(atPath: self.outputPath, contents: nil)
        let output = FileHandle(forWritingAtPath: self.outputPath)!
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = arguments
        self.process.standardOutput = output
        self.process.standardError = output
        try self.process.run()
    }

    var output: String { (try? String(contentsOfFile: self.outputPath, encoding: .utf8)) ?? "" }

    func stop() {
        if self.process.isRunning {
            self.process.terminate()
            self.process.waitUntilExit()
        }
    }

    deinit { self.stop() }
}

/// Runs a command to completion with `input` on standard input; returns its exit status and output.
func runCommand(
    _ executable: String,
    _ arguments: [String],
    input: [UInt8] = []
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stdout
    try process.run()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(30), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? condition()) == true { return true }
        try await Task.sleep(for: .milliseconds(250))
    }
    return false
}
