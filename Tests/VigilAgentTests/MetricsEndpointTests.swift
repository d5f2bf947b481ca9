import Foundation
import Testing

@testable import VigilAgent
@testable import VigilCore

@Suite(.serialized) struct MetricsEndpointTests {
    @Test func countsTheAgentsOpenDescriptors() throws {
        let metrics = ProcessMetrics()
        func reported() throws -> Double {
            var writer = MetricWriter(format: .text)
            metrics.write(into: &writer)
            let families = try parseExposition(writer.bytes[...])
            return try #require(families.first { $0.name == "process_open_fds" }?.samples.first?.value)
        }
        let before = try reported()
        #expect(before == Double(try FileSystem.entryCount(of: "/proc/self/fd") - 1))
        let extra = (0..<64).map { _ in dup(0) }
        defer { for fd in extra { close(fd) } }
        #expect(extra.allSatisfy { $0 >= 0 })
        #expect(try reported() == before + 64)
    }

    @Test func servesTheExpositionWithHelpAndTypeForEveryFamily() async throws {
        try await withAgent([]) { agent in
            let response = try await agent.get("/metrics")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            let families = try parseExposition(response.body[...])
            #expect(families.contains { $0.name == "node_load1" })
            #expect(families.contains { $0.name == "vigil_build_info" })
            for family in families {
                #expect(family.help != nil, "\(family.name) has no HELP")
                #expect(response.text.contains("# TYPE \(family.name) "), "\(family.name) has no TYPE")
            }
        }
    }

    @Test func negotiatesOpenMetricsAndGzip() async throws {
        try await withAgent([]) { agent in
            let openMetrics = try await agent.get(
                "/metrics",
                headers: ["Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"]
            )
            #expect(openMetrics.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8")
            #expect(openMetrics.text.hasSuffix("# EOF\n"))
            let compressed = try await agent.get("/metrics", headers: ["Accept-Encoding": "gzip"])
            #expect(compressed.headers["content-encoding"] == "gzip")
            let text = String(decoding: try Gzip.decompress(compressed.body), as: UTF8.self)
            #expect(text.contains("# TYPE node_load1 gauge"))
            let identity = try await agent.get("/metrics", headers: ["Accept-Encoding": "gzip;q=0, identity"])
            #expect(identity.headers["content-encoding"] == nil)
        }
    }

    @Test func filtersCollectorsLikeNodeExporter() async throws {
        try await withAgent([]) { agent in
            let only = try parseExposition(try await agent.get("/metrics?collect[]=loadavg").body[...])
            #expect(only.contains { $0.name == "node_load1" })
            #expect(!only.contains { $0.name.hasPrefix("node_memory_") })
            let encoded = try parseExposition(try await agent.get("/metrics?exclude%5B%5D=loadavg").body[...])
            #expect(!encoded.contains { $0.name == "node_load1" })
            #expect(encoded.contains { $0.name.hasPrefix("node_memory_") })
            let both = try await agent.get("/metrics?collect[]=loadavg&exclude[]=meminfo")
            #expect(both.status == 400)
            #expect(both.text == "Combined collect and exclude queries are not allowed.\n")
            let unknown = try await agent.get("/metrics?collect[]=nonsense")
            #expect(unknown.status == 400)
            #expect(unknown.text.contains("missing collector: nonsense"))
        }
    }

    @Test func streamsTheFamiliesOfHundredsOfContainersInChunksTheSameInEveryEncoding() async throws {
        let tree = try ClonedContainers(clones: 400)
        defer { tree.remove() }
        let arguments = [
            "--collector.disable-defaults", "--collector.containers", "--path.procfs=\(tree.base)/proc",
            "--path.sysfs=\(tree.base)/sys", "--path.rootfs=\(tree.base)/root",
        ]
        try await withAgent(arguments) { agent in
            let identity = try await agent.get("/metrics")
            #expect(identity.status == 200)
            #expect(identity.headers["transfer-encoding"] == "chunked")
            #expect(identity.headers["content-length"] == nil)
            // Many times the 64 KiB of text per chunk.
            #expect(identity.body.count > 2 << 20)
            let families = try parseExposition(identity.body[...])
            #expect(Set(families.map(\.name)).count == families.count)
            for name in ["container_memory_usage_bytes", "container_cpu_usage_seconds_total"] {
                let samples = families.first { $0.name == name }?.samples ?? []
                let docker = samples.filter { sample in
                    sample.labels.contains { $0.name == "id" && $0.value.hasPrefix("/system.slice/docker-") }
                }
                #expect(docker.count == 401, "\(name)")
            }
            #expect(families.last?.name == "process_start_time_seconds")

            let compressed = try await agent.get("/metrics", headers: ["Accept-Encoding": "gzip"])
            #expect(compressed.headers["content-encoding"] == "gzip")
            #expect(stableLines(try Gzip.decompress(compressed.body)) == stableLines(identity.body))

            let openMetrics = try await agent.get(
                "/metrics",
                headers: ["Accept": "application/openmetrics-text;version=1.0.0"]
            )
            #expect(openMetrics.text.hasSuffix("# EOF\n"))
            #expect(openMetrics.text.components(separatedBy: "# EOF").count == 2)
            #expect(openMetrics.text.components(separatedBy: "\n# TYPE ").count - 1 == families.count)
        }
    }

    /// A scraper that goes away in the middle of a streamed response costs only that response: the
    /// request's slot is given back (here the only one), and the next scrape is whole.
    @Test func aScraperGoneMidStreamFreesItsRequestSlot() async throws {
        let tree = try ClonedContainers(clones: 400)
        defer { tree.remove() }
        let arguments = [
            "--collector.disable-defaults", "--collector.containers", "--path.procfs=\(tree.base)/proc",
            "--path.sysfs=\(tree.base)/sys", "--path.rootfs=\(tree.base)/root", "--web.max-requests=1",
        ]
        try await withAgent(arguments) { agent in
            let port = agent.port
            for _ in 0..<3 { try await runBlocking { try abandonedGet(port: port, path: "/metrics") } }
            #expect(
                try await eventually(timeout: .seconds(10)) {
                    let response = try httpGet(port: port, path: "/metrics")
                    let families = try parseExposition(response.body[...])
                    return response.status == 200 && families.last?.name == "process_start_time_seconds"
                }
            )
        }
    }

    /// Each response gives back to the scraper's pool as many buffers as it took: the pool, which keeps
    /// buffers of up to a megabyte, does not grow by one per scrape.
    @Test func scrapesGiveBackTheBuffersTheyTake() async throws {
        let tree = try ClonedContainers(clones: 100)
        defer { tree.remove() }
        let arguments = [
            "--collector.containers", "--path.procfs=\(tree.base)/proc", "--path.sysfs=\(tree.base)/sys",
            "--path.rootfs=\(tree.base)/root",
        ]
        try await withAgent(arguments) { agent in
            for encoding in ["identity", "gzip"] {
                var pooled: [Int] = []
                for _ in 0..<20 {
                    #expect(try await agent.get("/metrics", headers: ["Accept-Encoding": encoding]).status == 200)
                    // The response's buffers go back once its last chunk is written, just after the client has it.
                    try await Task.sleep(for: .milliseconds(50))
                    pooled.append(agent.agent.scraper.pooledBuffers)
                }
                #expect(pooled.last == pooled[9], "\(encoding): \(pooled)")
            }
        }
    }

    /// Scrapes write into the buffers the last one gave back, not into new storage: with collectors that
    /// write nothing (their sources are missing here), whose empty buffers go back to the pool first.
    @Test func scrapesReuseTheStorageOfPooledBuffers() async throws {
        let empty = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let arguments = [
            "--collector.disable-defaults", "--collector.hwmon", "--collector.thermal_zone", "--collector.loadavg",
            "--collector.meminfo", "--path.sysfs=\(empty)",
        ]
        try await withAgent(arguments) { agent in
            var storage: [[UInt: Int]] = []
            for _ in 0..<12 {
                #expect(try await agent.get("/metrics", headers: ["Accept-Encoding": "gzip"]).status == 200)
                // The response's buffers go back once its last chunk is written, just after the client has it.
                try await Task.sleep(for: .milliseconds(50))
                storage.append(agent.agent.scraper.pooledStorage(.collectors))
            }
            #expect(storage.allSatisfy { !$0.isEmpty }, "the responses gave their buffers back")
            // Buffers change hands between scrapes, and one grows when it meets more text than it held
            // before: only then is its storage replaced.
            for (before, after) in zip(storage, storage.dropFirst()) where Set(after.keys) != Set(before.keys) {
                #expect(after.values.reduce(0, +) > before.values.reduce(0, +), "\(before) -> \(after)")
            }
        }
    }

    /// A gzip response gathers 64 KiB of collectors' text at a time; its buffers stay out of the
    /// collectors' pool, whose buffers keep the size of what collectors write (10 KiB here at most).
    @Test func theResponsesLargeBuffersDoNotGoRoundTheCollectors() async throws {
        try await withAgent([]) { agent in
            for _ in 0..<20 {
                #expect(try await agent.get("/metrics", headers: ["Accept-Encoding": "gzip"]).status == 200)
                try await Task.sleep(for: .milliseconds(50))
            }
            let collectors = agent.agent.scraper.pooledStorage(.collectors).values
            let response = agent.agent.scraper.pooledStorage(.response).values
            #expect(response.contains { $0 >= 64 << 10 }, "\(response.sorted())")
            #expect(collectors.allSatisfy { $0 < 64 << 10 }, "\(collectors.sorted())")
        }
    }

    @Test func servesLandingPageHealthAndNotFound() async throws {
        try await withAgent(["--web.telemetry-path=/custom"]) { agent in
            let landing = try await agent.get("/")
            #expect(landing.status == 200)
            #expect(landing.text.contains("href=\"/custom\""))
            #expect(try await agent.get("/healthz").text == "OK\n")
            #expect(try await agent.get("/metrics").status == 404)
            #expect(try await agent.get("/custom").status == 200)
        }
    }

    @Test func answersConcurrentScrapes() async throws {
        try await withAgent([]) { agent in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<16 { group.addTask { try await agent.get("/metrics").status } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 200, count: 16))
        }
    }

    @Test func stopsGracefully() async throws {
        let agent = try await RunningAgent([])
        #expect(try await agent.get("/healthz").status == 200)
        try await agent.stop()
        await #expect(throws: TestFailure.self) { try await agent.get("/healthz") }
    }
}

/// The exposition's lines without those whose values move between two scrapes.
private func stableLines(_ body: [UInt8]) -> [Substring] {
    let moving = ["container_last_seen", "node_scrape_collector_duration_seconds", "process_"]
    return String(decoding: body, as: UTF8.self).split(separator: "\n").filter { line in
        !moving.contains { line.hasPrefix($0) }
    }
}

/// The cgroup-v2 fixture tree with its Docker container cloned many times under new ids.
private struct ClonedContainers {
    let base: String

    init(clones: Int) throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../CollectorsTests/Fixtures/cgroup-v2").standardized.path
        self.base = try makeTemporaryDirectory("vigil-cloned-containers") + "/tree"
        try FileManager.default.copyItem(atPath: fixture, toPath: self.base)
        let services = self.base + "/sys/fs/cgroup/system.slice"
        let original = try #require(
            try FileManager.default.contentsOfDirectory(atPath: services).first { $0.hasPrefix("docker-") }
        )
        for clone in 0..<clones {
            let id = String(repeating: "c", count: 56) + String(format: "%08x", clone)
            try FileManager.default.copyItem(
                atPath: services + "/" + original,
                toPath: services + "/docker-\(id).scope"
            )
        }
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: (self.base as NSString).deletingLastPathComponent)
    }
}
