import Logging
import Synchronization
import Testing
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// A collector that writes one gauge, optionally after blocking until released.
private final class TestCollector: Collector {
    let family: String
    let gate: Gate?
    let calls = Atomic<Int>(0)

    init(_ family: String, gate: Gate? = nil) {
        self.family = family
        self.gate = gate
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        self.calls.wrappingAdd(1, ordering: .relaxed)
        self.gate?.wait()
        writer.family(self.family, help: "test", type: .gauge)
        writer.sample(1)
    }
}

/// Blocks callers (as a hung NFS statfs would) until opened.
private final class Gate: Sendable {
    private let open = Atomic<Bool>(false)
    func wait() {
        while !self.open.load(ordering: .acquiring) { usleep(1000) }
    }
    func release() { self.open.store(true, ordering: .releasing) }
}

private struct FailingCollector: Collector {
    let family: String
    let error: any Error & Sendable
    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        writer.family(self.family, help: "written before the failure", type: .gauge)
        writer.sample(1)
        throw self.error
    }
}

private func makeScraper(_ entries: [(String, any Collector)], timeout: Duration = .seconds(5)) -> Scraper {
    Scraper(
        entries: entries.map { Scraper.Entry(name: $0.0, collector: $0.1) },
        knownNames: Set(entries.map(\.0) + ["disabled_one"]),
        paths: PathRoots(),
        logger: Logger(label: "test"),
        lanes: 2,
        timeout: timeout,
        stallThreshold: .milliseconds(50)
    )
}

private func successes(_ output: Scraper.Output) throws -> [String: Double] {
    let families = try parseExposition(output.bytes[...])
    let success = families.first { $0.name == "node_scrape_collector_success" }!
    return Dictionary(uniqueKeysWithValues: success.samples.map { ($0[label: "collector"]!, $0.value) })
}

@Suite struct ScraperTests {
    @Test func runsEveryCollectorAndReportsSuccess() async throws {
        let scraper = makeScraper([("a", TestCollector("metric_a")), ("b", TestCollector("metric_b"))])
        let output = await scraper.scrape(format: .text)
        let families = try parseExposition(output.bytes[...])
        #expect(families.map(\.name).contains("metric_a"))
        #expect(families.map(\.name).contains("metric_b"))
        #expect(try successes(output) == ["a": 1, "b": 1])
        #expect(families.contains { $0.name == "node_scrape_collector_duration_seconds" && $0.samples.count == 2 })
    }

    @Test func aHungCollectorCostsOnlyItsOwnSeriesAndTheScrapeReturnsOnTime() async throws {
        let gate = Gate()
        let hung = TestCollector("metric_hung", gate: gate)
        var entries: [(String, any Collector)] = [("hung", hung)]
        for index in 0..<6 { entries.append(("c\(index)", TestCollector("metric_\(index)"))) }
        let scraper = makeScraper(entries, timeout: .milliseconds(400))
        let started = ContinuousClock.now
        let output = await scraper.scrape(format: .text)
        let elapsed = started.duration(to: .now)
        #expect(elapsed < .seconds(2))
        let success = try successes(output)
        #expect(success["hung"] == 0)
        for index in 0..<6 { #expect(success["c\(index)"] == 1) }
        #expect(output.failedCollectors == ["hung"])
        #expect(!String(decoding: output.bytes, as: UTF8.self).contains("metric_hung"))

        // While the first call is still blocked, later scrapes skip the collector at once.
        let again = await scraper.scrape(format: .text)
        #expect(try successes(again)["hung"] == 0)
        #expect(hung.calls.load(ordering: .relaxed) == 1)

        // Once it returns, it runs again.
        gate.release()
        try await Task.sleep(for: .milliseconds(100))
        let recovered = await scraper.scrape(format: .text)
        #expect(try successes(recovered)["hung"] == 1)
    }

    @Test func twoHungCollectorsDoNotBlockTheOthers() async throws {
        let gate = Gate()
        defer { gate.release() }
        var entries: [(String, any Collector)] = [
            ("a_hung", TestCollector("h1", gate: gate)), ("b_hung", TestCollector("h2", gate: gate)),
        ]
        for index in 0..<4 { entries.append(("c\(index)", TestCollector("metric_\(index)"))) }
        let scraper = makeScraper(entries, timeout: .seconds(3))
        let started = ContinuousClock.now
        let output = await scraper.scrape(format: .text)
        // Both lanes stall on the hung collectors; replacement lanes finish the rest, well before the deadline.
        #expect(started.duration(to: .now) >= .seconds(3))
        let success = try successes(output)
        for index in 0..<4 { #expect(success["c\(index)"] == 1) }
        #expect(success["a_hung"] == 0 && success["b_hung"] == 0)
    }

    @Test func failuresAreReportedAndMissingSourcesAreQuiet() async throws {
        let scraper = makeScraper([
            ("broken", FailingCollector(family: "partial_a", error: CollectorError.failed("bad line"))),
            (
                "absent",
                FailingCollector(
                    family: "partial_b",
                    error: FileError(path: "/proc/pressure/cpu", errno: ENOENT, operation: "open")
                )
            ),
            ("fine", TestCollector("metric_fine")),
        ])
        let output = await scraper.scrape(format: .text)
        #expect(try successes(output) == ["broken": 0, "absent": 0, "fine": 1])
        #expect(Set(output.failedCollectors) == ["broken", "absent"])
    }

    @Test func selectsCollectorsLikeNodeExporter() throws {
        let scraper = makeScraper([("a", TestCollector("x")), ("b", TestCollector("y")), ("c", TestCollector("z"))])
        #expect(try scraper.select(collect: ["b"], exclude: []) == [1])
        #expect(try scraper.select(collect: [], exclude: ["b"]) == [0, 2])
        #expect(try scraper.select(collect: [], exclude: []) == [0, 1, 2])
        #expect(throws: CollectorSelectionError.self) { try scraper.select(collect: ["a"], exclude: ["b"]) }
        #expect {
            try scraper.select(collect: ["nope"], exclude: [])
        } throws: { "\($0)".hasSuffix("missing collector: nope") }
        #expect {
            try scraper.select(collect: ["disabled_one"], exclude: [])
        } throws: { "\($0)".hasSuffix("disabled collector: disabled_one") }
    }

    @Test func openMetricsOutputEndsWithEOF() async throws {
        let scraper = makeScraper([("a", TestCollector("metric_a"))])
        let output = await scraper.scrape(format: .openMetrics)
        #expect(String(decoding: output.bytes, as: UTF8.self).hasSuffix("# EOF\n"))
    }
}
