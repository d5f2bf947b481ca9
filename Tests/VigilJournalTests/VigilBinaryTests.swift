import Foundation
import Synchronization
import Testing
import VigilCore
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

    @Test func killDashNineAtRandomMomentsLosesNothing() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let receiver = try await ForwardReceiver.start()
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let cursorFile = directory.file("journal.cursor")
                let configuration = try VigilConfiguration.write(
                    in: directory,
                    journald: journald,
                    run: run,
                    forward: """
                          targets: ["127.0.0.1:\(receiver.port)"]
                          retry_wait: 100ms
                          max_retry_wait: 500ms
                          recover_wait: 200ms
                          heartbeat_interval: 200ms
                        """
                )
                // Each run gets 1,000 new entries, written over a second while it starts, reads and sends: the
                // kill finds it reading, sending, waiting for acks or committing.
                let perRun = 1000
                let total = 4 * perRun
                let messages = { receiver.snapshot.events.compactMap { Event($0).text("MESSAGE") } }

                var duplicateBound = 0
                var report: [String] = []
                for kill in 1...4 {
                    let first = (kill - 1) * perRun
                    let writer = Task {
                        for index in first..<(first + perRun) {
                            try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)])
                            if index % 50 == 49 { try await Task.sleep(for: .milliseconds(50)) }
                        }
                    }
                    let before = receiver.snapshot.eventCount
                    let resumes = saved(cursorFile) != nil
                    let vigil = try VigilProcess(
                        self.vigilBinary,
                        configuration.arguments,
                        log: directory.file("vigil-\(kill).log")
                    )
                    #expect(await receiver.wait(timeout: .seconds(30)) { $0.eventCount > before }, "\(vigil.output)")
                    try await Task.sleep(for: .milliseconds(Int.random(in: 0...800)))
                    vigil.kill()
                    try await writer.value
                    try await Task.sleep(for: .milliseconds(200))  // requests already on the wire land
                    if resumes { #expect(vigil.output.contains("resuming the journal after the saved cursor")) }
                    // The saved cursor never passes an entry the receiver has not acknowledged.
                    let arrived = Set(messages())
                    let exported = try journald.exported(["VIGIL_RUN=\(run)"])
                    var savedIndex = -1
                    if let cursor = saved(cursorFile) {
                        savedIndex = try #require(exported.firstIndex { $0.cursor == cursor })
                        #expect((0...savedIndex).allSatisfy { arrived.contains("m\($0)") })
                    }
                    // What the next run may send again: what had arrived beyond the saved cursor.
                    duplicateBound += arrived.count(where: { Int($0.dropFirst())! > savedIndex })
                    report.append("kill \(kill): \(arrived.count) entries arrived, cursor at entry \(savedIndex)")
                }

                let vigil = try VigilProcess(
                    self.vigilBinary,
                    configuration.arguments,
                    log: directory.file("vigil-last.log")
                )
                defer { vigil.terminate() }
                let complete = await receiver.wait(timeout: .seconds(60)) { _ in Set(messages()).count >= total }
                #expect(complete, "vigil's log: \(vigil.output)")
                let received = messages()
                #expect(Set(received) == Set((0..<total).map { "m\($0)" }))
                let duplicates = received.count - Set(received).count
                #expect(duplicates <= duplicateBound)
                print(
                    "kill -9 four times: \(report.joined(separator: "; ")); \(duplicates) of \(total) entries arrived twice (at most \(duplicateBound) could)"
                )
                await receiver.stop()
            }
        }
    }

    @Test func memoryStaysFlatWhileTheReceiverIsDown() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let receiver = try await ForwardReceiver.start(.init(recordEvents: true))
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let configuration = try VigilConfiguration.write(
                    in: directory,
                    journald: journald,
                    run: run,
                    batch: "{max_entries: 500, max_wait: 100ms}",
                    forward: """
                          targets: ["127.0.0.1:\(receiver.port)"]
                          retry_wait: 50ms
                          max_retry_wait: 200ms
                          heartbeat_interval: 100ms
                        """
                )
                let vigil = try VigilProcess(
                    self.vigilBinary,
                    configuration.arguments,
                    log: directory.file("vigil.log")
                )
                defer { vigil.terminate() }
                var written = 0
                func write(_ count: Int) throws {
                    for _ in 0..<count {
                        try journald.send([
                            ("MESSAGE", "m\(written) " + String(repeating: "x", count: 200)), ("VIGIL_RUN", run),
                        ])
                        written += 1
                    }
                }
                try write(2000)
                #expect(await receiver.wait(timeout: .seconds(30)) { $0.uniqueEventCount >= 2000 }, "\(vigil.output)")

                // Down: vigil reads until its window of unacknowledged batches is full, then pauses.
                await receiver.stopListening()
                try write(5000)
                #expect(
                    await eventually(timeout: .seconds(30)) {
                        (try? configuration.scrape()["vigil_journal_reading_paused"]) == 1
                    }
                )
                let readWhenPaused = try configuration.scrape()["vigil_journal_entries_read_total"]
                let pid = vigil.process.processIdentifier
                let baseline = try #require(residentBytes(pid))
                // 50,000 more entries (about 15 MB of journal) while the receiver stays down and vigil retries.
                let peakResident = Atomic(baseline)
                let sampler = Task {
                    while !Task.isCancelled {
                        if let resident = residentBytes(pid) { peakResident.max(resident, ordering: .relaxed) }
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                }
                for _ in 0..<50 {
                    try write(1000)
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await journald.waitForEntries(written, matching: ["VIGIL_RUN=\(run)"], timeout: 60)
                try await Task.sleep(for: .seconds(2))
                sampler.cancel()
                await sampler.value
                let peak = peakResident.load(ordering: .relaxed)
                let metrics = try configuration.scrape()
                #expect(metrics["vigil_journal_entries_read_total"] == readWhenPaused)
                #expect(metrics["vigil_journal_reading_paused"] == 1)
                // Flat: the 50,000 entries written meanwhile cost vigil less than 2 MB.
                #expect(peak - baseline < 2 << 20, "resident \(baseline) bytes when reading paused, peak \(peak)")
                print(
                    "receiver down: resident \(baseline / 1024) KiB when reading paused, peak \(peak / 1024) KiB while 50,000 more entries were written"
                )

                // Back up: everything arrives.
                try await receiver.resumeListening()
                let complete = await receiver.wait(timeout: .seconds(120)) { $0.uniqueEventCount >= written }
                #expect(complete, "vigil's log: \(vigil.output)")
                let prefixes = Set(
                    receiver.snapshot.uniqueEvents.compactMap { Event($0).text("MESSAGE")?.split(separator: " ").first }
                )
                #expect(prefixes == Set((0..<written).map { "m\($0)"[...] }))
                await receiver.stop()
            }
        }
    }
}

extension VigilBinaryTests {
    /// As packaged, vigil runs as a user of its own with only the systemd-journal group: it must serve
    /// scrapes and forward the journal without any privilege (a socket option only root may set once
    /// made every connection fail).
    @Test func anUnprivilegedVigilServesAndForwards() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let nobody = try #require(getpwnam("nobody")?.pointee)
                #expect(chown(directory.path, nobody.pw_uid, nobody.pw_gid) == 0)
                // journald started by hand leaves its files root's; on a host, systemd-tmpfiles gives the
                // journal directories to the systemd-journal group (setgid, so that new files follow).
                let journalGroup = try #require(getgrnam("systemd-journal")?.pointee.gr_gid)
                #expect(chown(journald.journalDirectory, 0, journalGroup) == 0)
                #expect(chmod(journald.journalDirectory, 0o2750) == 0)
                for file in try FileManager.default.contentsOfDirectory(atPath: journald.journalDirectory) {
                    #expect(chown(journald.journalDirectory + "/" + file, 0, journalGroup) == 0)
                }
                let receiver = try await ForwardReceiver.start()
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let configuration = try VigilConfiguration.write(
                    in: directory,
                    journald: journald,
                    run: run,
                    forward: "  targets: [\"127.0.0.1:\(receiver.port)\"]"
                )
                for index in 0..<100 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
                let vigil = try VigilProcess(
                    "/usr/bin/setpriv",
                    ["--reuid=nobody", "--regid=\(nobody.pw_gid)", "--groups=systemd-journal", self.vigilBinary]
                        + configuration.arguments,
                    log: directory.file("vigil.log")
                )
                defer { vigil.terminate() }
                #expect(
                    await receiver.wait(timeout: .seconds(30)) { $0.eventCount >= 100 },
                    "vigil's log: \(vigil.output)"
                )
                #expect(try configuration.scrape()["vigil_forward_records_acked_total"] == 100)
                await receiver.stop()
            }
        }
    }

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

/// A target vigil cannot deliver to until its configuration is fixed.
struct Misconfiguration: Sendable, CustomTestStringConvertible {
    let testDescription: String
    /// The receiver's settings.
    let receiver: @Sendable (inout ForwardReceiver.Configuration, TestCertificates) -> Void
    /// The forward target's YAML settings besides host and port: wrong, then right.
    let wrong: @Sendable (TestCertificates) -> String
    let right: @Sendable (TestCertificates) -> String
    /// What vigil's log says about it.
    let logged: String

    static let wrongSharedKey = Misconfiguration(
        testDescription: "wrong shared key",
        receiver: { configuration, _ in configuration.sharedKey = "right key" },
        wrong: { _ in "shared_key: wrong key" },
        right: { _ in "shared_key: right key" },
        logged: "failed: shared_key mismatch"
    )

    static let untrustedCertificate = Misconfiguration(
        testDescription: "untrusted certificate",
        receiver: { configuration, certificates in
            configuration.tlsCertificateFile = certificates.serverCertificate
            configuration.tlsKeyFile = certificates.serverKey
        },
        // The server's certificate is signed by the test CA; the system's trust store does not know it.
        wrong: { _ in "tls: {}" },
        right: { certificates in "tls: {ca_file: \(certificates.caFile)}" },
        logged: "CERTIFICATE_VERIFY_FAILED"
    )
}

extension VigilBinaryTests {
    @Test(arguments: [Misconfiguration.wrongSharedKey, .untrustedCertificate])
    func aMisconfiguredTargetIsAClearErrorAndNothingCountsAsSent(_ misconfiguration: Misconfiguration) async throws {
        let certificates = try TestCertificates.shared.get()
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                var receiverConfiguration = ForwardReceiver.Configuration()
                misconfiguration.receiver(&receiverConfiguration, certificates)
                let receiver = try await ForwardReceiver.start(receiverConfiguration)
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                for index in 0..<300 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
                let exported = try await journald.waitForEntries(300, matching: ["VIGIL_RUN=\(run)"])
                func configuration(_ target: String, name: String) throws -> VigilConfiguration {
                    try VigilConfiguration.write(
                        in: directory,
                        journald: journald,
                        run: run,
                        forward: """
                              targets: [{host: 127.0.0.1, port: \(receiver.port), \(target)}]
                              retry_wait: 100ms
                              max_retry_wait: 300ms
                              heartbeat_interval: 100ms
                            """,
                        name: name
                    )
                }

                let wrong = try configuration(misconfiguration.wrong(certificates), name: "wrong.yml")
                let vigil = try VigilProcess(self.vigilBinary, wrong.arguments, log: directory.file("vigil-wrong.log"))
                let label = "127.0.0.1:\(receiver.port)"
                // A clear log line naming the target and the reason, then retries.
                #expect(
                    await eventually(timeout: .seconds(30)) {
                        vigil.output.contains("target \(label) down:") && vigil.output.contains(misconfiguration.logged)
                    },
                    "vigil's log: \(vigil.output)"
                )
                #expect(
                    await eventually(timeout: .seconds(30)) {
                        ((try? wrong.scrape()["vigil_forward_batches_retried_total"]) ?? 0) >= 3
                    }
                )
                let metrics = try wrong.scrape()
                #expect(metrics["vigil_forward_batches_acked_total"] == 0)
                #expect(metrics["vigil_forward_records_acked_total"] == 0)
                #expect(metrics["vigil_forward_batches_sent_total"] == 0)
                #expect(metrics["vigil_journal_batches_acked_total"] == 0)
                #expect(metrics["vigil_journal_cursor_commits_total"] == 0)
                #expect(metrics["vigil_forward_target_up"] == 0)
                #expect(receiver.snapshot.requestCount == 0)
                #expect(saved(wrong.cursorFile) == nil)
                // Stopped gracefully: the cursor is still not written.
                vigil.terminate()
                #expect(saved(wrong.cursorFile) == nil)
                #expect(receiver.snapshot.requestCount == 0)

                // Fixed: everything arrives, and the cursor names the last entry.
                let right = try configuration(misconfiguration.right(certificates), name: "right.yml")
                let fixed = try VigilProcess(self.vigilBinary, right.arguments, log: directory.file("vigil-right.log"))
                defer { fixed.terminate() }
                #expect(
                    await receiver.wait(timeout: .seconds(30)) { $0.uniqueEventCount >= 300 },
                    "vigil's log: \(fixed.output)"
                )
                let messages = Set(receiver.snapshot.uniqueEvents.compactMap { Event($0).text("MESSAGE") })
                #expect(messages == Set((0..<300).map { "m\($0)" }))
                #expect(await eventually(timeout: .seconds(10)) { saved(right.cursorFile) == exported.last?.cursor })
                #expect(((try? right.scrape()["vigil_forward_batches_acked_total"]) ?? 0) > 0)
                await receiver.stop()
            }
        }
    }
}

/// A vigil configuration file for one test run: the harness' namespace, the run's entries, a cursor file
/// and the metrics endpoint on a port of this suite.
struct VigilConfiguration {
    let path: String
    let webPort: Int
    let cursorFile: String

    var arguments: [String] { ["--config.file=\(self.path)", "--collector.disable-defaults"] }

    /// Writes the file; `forward` is the body of the `forward:` section, indented by two spaces.
    static func write(
        in directory: TemporaryDirectory,
        journald: Journald,
        run: String,
        batch: String = "{max_entries: 50, max_wait: 100ms}",
        forward: String,
        name: String = "vigil.yml"
    ) throws -> VigilConfiguration {
        let configuration = VigilConfiguration(
            path: directory.file(name),
            webPort: nextPort(),
            cursorFile: directory.file("journal.cursor")
        )
        try """
        web:
          listen-address: ["127.0.0.1:\(configuration.webPort)"]
        journal:
          namespace: \(journald.namespace)
          matches: ["VIGIL_RUN=\(run)"]
          cursor_file: \(configuration.cursorFile)
          batch: \(batch)
          commit_interval: 20ms
        forward:
        \(forward)
        """.write(toFile: configuration.path, atomically: true, encoding: .utf8)
        return configuration
    }

    /// vigil's metrics, each family's samples summed over their labels.
    func scrape() throws -> [String: Double] {
        let body = try run("/usr/bin/curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(self.webPort)/metrics"])
        var values: [String: Double] = [:]
        for family in try parseExposition(body[...]) {
            for sample in family.samples { values[sample.name, default: 0] += sample.value }
        }
        return values
    }
}

/// The cursor in `file`, or nil when there is none.
func saved(_ file: String) -> String? {
    guard case .cursor(let cursor) = CursorStore(path: file).load() else { return nil }
    return cursor
}

/// A process' resident memory (VmRSS), or nil once it has ended.
func residentBytes(_ pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
    }
    return nil
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
