import Foundation
import Testing
import VigilForward
import VigilForwardTestSupport

@testable import VigilJournal

/// The `vigil` binary itself: killed with SIGKILL in the middle of forwarding and started again (no entry
/// may be lost, a few may arrive twice), and its dry run.
@Suite struct VigilBinaryTests {
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
                try await Task.sleep(for: .milliseconds(200))  // requests already on the wire land
                let beforeCrash = Set(receiver.snapshot.events.compactMap { Event($0).text("MESSAGE") })

                // The saved cursor never passes an entry the receiver has not acknowledged.
                guard case .cursor(let cursor) = CursorStore(path: directory.file("journal.cursor")).load() else {
                    Issue.record("no cursor saved before the crash; vigil's log: \(vigil.output)")
                    return
                }
                let exported = try journald.exported(["VIGIL_RUN=\(run)"])
                let saved = try #require(exported.firstIndex { $0.cursor == cursor })
                #expect((0...saved).allSatisfy { beforeCrash.contains("m\($0)") })

                try await writer.value
                vigil = try VigilProcess(self.vigilBinary, arguments, log: directory.file("vigil-2.log"))
                defer { vigil.terminate() }
                let arrived = await receiver.wait(timeout: .seconds(60)) { snapshot in
                    Set(snapshot.events.compactMap { Event($0).text("MESSAGE") }).count >= total
                }
                #expect(arrived, "vigil's log: \(vigil.output)")
                let messages = receiver.snapshot.events.compactMap { Event($0).text("MESSAGE") }
                #expect(Set(messages) == Set((0..<total).map { "m\($0)" }))
                // The second start resumed right after the saved cursor: what arrives twice is only what had
                // arrived after it before the crash.
                #expect(vigil.output.contains("resuming the journal after the saved cursor"))
                let duplicates = messages.count - Set(messages).count
                #expect(duplicates <= beforeCrash.count - (saved + 1))
                print(
                    "kill -9: \(beforeCrash.count) entries arrived before the crash, cursor saved at entry \(saved), \(duplicates) sent twice"
                )
                await receiver.stop()
            }
        }
    }
}

extension VigilBinaryTests {
    @Test func theDryRunPrintsTheRecordsAsJSONLines() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                try journald.send([
                    ("MESSAGE", Array("hello".utf8)), ("REP", [0x61]), ("REP", [0x62]), ("BIN", [0x00, 0xFF]),
                    ("VIGIL_RUN", Array(run.utf8)),
                ])
                try journald.send([("MESSAGE", "second"), ("VIGIL_RUN", run)])
                let exported = try await journald.waitForEntries(2, matching: ["VIGIL_RUN=\(run)"])
                let configuration = directory.file("vigil.yml")
                let cursorFile = directory.file("journal.cursor")
                try """
                web:
                  listen-address: ["127.0.0.1:0"]
                journal:
                  namespace: \(journald.namespace)
                  matches: ["VIGIL_RUN=\(run)"]
                  cursor_file: \(cursorFile)
                  tag: test.${SYSLOG_IDENTIFIER:-none}
                  include_fields: [MESSAGE, REP, BIN]
                  batch: {max_wait: 100ms}
                """.write(toFile: configuration, atomically: true, encoding: .utf8)
                let vigil = try VigilProcess(
                    self.vigilBinary,
                    ["--config.file=\(configuration)", "--collector.disable-defaults", "--journal.dry-run"],
                    log: directory.file("vigil.log"),
                    output: directory.file("stdout")
                )
                defer { vigil.terminate() }
                let printed = await eventually(timeout: .seconds(30)) {
                    ((try? String(contentsOfFile: directory.file("stdout"), encoding: .utf8)) ?? "")
                        .split(separator: "\n").count >= 2
                }
                #expect(printed, "vigil's log: \(vigil.output)")
                vigil.terminate()
                let lines = try String(contentsOfFile: directory.file("stdout"), encoding: .utf8).split(separator: "\n")
                #expect(lines.count == 2)
                let first = try #require(
                    try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any]
                )
                #expect(first["tag"] as? String == "test.none")
                let record = try #require(first["record"] as? [String: Any])
                #expect(record["MESSAGE"] as? String == "hello")
                #expect(record["REP"] as? [String] == ["a", "b"])
                #expect((record["BIN"] as? [String: String])?["base64"] == "AP8=")
                #expect(record.count == 3)
                // The time, to the microsecond of __REALTIME_TIMESTAMP.
                let realtime = exported[0].realtime
                #expect(
                    lines[0].contains(
                        "\"time\":\(realtime / 1_000_000).\(String(format: "%06d", realtime % 1_000_000))000,"
                    )
                )
                #expect(!FileManager.default.fileExists(atPath: cursorFile))
                #expect(vigil.output.contains("journal dry run"))
            }
        }
    }
}

/// The vigil binary as a child process.
struct VigilProcess {
    let process = Process()
    let logPath: String

    /// Standard error goes to `log`, standard output to `output` (or to `log` too).
    init(_ binary: String, _ arguments: [String], log: String, output: String? = nil) throws {
        self.logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        var outputHandle = handle
        if let output {
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            outputHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        }
        self.process.executableURL = URL(fileURLWithPath: binary)
        self.process.arguments = arguments
        self.process.standardOutput = outputHandle
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
