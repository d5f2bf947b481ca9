import Foundation
import Logging
import Testing
import VigilCore
import VigilForward
import VigilJournal

@testable import VigilAgent

/// A configuration file and secret files in a temporary directory, removed afterwards.
private func withFiles<T>(_ files: [String: String], _ body: (String) throws -> T) throws -> T {
    let directory = try makeTemporaryDirectory("vigil-journal-setup")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    for (name, content) in files {
        try content.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
    }
    return try body(directory)
}

/// Parses the `forward:` section of `yaml` with secrets looked up in `credentials`.
private func parseForward(
    _ yaml: String,
    in directory: String,
    flags: [String] = [],
    credentials: String? = nil
) throws -> (ForwardConfiguration?, [String]) {
    let path = "\(directory)/vigil.yml"
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    let loaded = try loadConfiguration(["--config.file=\(path)"] + flags)
    let parser = SectionParser(file: path, credentialsDirectory: credentials)
    let forward = parseForwardSection(
        loaded.sections["forward"],
        flagTargets: loaded.settings.strings(AgentOption.forwardTarget),
        settings: loaded.settings,
        parser: parser
    )
    return (forward, parser.errors.map(\.description))
}

@Suite struct LogSetupTests {
    @Test func theDefaultConfigurationForwardsNothingAndSaysSo() throws {
        let setup = try LogSetup(try loadConfiguration([]))
        #expect(setup.forward == nil)
        #expect(!setup.isEnabled)
        #expect(setup.summary.hasPrefix("log forwarding is off: no forward target is configured"))
        let agent = try Agent(configuration: try loadConfiguration([]), logger: Logger(label: "test"))
        #expect(agent.logServices.isEmpty)
    }

    @Test func oneFlagStartsShipping() async throws {
        let configuration = try loadConfiguration([
            "--forward.target=127.0.0.1:21500", "--forward.target=logs.example.com", "--forward.target=[::1]:21501",
        ])
        let setup = try LogSetup(configuration)
        let targets = try #require(setup.forward?.targets)
        #expect(targets.map(\.host) == ["127.0.0.1", "logs.example.com", "::1"])
        #expect(targets.map(\.port) == [21500, 24224, 21501])
        #expect(setup.summary == "forwarding the journal to 127.0.0.1:21500, logs.example.com:24224, ::1:21501")
        #expect(setup.journal.cursorFile == "/var/lib/vigil/journal.cursor")

        // The agent runs the forward output, then the pipeline (then HTTP), and serves their metrics.
        let agent = try Agent(configuration: configuration, logger: Logger(label: "test"))
        #expect(agent.logServices.count == 2)
        #expect(agent.logServices.first is ForwardOutput)
        #expect(agent.logServices.last is LogPipeline)
        let exposition = String(decoding: await agent.scraper.scrape(format: .text).bytes, as: UTF8.self)
        #expect(exposition.contains("# TYPE vigil_journal_entries_read_total counter"))
        #expect(exposition.contains("# HELP vigil_journal_lag_seconds "))
        #expect(exposition.contains("vigil_forward_"))
        let lint = try runCommand("/usr/bin/promtool", ["check", "metrics"], input: Array(exposition.utf8))
        #expect(!lint.output.contains("vigil_journal"), "\(lint.output)")
    }

    @Test(arguments: ["a:b:c", "host:0", "host:70000", ":24224", "[::1", "::1"])
    func badTargetFlagsAreRefused(_ target: String) {
        #expect {
            try LogSetup(try loadConfiguration(["--forward.target=\(target)"]))
        } throws: { error in
            "\(error)".contains("command line: --forward.target: \"\(target)\" is not HOST:PORT")
        }
    }

    @Test func theDryRunPrintsInsteadOfSendingAndLeavesTheCursorAlone() throws {
        let setup = try LogSetup(try loadConfiguration(["--journal.dry-run", "--forward.target=127.0.0.1:21502"]))
        #expect(setup.dryRun)
        #expect(setup.journal.cursorFile == nil)
        #expect(setup.summary.hasPrefix("journal dry run"))
        let agent = try Agent(
            configuration: try loadConfiguration(["--journal.dry-run"]),
            logger: Logger(label: "test")
        )
        #expect(agent.logServices.count == 1)
        #expect(agent.logServices.first is LogPipeline)
    }

    @Test func everyForwardKeyIsRead() throws {
        try withFiles(["ca.pem": "-", "key": "s3cret\n", "password": "pa55\r\n", "global-key": "g\n"]) { directory in
            let (forward, errors) = try parseForward(
                """
                forward:
                  targets:
                    - 10.0.0.5:24225
                    - host: logs.example.com
                      port: 24226
                      name: central
                      weight: 20
                      standby: true
                      tls: {ca_file: \(directory)/ca.pem, server_name: logs.internal, verify: false}
                      shared_key_file: key
                      username: vigil
                      password_file: \(directory)/password
                  self_hostname: node-1
                  shared_key_file: global-key
                  compression: gzip
                  ack_timeout: 20s
                  connect_timeout: 3s
                  heartbeat_interval: 2s
                  hard_timeout: 30s
                  recover_wait: 5s
                  retry_wait: 500ms
                  max_retry_wait: 30s
                  max_batch_bytes: 512000
                  keepalive: false
                  keepalive_timeout: 10s
                """,
                in: directory,
                credentials: directory
            )
            #expect(errors.isEmpty, "\(errors)")
            let configuration = try #require(forward)
            #expect(configuration.targets.count == 2)
            let plain = configuration.targets[0]
            #expect((plain.host, plain.port, plain.weight, plain.standby) == ("10.0.0.5", 24225, 60, false))
            let full = configuration.targets[1]
            #expect(
                (full.host, full.port, full.name, full.weight, full.standby) == (
                    "logs.example.com", 24226, "central", 20, true
                )
            )
            #expect(full.tls?.caFile == "\(directory)/ca.pem")
            #expect(full.tls?.serverName == "logs.internal")
            #expect(full.tls?.verify == false)
            #expect(full.sharedKey == "s3cret")
            #expect(full.username == "vigil")
            #expect(full.password == "pa55")
            #expect(configuration.selfHostname == "node-1")
            #expect(configuration.sharedKey == "g")
            #expect(configuration.compression == .gzip)
            #expect(configuration.ackTimeout == .seconds(20))
            #expect(configuration.connectTimeout == .seconds(3))
            #expect(configuration.heartbeatInterval == .seconds(2))
            #expect(configuration.hardTimeout == .seconds(30))
            #expect(configuration.recoverWait == .seconds(5))
            #expect(configuration.retryWait == .milliseconds(500))
            #expect(configuration.maxRetryWait == .seconds(30))
            #expect(configuration.maxBatchBytes == 512_000)
            #expect(!configuration.keepalive)
            #expect(configuration.keepaliveTimeout == .seconds(10))
        }
    }

    @Test func flagTargetsReplaceTheFilesTargetsAndKeepItsSettings() throws {
        try withFiles([:]) { directory in
            let (forward, errors) = try parseForward(
                "forward:\n  targets: [10.0.0.5]\n  compression: gzip\n",
                in: directory,
                flags: ["--forward.target=127.0.0.1:21503"]
            )
            #expect(errors.isEmpty)
            #expect(forward?.targets.map(\.label) == ["127.0.0.1:21503"])
            #expect(forward?.compression == .gzip)
        }
    }

    @Test(arguments: [
        (
            "forward:\n  targets:\n    - host: a\n      shared_key: x\n      shared_key_file: k\n", 5,
            "forward.targets[0].shared_key_file", "give either shared_key or shared_key_file, not both"
        ),
        ("forward:\n  shared_key_file: missing\n", 2, "forward.shared_key_file", "cannot read the file"),
        ("forward:\n  shared_key_file: empty\n", 2, "forward.shared_key_file", "is empty"),
        (
            "forward:\n  targets:\n    - host: a\n      username: u\n", 4, "forward.targets[0].username",
            "username and password go together"
        ),
        ("forward:\n  compression: zstd\n", 2, "forward.compression", "must be one of text, gzip"),
        ("forward:\n  targets:\n    - host: a\n      port: 0\n", 4, "forward.targets[0].port", "between 1 and 65535"),
        (
            "forward:\n  targets:\n    - host: a\n      wieght: 5\n", 4, "forward.targets[0].wieght",
            "unknown key; did you mean weight?"
        ),
        (
            "forward:\n  targets:\n    - host: a\n      tls: {cert_file: /dev/null}\n", 4,
            "forward.targets[0].tls.cert_file",
            "cert_file and key_file go together"
        ),
        (
            "forward:\n  targets:\n    - host: a\n      standby: true\n", 2, "forward.targets",
            "needs a target that is not standby"
        ),
        ("forward:\n  targets:\n    - port: 5\n", 3, "forward.targets[0].host", "every target needs a host"),
        ("forward:\n  targets: [\"a:b:c\"]\n", 2, "forward.targets[0]", "is not HOST:PORT"),
        (
            "forward:\n  retry_wait: 10s\n  max_retry_wait: 1s\n", 3, "forward.max_retry_wait",
            "must not be shorter than retry_wait"
        ),
    ])
    func forwardMistakesNameTheFileLineKeyAndReason(
        _ yaml: String,
        _ line: Int,
        _ key: String,
        _ reason: String
    )
        throws
    {
        try withFiles(["empty": ""]) { directory in
            let (_, errors) = try parseForward(yaml, in: directory, credentials: directory)
            #expect(errors.count == 1, "\(errors)")
            #expect(errors.first?.hasPrefix("\(directory)/vigil.yml:\(line): \(key): ") == true, "\(errors)")
            #expect(errors.first?.contains(reason) == true, "\(errors)")
        }
    }

    @Test func checkConfigReportsJournalAndForwardMistakes() async throws {
        let directory = try makeTemporaryDirectory("vigil-journal-check")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/vigil.yml"
        try "journal:\n  priority: loud\nforward:\n  targets: [127.0.0.1:21504]\n".write(
            toFile: path,
            atomically: true,
            encoding: .utf8
        )
        #expect(await vigilMain(arguments: ["check-config", path]) == 1)
        try "journal:\n  priority: err\nforward:\n  targets: [127.0.0.1:21504]\n".write(
            toFile: path,
            atomically: true,
            encoding: .utf8
        )
        #expect(await vigilMain(arguments: ["check-config", path]) == 0)
    }
}

@Suite struct DryRunSinkTests {
    @Test func printsOneJSONLinePerRecord() throws {
        var encoder = EntryEncoder(format: .init())
        var writer = MessagePackWriter()
        let entries: [[[UInt8]]] = [
            [Array("MESSAGE=say \"hi\"\n".utf8), Array("REP=a".utf8), Array("REP=b".utf8)],
            [Array("BIN=".utf8) + [0x00, 0xFF], Array("UNICODE=grüße".utf8)],
        ]
        for (index, fields) in entries.enumerated() {
            encoder.begin()
            for field in fields { field.withUnsafeBytes { encoder.add(field: $0) } }
            encoder.write(realtime: 1_700_000_000_000_005 + UInt64(index), into: &writer)
        }
        let batch = ForwardBatch(tag: "journal.app", entries: writer.bytes, count: 2, chunkID: "x")
        let lines = String(decoding: DryRunSink.render(batch), as: UTF8.self).split(separator: "\n")
        #expect(
            lines == [
                #"{"tag":"journal.app","time":1700000000.000005000,"record":{"MESSAGE":"say \"hi\"\n","REP":["a","b"]}}"#,
                #"{"tag":"journal.app","time":1700000000.000006000,"record":{"BIN":{"base64":"AP8="},"UNICODE":"grüße"}}"#,
            ]
        )
        // Standard JSON that any tool reads.
        for line in lines {
            #expect(throws: Never.self) { try JSONSerialization.jsonObject(with: Data(line.utf8)) }
        }
    }
}
