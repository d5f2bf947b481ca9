import Foundation
import Synchronization

@testable import Collectors

/// A real systemd, booted in a private PID + mount namespace by `Tests/Support/boot-systemd.sh` (see
/// DESIGN.md, "Real components"), running the units a test gives it.
///
/// Commands run inside with `nsenter -t PID -m -p`; the namespace shares the network namespace, so a
/// vigil started inside is scraped from outside on loopback. ``stop()`` — called on deinit too, so a
/// failing test cleans up as well — kills the namespace's PID 1 with SIGKILL (SIGTERM does not stop it)
/// and waits until the boot script has removed its control groups. Should the test process die, the
/// script kills the namespace on its own within a second.
final class NamespacedSystemd: @unchecked Sendable {
    // @unchecked: the Process is only read; `stopped` is behind a lock.
    /// Booting needs root, util-linux's `unshare`/`nsenter`, systemd and dbus.
    static var isSupported: Bool {
        getuid() == 0
            && ["/usr/bin/unshare", "/usr/bin/nsenter", "/lib/systemd/systemd", "/usr/bin/dbus-daemon"].allSatisfy {
                FileManager.default.isExecutableFile(atPath: $0)
            }
    }

    /// The repository's root, from this file's path.
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The vigil binary to test: `$VIGIL_BINARY`, or the debug build.
    static var vigilBinary: String {
        ProcessInfo.processInfo.environment["VIGIL_BINARY"] ?? packageRoot + "/.build/debug/vigil"
    }

    /// The namespace's PID 1 as the host sees it.
    let pid: Int32
    /// A private directory under /tmp (`/tmp/vigil-systemd-…`) for units and logs; removed by ``stop()``.
    let directory: String
    private let boot: Process
    private let stopped = Mutex(false)

    /// The system bus of the namespace, reachable from outside through PID 1's root.
    var systemBus: BusEndpoint { .bus(address: "unix:path=/proc/\(self.pid)/root/run/dbus/system_bus_socket") }

    /// Boots systemd with `units` (file name → contents) and waits until `target` is active.
    ///
    /// - Parameter units: every unit needs `DefaultDependencies=no` (there is no sysinit.target); the
    ///   target's `Wants=` names the units to start.
    init(units: [String: String], target: String, timeout: Duration = .seconds(60)) throws {
        self.directory = try makeTemporaryDirectory()
        let unitDirectory = self.directory + "/units"
        try FileManager.default.createDirectory(atPath: unitDirectory, withIntermediateDirectories: true)
        for (name, contents) in units {
            try contents.write(toFile: unitDirectory + "/" + name, atomically: true, encoding: .utf8)
        }

        let boot = Process()
        boot.executableURL = URL(fileURLWithPath: Self.packageRoot + "/Tests/Support/boot-systemd.sh")
        boot.arguments = [unitDirectory, target]
        let output = Pipe()
        boot.standardOutput = output
        boot.standardError = try FileHandle(forWritingTo: Self.create(self.directory + "/boot.log"))
        try boot.run()
        self.boot = boot

        // The script's first line names PID 1.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("pid="), let pid = Int32(text.dropFirst(4).prefix { $0.isNumber }) else {
            boot.waitUntilExit()
            let log = (try? String(contentsOfFile: self.directory + "/boot.log", encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: self.directory)
            throw HarnessError("boot-systemd.sh did not start systemd: \(text) \(log)")
        }
        self.pid = pid

        do {
            try self.waitUntil(timeout: timeout, "\(target) is active and the system bus is up") {
                let target = try? self.show(target, ["ActiveState"])
                let bus = try? self.show("dbus.service", ["ActiveState"])
                return target?["ActiveState"] == "active" && bus?["ActiveState"] == "active"
            }
        } catch {
            self.stop()
            throw error
        }
    }

    deinit {
        self.stop()
    }

    /// Kills the namespace (SIGKILL to its PID 1), waits for the boot script to clean up, and removes
    /// the directory.
    func stop() {
        guard
            !self.stopped.withLock({ stopped in
                defer { stopped = true }
                return stopped
            })
        else { return }
        kill(self.pid, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(15)
        while self.boot.isRunning && ContinuousClock.now < deadline {
            usleep(20_000)
        }
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    /// Runs a command inside the namespace and returns its standard output.
    @discardableResult
    func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["-t", String(self.pid), "-m", "-p"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HarnessError("\(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// `systemctl show UNIT -p …` inside the namespace (timestamps as Unix seconds); an empty unit
    /// name shows the manager.
    func show(_ unit: String, _ properties: [String]) throws -> [String: String] {
        try self.show(units: unit.isEmpty ? [] : [unit], properties).first ?? [:]
    }

    /// `systemctl show` of several units in one call: one dictionary per unit, in order.
    func show(units: [String], _ properties: [String]) throws -> [[String: String]] {
        var arguments = ["systemctl", "show", "--timestamp=unix"]
        for property in properties { arguments += ["-p", property] }
        // "--": unit names may start with a dash (-.mount, -.slice).
        let output = try self.run(arguments + ["--"] + units)
        // Units are separated by an empty line.
        return output.components(separatedBy: "\n\n").map { block in
            var values: [String: String] = [:]
            for line in block.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                values[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            return values
        }
    }

    /// Starts a long-running command inside the namespace (it dies with the namespace), its output
    /// going to `log` in the directory.
    func spawn(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["-t", String(self.pid), "-m", "-p"] + arguments
        let handle = try FileHandle(forWritingTo: Self.create(self.directory + "/" + log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// Starts the vigil binary inside the namespace with only the systemd collector (and `extra` flags),
    /// listening on 127.0.0.1:`port`, and waits until it answers; `wrapper` runs it (e.g. `setpriv`).
    func startVigil(
        port: Int,
        extra: [String] = [],
        log: String = "vigil.log",
        wrapper: [String] = []
    ) throws -> Process {
        let vigil = try self.spawn(
            wrapper + [
                try self.installVigil(), "--collector.disable-defaults", "--collector.systemd",
                "--web.listen-address=127.0.0.1:\(port)",
            ] + extra,
            log: log
        )
        try self.waitUntil(timeout: .seconds(30), "vigil listens on \(port)") {
            guard vigil.isRunning else { throw HarnessError("vigil exited: \(self.read(log))") }
            return (try? httpGet(port: port, path: "/")) != nil
        }
        return vigil
    }

    /// Copies the vigil binary into the namespace's private /run once and returns its path there: the
    /// build directory may be hidden inside (a checkout under /tmp lies under the private /tmp).
    func installVigil() throws -> String {
        let inside = "/run/vigil-under-test"
        let outside = "/proc/\(self.pid)/root" + inside
        if !FileManager.default.fileExists(atPath: outside) {
            try FileManager.default.copyItem(atPath: Self.vigilBinary, toPath: outside)
        }
        return inside
    }

    /// The contents of a file in the directory.
    func read(_ name: String) -> String {
        (try? String(contentsOfFile: self.directory + "/" + name, encoding: .utf8)) ?? ""
    }

    /// Polls `condition` every 50 ms until it holds.
    func waitUntil(timeout: Duration, _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while try !condition() {
            guard ContinuousClock.now < deadline else { throw HarnessError("timed out waiting until \(what)") }
            usleep(50_000)
        }
    }

    private static func create(_ path: String) -> URL {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return URL(fileURLWithPath: path)
    }
}

/// Runs blocking work (process waits, sleeps, socket reads) on a thread of its own, so that it does not
/// hold one of the few threads of Swift's cooperative pool that the tests of every suite share.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result(catching: work)) }
    }
}

/// A new private directory `/tmp/vigil-systemd-XXXXXX`.
func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/vigil-systemd-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!).map { String(cString: $0) } }
    guard let made else { throw HarnessError("mkdtemp failed: \(String(cString: strerror(errno)))") }
    return made
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
