import Foundation
import Logging
import ServiceLifecycle
import Testing
import VigilForward
import VigilForwardTestSupport

@testable import VigilJournal

/// journald → vigil's log pipeline → ForwardOutput → the strict test receiver, all real.
@Suite struct ForwardEndToEndTests {
    /// A forward output towards `receiver`, retrying fast so that tests do not wait long.
    private func output(_ receiver: ForwardReceiver) throws -> ForwardOutput {
        try self.output(targets: [.init(host: "127.0.0.1", port: receiver.port)])
    }

    /// A forward output towards `targets`, retrying fast so that tests do not wait long.
    private func output(
        targets: [ForwardConfiguration.Target],
        recoverWait: Duration = .milliseconds(200)
    ) throws -> ForwardOutput {
        try ForwardOutput(
            configuration: ForwardConfiguration(
                targets: targets,
                ackTimeout: .seconds(5),
                connectTimeout: .seconds(2),
                heartbeatInterval: .milliseconds(100),
                hardTimeout: .seconds(1),
                recoverWait: recoverWait,
                retryWait: .milliseconds(100),
                maxRetryWait: .milliseconds(400)
            ),
            logger: testLogger
        )
    }

    private func configuration(
        _ journald: Journald,
        run: String,
        cursorFile: String,
        maxEntries: Int = 5000,
        window: Int = 4
    ) -> JournalConfiguration {
        JournalConfiguration(
            source: .namespace(journald.namespace),
            matches: ["VIGIL_RUN=\(run)"],
            cursorFile: cursorFile,
            batching: .init(maxEntries: maxEntries, maxWait: .milliseconds(100)),
            window: window,
            commitInterval: .milliseconds(50)
        )
    }

    @Test func everyEntryArrivesExactlyAsWritten() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let receiver = try await ForwardReceiver.start()
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                var entries: [[(String, [UInt8])]] = [
                    [("MESSAGE", Array("two\nlines".utf8)), ("REPEATED", [0x61]), ("REPEATED", [0x62])],
                    [("BINARY", [0x00, 0xFF, 0x0A]), ("MESSAGE", [0xC3, 0x28])],
                    [("HUGE", (0..<300_000).map { UInt8(0x61 + $0 % 26) })],
                    [("UNICODE", Array("grüße 日本 🙂".utf8))],
                ]
                for index in 0..<300 { entries.append([("MESSAGE", Array("line \(index)".utf8))]) }
                for entry in entries { try journald.send(entry + [("VIGIL_RUN", Array(run.utf8))]) }
                let exported = try await journald.waitForEntries(entries.count, matching: ["VIGIL_RUN=\(run)"])

                let output = try self.output(receiver)
                let cursorFile = directory.file("journal.cursor")
                let pipeline = try LogPipeline(
                    configuration: self.configuration(journald, run: run, cursorFile: cursorFile, maxEntries: 50),
                    sink: output,
                    maxBatchBytes: 1_024_000,
                    logger: testLogger
                )
                try await withRunningServices([output, pipeline]) {
                    #expect(await receiver.wait { $0.uniqueEvents.count >= entries.count })
                    #expect(
                        await eventually { CursorStore(path: cursorFile).load() == .cursor(exported.last!.cursor) }
                    )
                }
                await receiver.stop()
                // Batches in flight together may arrive in any order; within a batch, journal order holds.
                let events = receiver.snapshot.uniqueEvents.map(Event.init).sorted { $0.journalOrder < $1.journalOrder }
                #expect(events.count == entries.count)
                for (event, entry) in zip(events, exported) { expectSame(event, entry) }
                #expect(receiver.snapshot.protocolErrors.isEmpty)
            }
        }
    }

    @Test func aReceiverOutageLosesNothingAndReadingWaits() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let receiver = try await ForwardReceiver.start()
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let output = try self.output(receiver)
                let pipeline = try LogPipeline(
                    configuration: self.configuration(
                        journald,
                        run: run,
                        cursorFile: directory.file("journal.cursor"),
                        maxEntries: 20,
                        window: 2
                    ),
                    sink: output,
                    maxBatchBytes: 1_024_000,
                    logger: testLogger
                )
                let metrics = pipeline.metrics
                try await withRunningServices([output, pipeline]) {
                    for index in 0..<100 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
                    #expect(await receiver.wait { $0.uniqueEvents.count == 100 })

                    // The receiver goes down; 2000 more entries are written meanwhile.
                    await receiver.stopListening()
                    for index in 100..<2100 { try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)]) }
                    try await journald.waitForEntries(2100, matching: ["VIGIL_RUN=\(run)"])
                    #expect(await eventually { metrics.readingPaused.loadRelaxed == 1 })
                    let readWhileDown = metrics.entriesRead.loadRelaxed
                    try await Task.sleep(for: .seconds(1))
                    // Reading stopped at the window: two batches of 20 beyond what was delivered.
                    #expect(metrics.entriesRead.loadRelaxed == readWhileDown)
                    #expect(readWhileDown <= 100 + 2 * 20)
                    #expect(metrics.batchesInFlight.loadRelaxed <= 2)

                    // Back up: everything arrives, in journal order, nothing missing.
                    try await receiver.resumeListening()
                    #expect(await receiver.wait(timeout: .seconds(60)) { $0.uniqueEvents.count >= 2100 })
                }
                await receiver.stop()
                let messages = receiver.snapshot.uniqueEvents.compactMap { Event($0).text("MESSAGE") }
                #expect(messages.count == 2100)
                #expect(Set(messages) == Set((0..<2100).map { "m\($0)" }))
            }
        }
    }
}

extension ForwardEndToEndTests {
    @Test func failsOverToTheStandbyTargetAndBackWithoutLosingAnEntry() async throws {
        try await Journald.with { journald in
            try await TemporaryDirectory.with { directory in
                let primary = try await ForwardReceiver.start()
                let standby = try await ForwardReceiver.start()
                let run = "r\(UInt32.random(in: 0...UInt32.max))"
                let output = try self.output(
                    targets: [
                        .init(host: "127.0.0.1", port: primary.port, name: "primary"),
                        .init(host: "127.0.0.1", port: standby.port, name: "standby", standby: true),
                    ],
                    recoverWait: .milliseconds(500)
                )
                let cursorFile = directory.file("journal.cursor")
                let pipeline = try LogPipeline(
                    configuration: self.configuration(journald, run: run, cursorFile: cursorFile, maxEntries: 20),
                    sink: output,
                    maxBatchBytes: 1_024_000,
                    logger: testLogger
                )
                let total = 3000
                let messages = {
                    (primary.snapshot.events + standby.snapshot.events).compactMap { Event($0).text("MESSAGE") }
                }
                try await withRunningServices([output, pipeline]) {
                    let writer = Task {
                        for index in 0..<total {
                            try journald.send([("MESSAGE", "m\(index)"), ("VIGIL_RUN", run)])
                            if index % 50 == 49 { try await Task.sleep(for: .milliseconds(100)) }
                        }
                    }
                    #expect(await primary.wait(timeout: .seconds(30)) { $0.uniqueEventCount >= 300 })
                    #expect(standby.snapshot.requestCount == 0)

                    // The primary goes down: batches go to the standby.
                    await primary.stopListening()
                    let downAt = primary.snapshot.eventCount
                    #expect(await standby.wait(timeout: .seconds(30)) { $0.uniqueEventCount >= 300 })
                    #expect(output.targetStatus.map(\.up) == [false, true])

                    // It comes back: once heartbeats succeeded for recover_wait, batches go to it again.
                    try await primary.resumeListening()
                    #expect(await eventually(timeout: .seconds(30)) { output.targetStatus.map(\.up) == [true, true] })
                    let upAt = primary.snapshot.eventCount
                    #expect(await primary.wait(timeout: .seconds(30)) { $0.eventCount > max(downAt, upAt) })
                    try await Task.sleep(for: .milliseconds(300))  // batches sent to the standby before land
                    let standbyAfterRecovery = standby.snapshot.eventCount
                    try await writer.value
                    #expect(await eventually(timeout: .seconds(60)) { Set(messages()).count >= total })
                    #expect(await eventually { CursorStore(path: cursorFile).load() != .missing })
                    // Once the primary is back, the standby stands by again.
                    #expect(standby.snapshot.eventCount == standbyAfterRecovery)
                }
                await primary.stop()
                await standby.stop()
                let received = messages()
                #expect(Set(received) == Set((0..<total).map { "m\($0)" }))
                let exported = try journald.exported(["VIGIL_RUN=\(run)"])
                #expect(CursorStore(path: cursorFile).load() == .cursor(exported.last!.cursor))
                #expect(primary.snapshot.protocolErrors.isEmpty && standby.snapshot.protocolErrors.isEmpty)
                print(
                    "failover: primary \(primary.snapshot.uniqueEventCount) entries, standby \(standby.snapshot.uniqueEventCount), \(received.count - Set(received).count) of \(total) arrived twice"
                )
            }
        }
    }
}

extension Event {
    /// Journal order of events from one journald: time, then `_SOURCE_REALTIME_TIMESTAMP`.
    var journalOrder: (UInt32, UInt32, UInt64) {
        (self.seconds, self.nanoseconds, UInt64(self.text("_SOURCE_REALTIME_TIMESTAMP") ?? "") ?? 0)
    }

    /// The event as the receiver decoded it.
    init(_ received: ReceivedEvent) {
        func unpacked(_ value: MessagePackValue) -> Unpacked {
            switch value {
            case .string(let text): .string(Array(text.utf8))
            case .binary(let bytes): .binary(bytes)
            case .array(let values): .array(values.map(unpacked))
            default: .other(0)
            }
        }
        var record: [(key: String, value: Unpacked)] = []
        if case .map(let entries) = received.record {
            for entry in entries { record.append((entry.key.stringValue ?? "?", unpacked(entry.value))) }
        }
        self.init(seconds: received.time.seconds, nanoseconds: received.time.nanoseconds, record: record)
    }
}

/// Runs services in a group for the duration of `body`, then shuts them down gracefully.
func withRunningServices(_ services: [any Service], _ body: () async throws -> Void) async throws {
    let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: testLogger))
    let running = Task { try await group.run() }
    do {
        try await body()
    } catch {
        await group.triggerGracefulShutdown()
        try? await running.value
        throw error
    }
    await group.triggerGracefulShutdown()
    try await running.value
}
