import Foundation
import Testing
import VigilCore

@testable import VigilAgent

/// A collector blocked in the kernel — here `open(2)` of a FIFO nobody writes, which blocks exactly like a
/// read of a hung NFS file or a hwmon driver that never answers — costs only its own series.
@Suite(.serialized) struct DeadlineTests {
    /// A procfs root whose `loadavg` blocks every reader; `meminfo` is the host's.
    private func procfsWithBlockingLoadavg() throws -> String {
        let root = try makeTemporaryDirectory("vigil-blocking-proc")
        // Pseudo-files report size 0, so copy the contents rather than the file.
        try Data(contentsOf: URL(fileURLWithPath: "/proc/meminfo")).write(to: URL(fileURLWithPath: root + "/meminfo"))
        #expect(mkfifo(root + "/loadavg", 0o600) == 0)
        return root
    }

    /// Unblocks whoever waits on the FIFO (a writer that opens and closes), then removes the tree.
    private func release(_ root: String) {
        let fd = open(root + "/loadavg", O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
        try? FileManager.default.removeItem(atPath: root)
    }

    @Test func aBlockedCollectorFailsAloneAndTheScrapeReturnsOnTime() async throws {
        let root = try self.procfsWithBlockingLoadavg()
        defer { self.release(root) }
        try await withAgent(["--path.procfs=\(root)", "--collector.timeout=1s"]) { agent in
            let started = ContinuousClock.now
            let response = try await agent.get("/metrics")
            let elapsed = started.duration(to: .now)
            #expect(response.status == 200)
            #expect(elapsed < .seconds(3), "the scrape took \(elapsed)")
            let families = try parseExposition(response.body[...])
            let success = families.first { $0.name == "node_scrape_collector_success" }?.samples ?? []
            #expect(success.first { $0[label: "collector"] == "loadavg" }?.value == 0)
            #expect(success.first { $0[label: "collector"] == "meminfo" }?.value == 1)
            #expect(families.contains { $0.name == "node_memory_MemTotal_bytes" })
            #expect(!families.contains { $0.name == "node_load1" })

            // The next scrape does not wait for the collector that is still blocked.
            let again = ContinuousClock.now
            #expect(try await agent.get("/metrics").status == 200)
            #expect(again.duration(to: .now) < .milliseconds(900))
        }
    }

    @Test func scrapesBeyondMaxRequestsGet503() async throws {
        let root = try self.procfsWithBlockingLoadavg()
        defer { self.release(root) }
        try await withAgent(["--path.procfs=\(root)", "--collector.timeout=2s", "--web.max-requests=1"]) { agent in
            async let slow = agent.get("/metrics")
            try await Task.sleep(for: .milliseconds(300))
            let refused = try await agent.get("/metrics")
            #expect(refused.status == 503)
            #expect(refused.text == "Limit of concurrent requests reached (1), try again later.\n")
            #expect(try await slow.status == 200)
            // The limit counts scrapes in flight only; other pages are always served.
            #expect(try await agent.get("/healthz").status == 200)
        }
    }

    @Test func prometheusScrapeTimeoutHeaderShortensTheDeadline() async throws {
        let root = try self.procfsWithBlockingLoadavg()
        defer { self.release(root) }
        try await withAgent(["--path.procfs=\(root)", "--collector.timeout=30s"]) { agent in
            let started = ContinuousClock.now
            let response = try await agent.get("/metrics", headers: ["X-Prometheus-Scrape-Timeout-Seconds": "1"])
            #expect(response.status == 200)
            #expect(started.duration(to: .now) < .seconds(3))
        }
    }
}
