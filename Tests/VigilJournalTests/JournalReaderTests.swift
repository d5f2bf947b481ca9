import Foundation
import Logging
import Testing

@testable import VigilJournal

/// The reader against a real journald in a private namespace, compared with what journalctl exports.
@Suite struct JournalReaderTests {
    /// A configuration reading one test run's entries from the harness' namespace.
    private func configuration(
        _ journald: Journald,
        run: String,
        maxEntries: Int = 5000,
        maxWait: Duration = .milliseconds(100)
    ) -> JournalConfiguration {
        JournalConfiguration(
            source: .namespace(journald.namespace),
            matches: ["VIGIL_RUN=\(run)"],
            batching: .init(maxEntries: maxEntries, maxWait: maxWait)
        )
    }

    private func newRun() -> String { "r\(UInt32.random(in: 0...UInt32.max))" }

    @Test func readsEveryEntryExactlyAsWritten() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            let compressible = Array(String(repeating: "vigil reads the journal. ", count: 12_000).utf8)
            let random = (0..<200_000).map { _ in UInt8.random(in: 0...255) }
            let special: [[(String, [UInt8])]] = [
                [("MESSAGE", Array("plain text".utf8))],
                [
                    ("MESSAGE", Array("two\nlines".utf8)), ("REPEATED", [0x61]), ("REPEATED", [0x62]),
                    ("REPEATED", [0x63]),
                ],
                [("BINARY", [0x00, 0xFF, 0x0A, 0x41]), ("INVALID_UTF8", [0xC3, 0x28]), ("MESSAGE", [0x80])],
                [("HUGE_TEXT", compressible), ("HUGE_BINARY", random)],
                [("UNICODE", Array("grüße 日本 🙂".utf8)), ("EMPTY", []), ("MIXED", Array("ok".utf8)), ("MIXED", [0xFF])],
            ]
            var entries = special
            for index in 0..<45 {
                entries.append([
                    ("MESSAGE", Array("line \(index)".utf8)), ("PRIORITY", Array("\(index % 8)".utf8)),
                    ("SYSLOG_IDENTIFIER", Array("app\(index % 3)".utf8)),
                ])
            }
            for entry in entries { try journald.send(entry + [("VIGIL_RUN", Array(run.utf8))]) }
            let exported = try await journald.waitForEntries(entries.count, matching: ["VIGIL_RUN=\(run)"])

            let (reader, metrics) = try makeReader(self.configuration(journald, run: run))
            let (events, _) = try await readEvents(reader, count: entries.count)
            #expect(events.count == entries.count)
            for (event, entry) in zip(events, exported) { expectSame(event, entry) }

            // The properties that matter, spelled out.
            #expect(events[1]["REPEATED"] == .array([.string([0x61]), .string([0x62]), .string([0x63])]))
            #expect(events[1].text("MESSAGE") == "two\nlines")
            #expect(events[2]["BINARY"] == .binary([0x00, 0xFF, 0x0A, 0x41]))
            #expect(events[2]["INVALID_UTF8"] == .binary([0xC3, 0x28]))
            #expect(events[3]["HUGE_TEXT"] == .string(compressible))
            #expect(events[3]["HUGE_BINARY"] == .binary(random))
            #expect(events[4].text("UNICODE") == "grüße 日本 🙂")
            #expect(events[4]["MIXED"] == .array([.string(Array("ok".utf8)), .binary([0xFF])]))
            #expect(metrics.entriesRead.loadRelaxed == entries.count)
        }
    }

    @Test(arguments: [
        FilterCase(units: [], expected: ["m0", "m1", "m2", "m3", "m4", "m5"]),
        FilterCase(units: ["a.service", "b.service"], expected: ["m0", "m1", "m2", "m4", "m5"]),
        FilterCase(units: ["a.service", "b.service"], maxPriority: 3, expected: ["m0", "m2"]),
        FilterCase(identifiers: ["A"], maxPriority: 6, expected: ["m0", "m1"]),
        FilterCase(units: ["a.service"], matches: ["_SYSTEMD_UNIT=c.service"], expected: ["m0", "m1", "m3", "m5"]),
        FilterCase(matches: ["SYSLOG_IDENTIFIER=B", "PRIORITY=2"], expected: ["m2"]),
        FilterCase(identifiers: ["A", "C"], matches: ["FLAVOUR=x"], expected: ["m3", "m4"]),
    ])
    func filtersCombineLikeJournalctl(_ filter: FilterCase) async throws {
        try await TemporaryDirectory.with { directory in
            let file = directory.file("filters.journal")
            try makeJournalFile(
                at: file,
                entries: [
                    [("_SYSTEMD_UNIT", "a.service"), ("PRIORITY", "3"), ("SYSLOG_IDENTIFIER", "A"), ("MESSAGE", "m0")],
                    [("_SYSTEMD_UNIT", "a.service"), ("PRIORITY", "6"), ("SYSLOG_IDENTIFIER", "A"), ("MESSAGE", "m1")],
                    [("_SYSTEMD_UNIT", "b.service"), ("PRIORITY", "2"), ("SYSLOG_IDENTIFIER", "B"), ("MESSAGE", "m2")],
                    [
                        ("_SYSTEMD_UNIT", "c.service"), ("PRIORITY", "1"), ("SYSLOG_IDENTIFIER", "C"),
                        ("FLAVOUR", "x"), ("MESSAGE", "m3"),
                    ],
                    [
                        ("_SYSTEMD_UNIT", "b.service"), ("PRIORITY", "7"), ("SYSLOG_IDENTIFIER", "A"),
                        ("FLAVOUR", "x"), ("MESSAGE", "m4"),
                    ],
                    [("_SYSTEMD_UNIT", "a.service"), ("MESSAGE", "m5")],
                ]
            )
            let configuration = JournalConfiguration(
                source: .files([file]),
                units: filter.units,
                identifiers: filter.identifiers,
                maxPriority: filter.maxPriority,
                matches: filter.matches,
                batching: .init(maxWait: .milliseconds(50))
            )
            let (reader, _) = try makeReader(configuration)
            // One more than expected, so that an entry the filters should have left out shows up.
            let (events, _) = try await readEvents(
                reader,
                count: filter.expected.count + 1,
                timeout: .milliseconds(500)
            )
            #expect(events.compactMap { $0.text("MESSAGE") } == filter.expected)
            // journalctl, given the same matches, agrees.
            let oracle = try parseExport(
                try run("/usr/bin/journalctl", ["--file=\(file)", "-o", "export"] + configuration.journalMatches)
            )
            #expect(oracle.compactMap { $0.text("MESSAGE") } == filter.expected)
        }
    }

    @Test func resumesAfterASavedCursorWithoutMissingOrRepeating() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            for index in 0..<30 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
            try await journald.waitForEntries(30, matching: ["VIGIL_RUN=\(run)"])
            let first = try makeReader(self.configuration(journald, run: run, maxEntries: 12)).0
            let (_, batches) = try await readEvents(first, count: 12)
            let batch = try #require(batches.first)  // 12 entries, fewer if the machine is slow
            first.close()

            for index in 30..<40 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
            try await journald.waitForEntries(40, matching: ["VIGIL_RUN=\(run)"])
            let (second, metrics) = try makeReader(self.configuration(journald, run: run), saved: .cursor(batch.cursor))
            let (events, _) = try await readEvents(second, count: 40 - batch.count)
            #expect(events.compactMap { $0.text("MESSAGE") } == (batch.count..<40).map { "m\($0)" })
            #expect(metrics.gaps.loadRelaxed == 0)
        }
    }

    @Test func aVacuumedCursorIsCountedAndNothingAfterItIsSkipped() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            for index in 0..<10 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
            try await journald.waitForEntries(10, matching: ["VIGIL_RUN=\(run)"])
            let first = try makeReader(self.configuration(journald, run: run, maxEntries: 5)).0
            let (_, batches) = try await readEvents(first, count: 5)
            let cursor = try #require(batches.first?.cursor)  // the cursor of m4
            first.close()

            // m0…m9 go to an archived file, m10… to a new one; vacuuming deletes the archived file.
            try journald.rotate()
            for index in 10..<20 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
            try await journald.waitForEntries(20, matching: ["VIGIL_RUN=\(run)"])
            try journald.vacuum(keepFiles: 1)
            let remaining = try journald.exported(["VIGIL_RUN=\(run)"])
            try #require(remaining.first?.text("MESSAGE") == "m10", "vacuuming left \(remaining.count) entries")

            let (logger, log) = RecordingLogHandler.logger()
            let (second, metrics) = try makeReader(
                self.configuration(journald, run: run),
                saved: .cursor(cursor),
                logger: logger
            )
            let (events, _) = try await readEvents(second, count: 10)
            // m10, the first entry that still exists, is read: a blind skip after the seek would lose it.
            #expect(events.compactMap { $0.text("MESSAGE") } == (10..<20).map { "m\($0)" })
            #expect(metrics.gaps.loadRelaxed == 1)
            #expect(log.contains(.warning, "no longer exists"))
        }
    }

    @Test func aCursorOfAnotherJournalIsAGapAndReadingGoesOnFromItsPosition() async throws {
        try await TemporaryDirectory.with { directory in
            let file = directory.file("timed.journal")
            try makeJournalFile(
                at: file,
                entries: (0..<10).map { index in
                    [
                        ("__REALTIME_TIMESTAMP", "\(1_700_000_000_000_000 + index * 1_000_000)"),
                        ("__MONOTONIC_TIMESTAMP", "\(5_000_000 + index * 1_000_000)"),
                        ("MESSAGE", "m\(index)"),
                    ]
                }
            )
            // Between m5 and m6, from a seqnum series that no file has.
            let cursor =
                "s=0123456789abcdef0123456789abcdef;i=99;b=f3070d0cdeee48ca8c86c4f77cf925ec;"
                + "m=\(String(10_500_000, radix: 16));t=\(String(1_700_000_005_500_000, radix: 16));x=0"
            let (reader, metrics) = try makeReader(
                JournalConfiguration(source: .files([file]), batching: .init(maxWait: .milliseconds(50))),
                saved: .cursor(cursor)
            )
            let (events, _) = try await readEvents(reader, count: 4, timeout: .seconds(2))
            #expect(events.compactMap { $0.text("MESSAGE") } == ["m6", "m7", "m8", "m9"])
            #expect(metrics.gaps.loadRelaxed == 1)
        }
    }

    @Test func anUnparsableCursorStartsFromTheConfiguredPosition() async throws {
        try await TemporaryDirectory.with { directory in
            let file = directory.file("plain.journal")
            try makeJournalFile(at: file, entries: (0..<4).map { [("MESSAGE", "m\($0)"), ("EVEN", "\($0 % 2 == 0)")] })
            let (logger, log) = RecordingLogHandler.logger()
            let (reader, _) = try makeReader(
                JournalConfiguration(
                    source: .files([file]),
                    matches: ["EVEN=true"],
                    batching: .init(maxWait: .milliseconds(50))
                ),
                saved: .cursor("s=zz;i=zz;b=zz;m=zz;t=zz;x=zz"),
                logger: logger
            )
            let (events, _) = try await readEvents(reader, count: 3, timeout: .milliseconds(500))
            // From the head, and still filtered.
            #expect(events.compactMap { $0.text("MESSAGE") } == ["m0", "m2"])
            #expect(log.contains(.error, "not usable"))
        }
    }

    /// libsystemd opens a journal it may read no file of without an error (the packaged user outside the
    /// systemd-journal group): vigil says so instead of waiting in silence.
    @Test func noJournalFileToReadIsAWarning() async throws {
        try await TemporaryDirectory.with { directory in
            let journals = directory.file("journals")
            try FileManager.default.createDirectory(atPath: journals, withIntermediateDirectories: true)
            func warns() throws -> Bool {
                let (logger, log) = RecordingLogHandler.logger()
                _ = try makeReader(JournalConfiguration(source: .directory(journals)), logger: logger)
                return log.contains(.warning, "no journal file could be opened")
            }
            #expect(try warns())
            try makeJournalFile(at: journals + "/system.journal", entries: [[("MESSAGE", "m0")]])
            #expect(try !warns())
        }
    }

    @Test func startingAtTheTailReadsOnlyNewEntries() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            for index in 0..<5 { try journald.send([("MESSAGE", "old\(index)"), ("VIGIL_RUN", run)]) }
            try await journald.waitForEntries(5, matching: ["VIGIL_RUN=\(run)"])
            var configuration = self.configuration(journald, run: run)
            configuration.startPosition = .tail
            let (reader, _) = try makeReader(configuration)
            for index in 0..<3 { try journald.send([("MESSAGE", "new\(index)"), ("VIGIL_RUN", run)]) }
            let (events, _) = try await readEvents(reader, count: 3)
            #expect(events.compactMap { $0.text("MESSAGE") } == ["new0", "new1", "new2"])
        }
    }

    @Test func followsEntriesWrittenWhileItWaits() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            let (reader, metrics) = try makeReader(self.configuration(journald, run: run))
            let writer = Task {
                try await Task.sleep(for: .milliseconds(300))
                for index in 0..<4 { try journald.send([("MESSAGE", "late\(index)"), ("VIGIL_RUN", run)]) }
            }
            let (events, _) = try await readEvents(reader, count: 4)
            try await writer.value
            #expect(events.compactMap { $0.text("MESSAGE") } == ["late0", "late1", "late2", "late3"])
            #expect(metrics.lagSeconds == 0)
        }
    }

    @Test func aNamespaceThatAppearsLaterIsRead() async throws {
        try await Journald.with(started: false) { journald in
            let run = self.newRun()
            var configuration = self.configuration(journald, run: run)
            configuration.startPosition = .tail
            let (reader, _) = try makeReader(configuration)
            // Started after the reader: libsystemd picks the namespace's files up, and with nothing in the
            // journal at the start, "tail" means everything that comes.
            try journald.start()
            for index in 0..<3 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
            let (events, _) = try await readEvents(reader, count: 3)
            #expect(events.compactMap { $0.text("MESSAGE") } == ["m0", "m1", "m2"])
        }
    }

    @Test func keepsFollowingAcrossRotationAndVacuum() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            let (reader, metrics) = try makeReader(self.configuration(journald, run: run))
            var messages: [String] = []
            for round in 0..<3 {
                for index in 0..<10 { try journald.send([("MESSAGE", "m\(round * 10 + index)"), ("VIGIL_RUN", run)]) }
                let (events, _) = try await readEvents(reader, count: 10)
                messages += events.compactMap { $0.text("MESSAGE") }
                // The file the reader is in becomes archived, then is deleted under it.
                try journald.rotate()
                if round > 0 { try journald.vacuum(keepFiles: 1) }
            }
            #expect(messages == (0..<30).map { "m\($0)" })
            #expect(metrics.readErrors.loadRelaxed == 0)
        }
    }

    @Test func releasingTheMappedJournalPagesNeitherLosesNorRepeatsAnEntry() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            // Two files: the reader releases their pages while it reads the archived one and the active one.
            for index in 0..<3000 {
                try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)])
                if index == 1499 { try journald.rotate() }
            }
            try await journald.waitForEntries(3000, matching: ["VIGIL_RUN=\(run)"])
            // No mapped memory allowed: the pages are released at every look at them (each 512 entries).
            var configuration = self.configuration(journald, run: run, maxEntries: 700)
            configuration.maxMappedBytes = 0
            let (reader, metrics) = try makeReader(configuration)
            let (events, batches) = try await readEvents(reader, count: 3000)
            #expect(events.compactMap { $0.text("MESSAGE") } == (0..<3000).map { "m\($0)" })
            #expect(metrics.unmaps.loadRelaxed >= 3)
            #expect(metrics.readErrors.loadRelaxed == 0)
            #expect(metrics.gaps.loadRelaxed == 0)
            // Batches span the releases; each one's cursor is its last entry's.
            let exported = try journald.exported(["VIGIL_RUN=\(run)"])
            var end = 0
            for batch in batches {
                end += batch.count
                #expect(batch.cursor == exported[end - 1].cursor)
            }
        }
    }

    @Test func batchesEndOnCountBytesAndTagChanges() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            let identifiers = ["a", "a", "a", "b", "b", "a", "c", "c", "c", "c"]
            for (index, identifier) in identifiers.enumerated() {
                try journald.send([
                    ("MESSAGE", "m\(index) " + String(repeating: "x", count: 400)), ("VIGIL_RUN", run),
                    ("SYSLOG_IDENTIFIER", identifier),
                ])
            }
            try journald.send([("MESSAGE", "no identifier"), ("VIGIL_RUN", run)])
            try await journald.waitForEntries(identifiers.count + 1, matching: ["VIGIL_RUN=\(run)"])
            // A long wait, so that only count, bytes and tag end batches even on a loaded machine.
            var configuration = self.configuration(journald, run: run, maxEntries: 3, maxWait: .seconds(2))
            configuration.tag = "app.${SYSLOG_IDENTIFIER}"
            configuration.tagDefault = "none"
            let (reader, _) = try makeReader(configuration)
            let (events, batches) = try await readEvents(reader, count: identifiers.count + 1)
            #expect(events.count == identifiers.count + 1)
            #expect(batches.map(\.tag) == ["app.a", "app.b", "app.a", "app.c", "app.c", "app.none"])
            #expect(batches.map(\.count) == [3, 2, 1, 3, 1, 1])

            // Records of MESSAGE only, 426 bytes each: two fit in 1000 bytes, a third does not (the short last one does).
            var onlyMessages = self.configuration(journald, run: run, maxWait: .seconds(2))
            onlyMessages.record.includeFields = ["MESSAGE"]
            let (small, _) = try makeReader(onlyMessages, maxBatchBytes: 1000)
            let (smallEvents, smallBatches) = try await readEvents(small, count: identifiers.count + 1)
            #expect(
                smallEvents.compactMap { $0.text("MESSAGE")?.prefix(3) } == (0..<10).map { "m\($0) ".prefix(3) } + [
                    "no "
                ]
            )
            #expect(smallBatches.map(\.count) == [2, 2, 2, 2, 3])
            #expect(smallBatches.allSatisfy { $0.entries.count <= 1000 })
        }
    }

    @Test func theTailOfABacklogGoesAtOnceATrickleWaitsForMaxWait() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            for index in 0..<7 { try journald.send([("MESSAGE", "backlog \(index)"), ("VIGIL_RUN", run)]) }
            try await journald.waitForEntries(7, matching: ["VIGIL_RUN=\(run)"])
            let maxWait = Duration.seconds(3)
            let (reader, _) = try makeReader(self.configuration(journald, run: run, maxEntries: 3, maxWait: maxWait))
            // Two full batches, then the backlog's tail of one entry: not held back for maxWait.
            let started = ContinuousClock.now
            let (backlog, batches) = try await readEvents(reader, count: 7)
            #expect(backlog.count == 7)
            #expect(batches.map(\.count) == [3, 3, 1])
            #expect(started.duration(to: .now) < maxWait)

            // A single new entry after that is a trickle: it waits for more until maxWait.
            try journald.send([("MESSAGE", "trickle"), ("VIGIL_RUN", run)])
            let waited = ContinuousClock.now
            let (trickle, _) = try await readEvents(reader, count: 1)
            #expect(trickle.compactMap { $0.text("MESSAGE") } == ["trickle"])
            #expect(waited.duration(to: .now) >= maxWait - .milliseconds(500))
        }
    }

    @Test func anEntryLargerThanABatchIsDroppedAndCounted() async throws {
        try await Journald.with { journald in
            let run = self.newRun()
            try journald.send([("MESSAGE", "before"), ("VIGIL_RUN", run)])
            try journald.send([("MESSAGE", String(repeating: "y", count: 10_000)), ("VIGIL_RUN", run)])
            try journald.send([("MESSAGE", "after"), ("VIGIL_RUN", run)])
            try await journald.waitForEntries(3, matching: ["VIGIL_RUN=\(run)"])
            let (reader, metrics) = try makeReader(self.configuration(journald, run: run), maxBatchBytes: 4000)
            let (events, _) = try await readEvents(reader, count: 2)
            #expect(events.compactMap { $0.text("MESSAGE") } == ["before", "after"])
            #expect(metrics.entriesTooLarge.loadRelaxed == 1)
            #expect(metrics.entriesRead.loadRelaxed == 3)
        }
    }
}

struct FilterCase: Sendable, CustomTestStringConvertible {
    var units: [String] = []
    var identifiers: [String] = []
    var maxPriority: Int?
    var matches: [String] = []
    var expected: [String]

    var testDescription: String {
        "units \(self.units) identifiers \(self.identifiers) priority \(self.maxPriority.map(String.init) ?? "-") matches \(self.matches)"
    }
}
