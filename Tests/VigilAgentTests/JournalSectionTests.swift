import Foundation
import Testing
import VigilCore
import VigilJournal

@testable import VigilAgent

/// Writes `yaml` to a temporary file, loads it as vigil would, and parses its `journal:` section.
private func parseJournal(_ yaml: String) throws -> (JournalConfiguration, Bool, [String], String) {
    let path = "/tmp/vigil-journal-config-\(UInt64.random(in: 0...UInt64.max)).yml"
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    guard case .run(let loaded) = try ConfigurationLoader().invocation(arguments: ["--config.file=\(path)"]) else {
        throw ConfigurationErrors(errors: [])
    }
    let parser = SectionParser(file: path)
    let (configuration, dryRun) = parseJournalSection(loaded.sections["journal"], parser: parser)
    return (configuration, dryRun, parser.errors.map(\.description), path)
}

@Suite struct JournalSectionTests {
    @Test func withoutASectionTheDefaultsApply() throws {
        let (configuration, dryRun, errors, _) = try parseJournal("web:\n  listen-address: [':9100']\n")
        #expect(errors.isEmpty)
        #expect(configuration.source == .local)
        #expect(configuration.journalMatches.isEmpty)
        #expect(configuration.startPosition == .head)
        #expect(configuration.cursorFile == "/var/lib/vigil/journal.cursor")
        #expect(configuration.tag == "journal")
        #expect(!dryRun)
    }

    @Test func everyKeyIsRead() throws {
        let (configuration, dryRun, errors, _) = try parseJournal(
            """
            journal:
              namespace: vigiltest-app
              units: [nginx, sshd.service]
              identifiers: kernel
              priority: warning
              matches: ["_TRANSPORT=kernel", "_TRANSPORT=syslog"]
              read_from: tail
              cursor_file: /var/lib/vigil/app.cursor
              tag: app.${SYSLOG_IDENTIFIER:-none}
              tag_default: other
              lowercase: true
              strip_underscores: yes
              include_fields: [MESSAGE, _PID]
              exclude_fields: [_CMDLINE]
              max_fields: 64
              batch: {max_entries: 100, max_bytes: 65536, max_wait: 250ms}
              window: 8
              commit_interval: 2s
              shutdown_grace: 10s
              dry_run: true
            """
        )
        #expect(errors.isEmpty, "\(errors)")
        #expect(configuration.source == .namespace("vigiltest-app"))
        #expect(configuration.units == ["nginx.service", "sshd.service"])
        #expect(configuration.identifiers == ["kernel"])
        #expect(configuration.maxPriority == 4)
        #expect(
            configuration.journalMatches == [
                "_SYSTEMD_UNIT=nginx.service", "_SYSTEMD_UNIT=sshd.service", "SYSLOG_IDENTIFIER=kernel", "PRIORITY=0",
                "PRIORITY=1", "PRIORITY=2", "PRIORITY=3", "PRIORITY=4", "_TRANSPORT=kernel", "_TRANSPORT=syslog",
            ]
        )
        #expect(configuration.startPosition == .tail)
        #expect(configuration.cursorFile == "/var/lib/vigil/app.cursor")
        #expect(configuration.tag == "app.${SYSLOG_IDENTIFIER:-none}")
        #expect(configuration.tagDefault == "other")
        #expect(
            configuration.record
                == .init(
                    lowercase: true,
                    stripUnderscores: true,
                    includeFields: ["MESSAGE", "_PID"],
                    excludeFields: ["_CMDLINE"],
                    maxFields: 64
                )
        )
        #expect(configuration.batching == .init(maxEntries: 100, maxBytes: 65536, maxWait: .milliseconds(250)))
        #expect(configuration.window == 8)
        #expect(configuration.commitInterval == .seconds(2))
        #expect(configuration.shutdownGrace == .seconds(10))
        #expect(dryRun)
    }

    @Test func otherSourcesAndNumericPriorities() throws {
        let (directory, _, directoryErrors, _) = try parseJournal(
            "journal:\n  directory: /host/var/log/journal\n  priority: 3\n"
        )
        #expect(directoryErrors.isEmpty)
        #expect(directory.source == .directory("/host/var/log/journal"))
        #expect(directory.maxPriority == 3)
        let (files, _, fileErrors, _) = try parseJournal("journal:\n  files: [/a.journal, /b.journal]\n")
        #expect(fileErrors.isEmpty)
        #expect(files.source == .files(["/a.journal", "/b.journal"]))
    }

    @Test(arguments: [
        ("journal:\n  namespace: a\n  directory: /b\n", 2, "journal.namespace", "at most one of"),
        ("journal:\n  priority: loud\n", 2, "journal.priority", "expects 0 to 7 or one of emerg"),
        ("journal:\n  matches: [MESSAGE]\n", 2, "journal.matches", "\"MESSAGE\" is not FIELD=value"),
        ("journal:\n  matches: [message=x]\n", 2, "journal.matches", "is not FIELD=value"),
        ("journal:\n  tag: a.${unit}\n", 2, "journal.tag", "not a journal field name"),
        ("journal:\n  tag: a.${UNIT\n", 2, "journal.tag", "without a closing"),
        ("journal:\n\n  read_from: middle\n", 3, "journal.read_from", "must be one of head, tail"),
        ("journal:\n  batch:\n    max_bytes: 10\n", 3, "journal.batch.max_bytes", "must be between 1024"),
        ("journal:\n  batch:\n    max_wait: soon\n", 3, "journal.batch.max_wait", "positive duration"),
        ("journal:\n  window: 0\n", 2, "journal.window", "must be between 1 and 1024"),
        ("journal:\n  units:\n    - {a: b}\n", 3, "journal.units", "expects a list of strings, found a mapping"),
        ("journal:\n  unit: [a]\n", 2, "journal.unit", "unknown key; did you mean units?"),
        (
            "journal:\n  batch:\n    max_entry: 5\n", 3, "journal.batch.max_entry",
            "unknown key; did you mean max_entries?"
        ),
        ("journal:\n  exclude_fields: [_cmdline]\n", 2, "journal.exclude_fields", "not a journal field name"),
        ("journal:\n  namespace: ../etc\n", 2, "journal.namespace", "not a journal namespace name"),
        ("journal: [a, b]\n", 1, "journal", "expects a mapping of settings, found a list"),
        ("journal:\n  lowercase: maybe\n", 2, "journal.lowercase", "expects true or false"),
    ])
    func mistakesNameTheFileLineKeyAndReason(_ yaml: String, _ line: Int, _ key: String, _ reason: String) throws {
        let (_, _, errors, path) = try parseJournal(yaml)
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.hasPrefix("\(path):\(line): \(key): ") == true, "\(errors)")
        #expect(errors.first?.contains(reason) == true, "\(errors)")
    }
}
