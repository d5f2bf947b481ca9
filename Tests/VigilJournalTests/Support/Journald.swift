import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real systemd-journald serving a private journal namespace (`vigiltest…`), for tests.
///
/// `Journald.with { journald in … }` starts it, and stops it and removes its files, configuration and
/// sockets afterwards, also when the body throws. Entries go in as native-protocol datagrams (the
/// protocol `sd_journal_send` speaks), so any field name and any value — binary, huge, repeated — can be
/// written. A journald left behind by a crashed test run is killed by the next run (its pid is recorded
/// in `/tmp/vigil-journal-harness/`).
final class Journald: @unchecked Sendable {
    // @unchecked: the fields are set once in `start()`; `socket` is only used by `send`, which is
    // called from one test at a time.

    /// The namespace name (`vigiltest` and random hex).
    let namespace: String
    /// The directory journald writes its files to.
    let journalDirectory: String
    /// journald's own output, for failure messages.
    let logFile: String
    private let process = Process()
    private var socketFD: Int32 = -1

    private static let harnessDirectory = "/tmp/vigil-journal-harness"
    private static let journald = "/lib/systemd/systemd-journald"

    /// Starts journald (unless `started` is false: the body calls ``start()``), runs `body`, then stops
    /// journald and cleans up.
    static func with<T>(started: Bool = true, _ body: (Journald) async throws -> T) async throws -> T {
        let journald = try Journald()
        defer { journald.stop() }
        if started { try journald.start() }
        return try await body(journald)
    }

    private init() throws {
        Journald.killStale()
        self.namespace = "vigiltest" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let machineID = try String(contentsOfFile: "/etc/machine-id", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        self.journalDirectory = "/run/log/journal/\(machineID).\(self.namespace)"
        self.logFile = "\(Journald.harnessDirectory)/\(self.namespace).log"
    }

    var socketPath: String { "/run/systemd/journal.\(self.namespace)/socket" }
    private var configurationFile: String { "/etc/systemd/journald@\(self.namespace).conf" }
    private var pidFile: String { "\(Journald.harnessDirectory)/\(self.namespace).pid" }

    /// Starts journald and waits until it takes entries and has created its journal file.
    func start() throws {
        try FileManager.default.createDirectory(atPath: Journald.harnessDirectory, withIntermediateDirectories: true)
        // Volatile storage keeps test journals off /var/log; no rate limit, so that tests can write fast.
        try "[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nRuntimeMaxFileSize=64M\n"
            .write(toFile: self.configurationFile, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: self.logFile, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: self.logFile))
        self.process.executableURL = URL(fileURLWithPath: Journald.journald)
        self.process.arguments = [self.namespace]
        self.process.standardOutput = log
        self.process.standardError = log
        try self.process.run()
        try "\(self.process.processIdentifier) \(getpid())\n".write(
            toFile: self.pidFile,
            atomically: true,
            encoding: .utf8
        )
        let deadline = Date().addingTimeInterval(10)
        while access(self.socketPath, F_OK) != 0 || access(self.journalDirectory + "/system.journal", F_OK) != 0 {
            guard Date() < deadline, self.process.isRunning else {
                throw HarnessError("journald did not create \(self.socketPath): \(self.journaldOutput)")
            }
            usleep(10_000)
        }
        self.socketFD = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard self.socketFD >= 0 else { throw HarnessError("socket: \(errno)") }
        // Large datagrams carry large values in one piece (root may exceed wmem_max).
        var size: Int32 = 64 << 20
        setsockopt(self.socketFD, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Stops journald and removes everything it and the harness created.
    func stop() {
        if self.socketFD >= 0 { close(self.socketFD) }
        if self.process.isRunning {
            self.process.terminate()
            self.process.waitUntilExit()
        }
        for path in [
            self.journalDirectory, "/run/systemd/journal.\(self.namespace)", self.configurationFile, self.pidFile,
            self.logFile,
        ] {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    var journaldOutput: String { (try? String(contentsOfFile: self.logFile, encoding: .utf8)) ?? "" }

    /// Sends one entry. Values that are not single-line text go in the length-prefixed binary form.
    func send(_ fields: [(String, [UInt8])]) throws {
        var datagram: [UInt8] = []
        for (name, value) in fields {
            datagram += Array(name.utf8)
            let plain = value.count < 4096 && !value.contains(0x0A) && String(validating: value, as: UTF8.self) != nil
            if plain {
                datagram.append(UInt8(ascii: "="))
                datagram += value
            } else {
                datagram.append(0x0A)
                withUnsafeBytes(of: UInt64(value.count).littleEndian) { datagram += $0 }
                datagram += value
            }
            datagram.append(0x0A)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            let bytes = Array(self.socketPath.utf8)
            path.copyBytes(from: bytes.prefix(path.count - 1))
        }
        let sent = datagram.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(
                        self.socketFD,
                        buffer.baseAddress,
                        buffer.count,
                        0,
                        $0,
                        socklen_t(MemoryLayout<sockaddr_un>.size)
                    )
                }
            }
        }
        guard sent == datagram.count else { throw HarnessError("sendto: \(String(cString: strerror(errno)))") }
    }

    /// Sends an entry of text fields.
    func send(_ fields: [(String, String)]) throws {
        try self.send(fields.map { ($0.0, Array($0.1.utf8)) })
    }

    /// The namespace's entries as journalctl exports them (the oracle the reader is compared with),
    /// optionally only those matching `FIELD=value` matches.
    func exported(_ matches: [String] = []) throws -> [ExportedEntry] {
        let output = try run(
            "/usr/bin/journalctl",
            ["--namespace=\(self.namespace)", "-o", "export", "--all"] + matches
        )
        return try parseExport(output)
    }

    /// Waits until journald has stored `count` entries matching `matches`, and returns them.
    @discardableResult
    func waitForEntries(
        _ count: Int,
        matching matches: [String],
        timeout: TimeInterval = 20
    ) async throws
        -> [ExportedEntry]
    {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let entries = try self.exported(matches)
            if entries.count >= count { return entries }
            guard Date() < deadline else {
                throw HarnessError("journald stored \(entries.count) of \(count) entries; \(self.journaldOutput)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Asks journald to start new files (the current ones become archived).
    func rotate() throws {
        _ = try run("/usr/bin/journalctl", ["--namespace=\(self.namespace)", "--rotate"])
    }

    /// Deletes archived files of this namespace only, keeping `keep` files.
    func vacuum(keepFiles keep: Int) throws {
        _ = try run("/usr/bin/journalctl", ["--directory=\(self.journalDirectory)", "--vacuum-files=\(keep)"])
    }

    /// Kills journald processes started by test runs that no longer exist.
    private static func killStale() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: harnessDirectory) else { return }
        for name in names where name.hasSuffix(".pid") {
            let path = "\(harnessDirectory)/\(name)"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let pids = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int32($0) }
            guard pids.count == 2, kill(pids[1], 0) != 0 else { continue }  // its test run is still alive
            let namespace = String(name.dropLast(4))
            let command = (try? String(contentsOfFile: "/proc/\(pids[0])/cmdline", encoding: .utf8)) ?? ""
            if command.hasPrefix(journald) && command.contains(namespace) { kill(pids[0], SIGKILL) }
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: "\(harnessDirectory)/\(namespace).log")
            try? FileManager.default.removeItem(atPath: "/etc/systemd/journald@\(namespace).conf")
            try? FileManager.default.removeItem(atPath: "/run/systemd/journal.\(namespace)")
            if let machineID = try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8) {
                let id = machineID.trimmingCharacters(in: .whitespacesAndNewlines)
                try? FileManager.default.removeItem(atPath: "/run/log/journal/\(id).\(namespace)")
            }
        }
    }
}

/// A failure of the test harness itself.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One entry of journalctl's export format: fields in order, values as bytes.
struct ExportedEntry {
    var fields: [(name: String, value: [UInt8])]

    /// The values of a field, in order.
    func values(_ name: String) -> [[UInt8]] { self.fields.filter { $0.name == name }.map(\.value) }

    func text(_ name: String) -> String? { self.values(name).first.map { String(decoding: $0, as: UTF8.self) } }

    /// `__REALTIME_TIMESTAMP`, microseconds.
    var realtime: UInt64 { UInt64(self.text("__REALTIME_TIMESTAMP") ?? "") ?? 0 }

    var cursor: String { self.text("__CURSOR") ?? "" }

    /// The fields a reader returns: without the export format's own `__` fields.
    var dataFields: [(name: String, value: [UInt8])] { self.fields.filter { !$0.name.hasPrefix("__") } }
}

/// Parses journalctl's export format (`NAME=value` lines, or `NAME`, a 64-bit little-endian length and
/// the raw value; entries separated by an empty line).
func parseExport(_ data: [UInt8]) throws -> [ExportedEntry] {
    var entries: [ExportedEntry] = []
    var current = ExportedEntry(fields: [])
    var index = 0
    while index < data.count {
        if data[index] == 0x0A {
            if !current.fields.isEmpty { entries.append(current) }
            current = ExportedEntry(fields: [])
            index += 1
            continue
        }
        guard let lineEnd = data[index...].firstIndex(of: 0x0A) else { throw HarnessError("export: truncated line") }
        let line = data[index..<lineEnd]
        if let equals = line.firstIndex(of: UInt8(ascii: "=")) {
            current.fields.append((String(decoding: line[..<equals], as: UTF8.self), Array(line[(equals + 1)...])))
            index = lineEnd + 1
        } else {
            let lengthStart = lineEnd + 1
            guard lengthStart + 8 <= data.count else { throw HarnessError("export: truncated length") }
            var length: UInt64 = 0
            for offset in 0..<8 { length |= UInt64(data[lengthStart + offset]) << (8 * offset) }
            let valueStart = lengthStart + 8
            let valueEnd = valueStart + Int(length)
            guard valueEnd < data.count else { throw HarnessError("export: truncated value") }
            current.fields.append((String(decoding: line, as: UTF8.self), Array(data[valueStart..<valueEnd])))
            index = valueEnd + 1
        }
    }
    if !current.fields.isEmpty { entries.append(current) }
    return entries
}

/// Runs a program and returns its standard output; throws when it fails.
@discardableResult
func run(_ program: String, _ arguments: [String], input: [UInt8]? = nil) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    let inputPipe = input.map { _ in Pipe() }
    if let inputPipe { process.standardInput = inputPipe }
    try process.run()
    if let input, let inputPipe {
        inputPipe.fileHandleForWriting.write(Data(input))
        try inputPipe.fileHandleForWriting.close()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw HarnessError("\(program) \(arguments.joined(separator: " ")) failed: \(errorText)")
    }
    return Array(data)
}
