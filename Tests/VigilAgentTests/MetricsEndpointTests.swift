import Foundation
import Testing
import VigilCore

@testable import VigilAgent

@Suite(.serialized) struct MetricsEndpointTests {
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
