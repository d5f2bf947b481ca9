import Foundation
import Testing
import VigilCore

@testable import VigilAgent

/// vigil against the real things: a Prometheus server that scrapes it, promtool that lints it, and
/// Debian's node_exporter on the same host as the reference for names, labels and stable values.
@Suite(.serialized) struct EndToEndTests {
    @Test func aRealPrometheusScrapesVigilAndAnswersQueries() async throws {
        try await withAgent { agent in
            let directory = try makeTemporaryDirectory("vigil-prometheus")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: vigil
                static_configs:
                  - targets: ["127.0.0.1:\(agent.port)"]
            """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
            let port = try freePort()
            let prometheus = try ChildProcess(
                "/usr/bin/prometheus",
                [
                    "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                    "--web.listen-address=127.0.0.1:\(port)",
                ],
                directory: directory
            )
            defer { prometheus.stop() }
            for query in ["up{job=\"vigil\"} == 1", "node_memory_MemAvailable_bytes", "node_cpu_seconds_total"] {
                let answered = try await eventually(timeout: .seconds(60)) {
                    try !prometheusQuery(port: port, query).isEmpty
                }
                #expect(answered, "Prometheus had no result for \(query); its log:\n\(prometheus.output)")
            }
            let memory = try prometheusQuery(port: port, "node_memory_MemAvailable_bytes")
            #expect((Double(memory.first?.value ?? "") ?? 0) > 0)
            let cpu = try prometheusQuery(port: port, "node_cpu_seconds_total{mode=\"idle\"}")
            #expect(cpu.count == ProcessInfo.processInfo.activeProcessorCount)
        }
    }

    @Test func promtoolFindsNothingBeyondWhatItFindsInNodeExporter() async throws {
        try await withNodeExporterAndVigil { vigil, nodeExporter in
            let vigilText = try await vigil("/metrics")
            let referenceText = try await nodeExporter("/metrics")
            let vigilProblems = try promtoolProblems(vigilText)
            let referenceProblems = try promtoolProblems(referenceText)
            // A family only newer node_exporter releases have may carry the kind of problem node_exporter's
            // own families of that collector carry (netstat's CamelCase names).
            let referenceKinds = Set(referenceProblems.map(problemKind))
            let newer = Set(vigilOnlyFamilies.values.joined())
            let unexplained = vigilProblems.subtracting(referenceProblems).filter { problem in
                !(newer.contains(problemFamily(problem)) && referenceKinds.contains(problemKind(problem)))
            }
            #expect(unexplained.sorted() == [])
        }
    }

    @Test func exposesTheSameFamiliesLabelsAndStableValuesAsNodeExporter() async throws {
        try await withNodeExporterAndVigil { vigil, nodeExporter in
            for collector in comparedCollectors {
                let ours = try parseExposition(try await vigil("/metrics?collect[]=\(collector)"))
                let theirs = try parseExposition(try await nodeExporter("/metrics?collect[]=\(collector)"))
                let ourFamilies = collectorFamilies(ours)
                let theirFamilies = collectorFamilies(theirs)
                let expectedExtra = vigilOnlyFamilies[collector] ?? []
                #expect(
                    Set(ourFamilies.keys).subtracting(expectedExtra) == Set(theirFamilies.keys),
                    "collector \(collector): families differ"
                )
                for (name, family) in theirFamilies {
                    guard let mine = ourFamilies[name] else { continue }
                    #expect(mine.type == family.type, "\(name): type \(mine.type), node_exporter \(family.type)")
                    let newer = newerLabels.first { name.hasPrefix($0.key) }?.value ?? []
                    #expect(
                        Set(labelNames(mine).map { $0.subtracting(newer) }) == labelNames(family),
                        "\(name): label names differ"
                    )
                }
            }
            let ours = try parseExposition(try await vigil("/metrics"))
            let theirs = try parseExposition(try await nodeExporter("/metrics"))
            for (name, labels) in stableSeries {
                let mine = sample(ours, name, labels)
                let reference = sample(theirs, name, labels)
                #expect(mine != nil && reference != nil, "\(name)\(labels) missing")
                #expect(
                    mine?.value == reference?.value,
                    "\(name)\(labels): \(String(describing: mine?.value)) vs \(String(describing: reference?.value))"
                )
                for label in reference?.labels ?? [] {
                    #expect(mine?[label: label.name] == label.value, "\(name): label \(label.name) differs")
                }
            }
        }
    }
}

/// Collectors both agents have and both enable by default.
private let comparedCollectors = [
    "arp", "bonding", "conntrack", "cpu", "cpufreq", "diskstats", "dmi", "edac", "entropy", "filefd", "filesystem",
    "hwmon", "ipvs", "loadavg", "mdadm", "meminfo", "netclass", "netdev", "netstat", "nfs", "nvme", "os", "pressure",
    "rapl",
    "schedstat", "sockstat", "softnet", "stat", "textfile", "thermal_zone", "time", "timex", "udp_queues",
    "uname", "vmstat", "xfs",
]

/// Families vigil adds to a collector that Debian's node_exporter 1.5.0 lacks: they came with newer
/// node_exporter releases (the reference is 1.12), listed in the README.
private let vigilOnlyFamilies: [String: Set<String>] = [
    "filesystem": ["node_filesystem_mount_info"],
    "mdadm": ["node_md_degraded", "node_md_raid_disks"],
    "netstat": ["node_netstat_TcpExt_TCPOFOQueue", "node_netstat_TcpExt_TCPRcvQDrop"],
    "os": ["node_os_support_end_timestamp_seconds"],
    "pressure": ["node_pressure_irq_stalled_seconds_total"],
    "softnet": [
        "node_softnet_backlog_len", "node_softnet_cpu_collision_total", "node_softnet_flow_limit_count_total",
        "node_softnet_received_rps_total",
    ],
]

/// Labels that newer node_exporter releases added to families (by family name prefix).
private let newerLabels: [String: Set<String>] = [
    "node_filesystem_": ["device_error"], "node_network_info": ["adminstate"], "node_disk_info": ["rotational"],
]

/// The family a promtool problem line names (its first word) and what it says about it (the rest).
private func problemFamily(_ problem: String) -> String { String(problem.prefix { $0 != " " }) }
private func problemKind(_ problem: String) -> String { String(problem.drop { $0 != " " }) }

/// Series whose values and labels do not change between two scrapes a moment apart.
private let stableSeries: [(String, [String: String])] = [
    ("node_memory_MemTotal_bytes", [:]), ("node_memory_SwapTotal_bytes", [:]),
    ("node_filesystem_size_bytes", ["mountpoint": "/"]), ("node_filesystem_files", ["mountpoint": "/"]),
    ("node_uname_info", [:]), ("node_os_info", [:]), ("node_os_version", [:]),
    ("node_boot_time_seconds", [:]), ("node_entropy_pool_size_bits", [:]), ("node_filefd_maximum", [:]),
    ("node_timex_tick_seconds", [:]), ("node_timex_tai_offset_seconds", [:]),
]

private func sample(_ families: [ParsedFamily], _ name: String, _ labels: [String: String]) -> ParsedSample? {
    let samples = families.first { $0.name == name }?.samples.filter { sample in
        labels.allSatisfy { sample[label: $0.key] == $0.value }
    }
    return samples?.count == 1 ? samples?.first : nil
}

private func collectorFamilies(_ families: [ParsedFamily]) -> [String: ParsedFamily] {
    var result: [String: ParsedFamily] = [:]
    for family in families where !isFrameworkFamily(family.name) { result[family.name] = family }
    return result
}

private func isFrameworkFamily(_ name: String) -> Bool {
    name.hasPrefix("node_scrape_collector_") || name.hasPrefix("go_") || name.hasPrefix("process_")
        || name.hasPrefix("promhttp_") || name.hasPrefix("vigil_") || name == "node_exporter_build_info"
}

private func labelNames(_ family: ParsedFamily) -> Set<Set<String>> {
    Set(family.samples.map { Set($0.labels.map(\.name)) })
}

/// Runs `body` with a vigil and a node_exporter on loopback, both with the compared collectors only.
private func withNodeExporterAndVigil(
    _ body: (_ vigil: (String) async throws -> String, _ nodeExporter: (String) async throws -> String) async throws ->
        Void
) async throws {
    let collectorFlags = ["--collector.disable-defaults"] + comparedCollectors.map { "--collector.\($0)" }
    try await withAgent(collectorFlags) { agent in
        let directory = try makeTemporaryDirectory("vigil-node-exporter")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try freePort()
        let nodeExporter = try ChildProcess(
            "/usr/bin/prometheus-node-exporter",
            ["--web.listen-address=127.0.0.1:\(port)"] + collectorFlags,
            directory: directory
        )
        defer { nodeExporter.stop() }
        let up = try await eventually(timeout: .seconds(20)) { try httpGet(port: port, path: "/metrics").status == 200 }
        #expect(up, "node_exporter did not start: \(nodeExporter.output)")
        try await body(
            { path in try await agent.get(path).text },
            { path in try await runBlocking { try httpGet(port: port, path: path).text } }
        )
    }
}

private func promtoolProblems(_ exposition: String) throws -> Set<String> {
    let result = try runCommand("/usr/bin/promtool", ["check", "metrics"], input: Array(exposition.utf8))
    return Set(result.output.split(separator: "\n").map(String.init).filter { !$0.isEmpty })
}

/// The instant-vector result of a PromQL query through Prometheus' HTTP API.
private func prometheusQuery(port: Int, _ query: String) throws -> [(labels: [String: String], value: String)] {
    var components = URLComponents()
    components.queryItems = [URLQueryItem(name: "query", value: query)]
    let encoded = components.percentEncodedQuery!.replacingOccurrences(of: "+", with: "%2B")
    let response = try httpGet(port: port, path: "/api/v1/query?" + encoded)
    guard response.status == 200,
        let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
        let data = json["data"] as? [String: Any],
        let result = data["result"] as? [[String: Any]]
    else { throw TestFailure("bad answer from Prometheus: \(response.text)") }
    return result.map { item in
        let labels = item["metric"] as? [String: String] ?? [:]
        let value = (item["value"] as? [Any])?.last as? String ?? ""
        return (labels, value)
    }
}
