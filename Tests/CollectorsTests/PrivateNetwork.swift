import Foundation
import Testing
import VigilCore

@testable import Collectors

/// Whether this test may create network namespaces and mount sysfs (root, with the tools).
func canCreateNetworkNamespaces() -> Bool {
    getuid() == 0
        && ["/usr/bin/unshare", "/usr/bin/nsenter", "/usr/bin/umount", "/usr/sbin/ip"].allSatisfy(FileSystem.exists)
}

/// An integer's bytes in the machine's order, as netlink has them.
func native<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}

/// Runs a command to its end and returns its standard output; throws, with its error output, when it
/// fails.
@discardableResult
func run(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CollectorError.failed(
            "\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus): \(errorText)"
        )
    }
    return text
}

/// A network namespace of its own, held by a `sleep` process, gone with this object.
final class PrivateNetwork {
    private let holder = Process()
    private var sysfs: String?

    init() throws {
        self.holder.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        self.holder.arguments = ["--net", "sleep", "600"]
        try self.holder.run()
        // The namespace exists once unshare has exec'd sleep.
        while (try? FileSystem.readLink("/proc/\(self.holder.processIdentifier)/exe"))?.hasSuffix("sleep") != true {
            usleep(10_000)
        }
    }

    deinit {
        if let sysfs = self.sysfs {
            _ = try? run("/usr/bin/umount", [sysfs])
            try? FileManager.default.removeItem(atPath: sysfs)
        }
        // SIGKILL: the test runner's threads block SIGTERM, and the child inherits that mask.
        kill(self.holder.processIdentifier, SIGKILL)
        self.holder.waitUntilExit()
    }

    private var namespace: String { "/proc/\(self.holder.processIdentifier)/ns/net" }

    /// A procfs root whose `net/` files are this namespace's.
    var procfs: String { "/proc/\(self.holder.processIdentifier)" }

    func ip(_ arguments: String) throws {
        try run("/usr/bin/nsenter", ["--net=" + self.namespace, "ip"] + words(arguments))
    }

    /// Mounts a sysfs showing this namespace's interfaces (sysfs shows the network namespace of whoever
    /// mounts it); returns where.
    func mountSysfs() throws -> String {
        let path = "/tmp/vigil-net-sysfs-\(getpid())-\(self.holder.processIdentifier)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try run("/usr/bin/nsenter", ["--net=" + self.namespace, "mount", "-t", "sysfs", "sysfs", path])
        self.sysfs = path
        return path
    }

    /// Runs `body` on a thread of its own that has joined this namespace (sockets it opens belong here).
    func inNamespace<Value>(_ body: @escaping @Sendable () -> Value) throws -> Value {
        // setns(2) is not in Swift's Glibc module.
        typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
        let symbol = try #require(dlsym(dlopen(nil, RTLD_NOW), "setns"))
        let setns = unsafeBitCast(symbol, to: SetNamespace.self)
        let fd = open(self.namespace, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        let outcome = ThreadOutcome<Value>()
        let thread = Thread {
            // CLONE_NEWNET. The thread ends in the namespace it joined.
            if setns(fd, 0x4000_0000) == 0 { outcome.value = body() }
            outcome.done.signal()
        }
        thread.start()
        outcome.done.wait()
        return try #require(outcome.value)
    }
}

/// What a thread of ``PrivateNetwork/inNamespace(_:)`` hands back, once `done` is signalled.
private final class ThreadOutcome<Value>: @unchecked Sendable {
    var value: Value?
    let done = DispatchSemaphore(value: 0)
}
