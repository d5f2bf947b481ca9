import Foundation
import Testing
import VigilForward
import VigilForwardTestSupport

@testable import VigilJournal

/// The `vigil` binary itself, killed with SIGKILL in the middle of forwarding and started again: no
/// entry may be lost; a few may arrive twice.
@Suite struct CrashRecoveryTests {
    /// `.build/debug/vigil`, built by `swift build --build-tests`.
    private var vigilBinary: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/.build/debug/vigil"
    }

    @Test func killDashNineLosesNothing() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let receiver = try await ForwardReceiver.start()
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let configuration = directory.file("vigil.yml")
                try """
                web:
                  listen-address: ["127.0.0.1:0"]
                journal:
                  namespace: \(journald.namespace)
                  matches: ["VIGIL_RUN=\(run)"]
                  cursor_file: \(directory.file("journal.cursor"))
                  batch: {max_entries: 50, max_wait: 100ms}
                  commit_interval: 20ms
                forward:
                  targets: ["127.0.0.1:\(receiver.port)"]
                  retry_wait: 100ms
                  max_retry_wait: 500ms
                  recover_wait: 200ms
                  heartbeat_interval: 200ms
                """.write(toFile: configuration, atomically: true, encoding: .utf8)
                let arguments = ["--config.file=\(configuration)", "--collector.disable-defaults"]
                let total = 3000
                let writer = Task {
                    for index in 0..<total {
                        try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)])
                        if index % 100 == 99 { try await Task.sleep(for: .milliseconds(20)) }
                    }
                }

                var vigil = try VigilProcess(self.vigilBinary, arguments, log: directory.file("vigil-1.log"))
                #expect(await receiver.wait(timeout: .seconds(30)) { $0.uniqueEvents.count >= 600 })
                vigil.kill()
                let deliveredBeforeCrash = receiver.snapshot.uniqueEvents.count
                try await writer.value
                vigil = try VigilProcess(self.vigilBinary, arguments, log: directory.file("vigil-2.log"))
                defer { vigil.terminate() }

                let arrived = await receiver.wait(timeout: .seconds(60)) { snapshot in
                    Set(snapshot.events.compactMap { Event($0).text("MESSAGE") }).count >= total
                }
                #expect(arrived, "vigil's log: \(vigil.output)")
                let messages = receiver.snapshot.events.compactMap { Event($0).text("MESSAGE") }
                #expect(Set(messages) == Set((0..<total).map { "m\($0)" }))
                // Resent after the crash at most: what was in flight plus what was acked but not yet saved.
                let duplicates = messages.count - Set(messages).count
                #expect(
                    duplicates <= 4 * 50 + 2 * 50,
                    "\(duplicates) duplicates, \(deliveredBeforeCrash) before the crash"
                )
                await receiver.stop()
            }
        }
    }
}

/// The vigil binary as a child process.
struct VigilProcess {
    let process = Process()
    let logPath: String

    init(_ binary: String, _ arguments: [String], log: String) throws {
        self.logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        self.process.executableURL = URL(fileURLWithPath: binary)
        self.process.arguments = arguments
        self.process.standardOutput = handle
        self.process.standardError = handle
        try self.process.run()
    }

    var output: String { (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? "" }

    /// SIGKILL: no graceful shutdown, no last cursor write.
    func kill() {
        Foundation.kill(self.process.processIdentifier, SIGKILL)
        self.process.waitUntilExit()
    }

    func terminate() {
        guard self.process.isRunning else { return }
        self.process.terminate()
        self.process.waitUntilExit()
    }
}
