import Foundation
import NIOCore
import NIOPosix
import Testing
import VigilCore

@testable import VigilAgent

@Suite struct ConfigurationTests {
    private func errors(_ arguments: [String]) -> [ConfigurationError] {
        do {
            _ = try ConfigurationLoader().invocation(arguments: arguments)
            return []
        } catch {
            return error.errors
        }
    }

    private func withFile(_ yaml: String, _ body: (String) throws -> Void) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/vigil.yml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        try body(path)
    }

    @Test func defaultsAreNodeExporters() throws {
        let settings = try loadConfiguration([]).settings
        #expect(settings.strings("web.listen-address") == [":9100"])
        #expect(settings.string("web.telemetry-path") == "/metrics")
        #expect(settings.integer("web.max-requests") == 40)
        #expect(settings.string("path.procfs") == "/proc")
        #expect(settings.string("path.udev.data") == "/run/udev/data")
        #expect(settings.bool("collector.loadavg"))
    }

    @Test func readsNodeExporterFlagSyntax() throws {
        let settings = try loadConfiguration([
            "--web.listen-address=:9200", "--web.listen-address", "127.0.0.1:9300", "--web.max-requests", "5",
            "--no-collector.meminfo", "--collector.timeout=2s", "--path.procfs=/host/proc",
        ]).settings
        #expect(settings.strings("web.listen-address") == [":9200", "127.0.0.1:9300"])
        #expect(settings.integer("web.max-requests") == 5)
        #expect(!settings.bool("collector.meminfo"))
        #expect(settings.duration("collector.timeout") == .seconds(2))
        #expect(settings.string("path.procfs") == "/host/proc")
        #expect(settings.origin(of: "web.max-requests") == .commandLine)
    }

    @Test func disableDefaultsKeepsOnlyTheNamedCollectors() throws {
        let settings = try loadConfiguration(["--collector.disable-defaults", "--collector.loadavg"]).settings
        #expect(settings.bool("collector.loadavg"))
        #expect(!settings.bool("collector.meminfo"))
    }

    @Test func acceptsNodeExporterFlagsVigilDoesNotImplement() throws {
        let configuration = try loadConfiguration([
            "--no-collector.zfs", "--collector.ntp", "--collector.ntp.server", "10.0.0.1", "--collector.netdev.netlink",
            "--log.level=debug",
        ])
        #expect(configuration.warnings.contains { $0.contains("no ntp collector") })
        #expect(configuration.warnings.contains { $0.contains("--collector.ntp.server") })
        #expect(!configuration.warnings.contains { $0.contains("zfs") })
        #expect(configuration.settings.string("log.level") == "debug")
    }

    @Test func aWrongFlagIsNamedWithAHint() {
        let errors = self.errors(["--web.listen-adress=:9100"])
        #expect(errors.count == 1)
        #expect(
            errors.first?.description
                == "command line: --web.listen-adress: unknown flag; did you mean web.listen-address?"
        )
        #expect(self.errors(["--web.max-requests=many"]).first?.description.contains("expects an integer") == true)
        #expect(self.errors(["--collector.timeout=soon"]).first?.key == "collector.timeout")
        #expect(self.errors(["--web.listen-address=nowhere"]).first?.reason.contains("HOST:PORT") == true)
        #expect(self.errors(["stray"]).first?.reason == "unexpected argument")
        #expect(self.errors(["--web.telemetry-path"]).first?.reason == "expects a value")
        #expect(self.errors(["--runtime.gomaxprocs=-1"]).first?.key == "runtime.gomaxprocs")
    }

    @Test func readsTheFileWithNestedKeysAndFlagsOverrideIt() throws {
        try self.withFile(
            """
            web:
              listen-address: ["127.0.0.1:9400", ":9401"]
              max-requests: 7
            collector:
              timeout: 3s
              meminfo: false
              loadavg:
                enabled: true
            """
        ) { path in
            let settings = try loadConfiguration(["--config.file=\(path)", "--web.max-requests=9"]).settings
            #expect(settings.strings("web.listen-address") == ["127.0.0.1:9400", ":9401"])
            #expect(settings.integer("web.max-requests") == 9)
            #expect(settings.duration("collector.timeout") == .seconds(3))
            #expect(!settings.bool("collector.meminfo"))
            #expect(settings.bool("collector.loadavg"))
            #expect(settings.origin(of: "collector.timeout") == .file(path: path, line: 5))
        }
    }

    @Test func reportsEveryMistakeInTheFileWithLineKeyAndReason() throws {
        try self.withFile(
            """
            web:
              listen-adress: ":9100"
              max-requests: lots
            collector:
              timeout: [1, 2]
            """
        ) { path in
            let errors = self.errors(["--config.file=\(path)"])
            #expect(
                errors.map(\.description) == [
                    "\(path):2: web.listen-adress: unknown key; did you mean web.listen-address?",
                    "\(path):3: web.max-requests: expects an integer, got \"lots\"",
                    "\(path):5: collector.timeout: expects a duration such as 5s or 1m30s, found a list",
                ]
            )
        }
    }

    @Test func reportsYAMLSyntaxErrorsWithTheirLine() throws {
        try self.withFile("web:\n  listen-address: [\":9100\"\n  max-requests: 3\n") { path in
            let errors = self.errors(["--config.file=\(path)"])
            #expect(errors.count == 1)
            #expect(errors.first?.description.hasPrefix("\(path):") == true)
        }
        let missing = self.errors(["--config.file=/nonexistent/vigil.yml"])
        #expect(missing.first?.description.contains("cannot read the file") == true)
    }

    @Test func checkConfigSucceedsOnAGoodFileAndFailsOnABadOne() async throws {
        try self.withFile("web:\n  max-requests: 3\n") { path in
            guard
                case .checkConfig(let configuration) = try ConfigurationLoader().invocation(arguments: [
                    "check-config", path,
                ])
            else {
                Issue.record("expected check-config")
                return
            }
            #expect(configuration.file == path)
        }
        try await self.withFileAsync("web:\n  max-requests: -3\n") { path in
            #expect(await vigilMain(arguments: ["check-config", path]) == 1)
        }
        try await self.withFileAsync("web:\n  max-requests: 3\n") { path in
            #expect(await vigilMain(arguments: ["check-config", path]) == 0)
        }
    }

    private func withFileAsync(_ yaml: String, _ body: (String) async throws -> Void) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/vigil.yml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        try await body(path)
    }

    @Test func parsesListenAddresses() {
        #expect(ListenAddress(":9100") == ListenAddress(":9100"))
        #expect(ListenAddress(":9100")?.host == nil)
        #expect(ListenAddress("127.0.0.1:9100")?.host == "127.0.0.1")
        #expect(ListenAddress("[::1]:9100")?.host == "::1")
        #expect(ListenAddress("localhost") == nil)
        #expect(ListenAddress(":99999") == nil)
    }

    @Test func helpListsEveryFlag() throws {
        guard case .help(let text) = try ConfigurationLoader().invocation(arguments: ["--help"]) else {
            Issue.record("expected help")
            return
        }
        for spec in AgentOption.allSpecs { #expect(text.contains(spec.name)) }
    }
}

@Suite struct ScrapeCPUTests {
    /// The CPUs the agent's event loop runs on (its collector threads run on the same: ThreadPlacementTests).
    private func eventLoopCPUs(_ arguments: [String]) async throws -> CPUSet? {
        try await withAgent(arguments) { agent in
            #expect(try await agent.get("/metrics").status == 200)
            return try await agent.agent.group.next().submit { CPUSet.ofCurrentThread() }.get()
        }
    }

    @Test(.enabled(if: (CPUSet.ofProcess()?.cpus.count ?? 1) > 1, "the process has one CPU"))
    func scrapesRunOnTheFirstCPUByDefaultAndWhereTheKernelPutsThemWithZero() async throws {
        let process = try #require(CPUSet.ofProcess())
        #expect(try await self.eventLoopCPUs([]) == CPUSet(process.cpus.prefix(1)))
        #expect(try await self.eventLoopCPUs(["--runtime.gomaxprocs=0"]) == process)
        #expect(try await self.eventLoopCPUs(["--runtime.gomaxprocs=\(process.cpus.count)"]) == process)
    }
}

@Suite struct NodeExporterCompatibilityTests {
    /// Flags as packaged node_exporter units and Ansible roles pass them: vigil must start with them.
    @Test func aNodeExporterUnitsFlagsStartVigil() async throws {
        let flags = [
            "--collector.systemd", "--collector.processes", "--no-collector.mdadm", "--no-collector.zfs",
            "--collector.netdev.netlink", "--collector.ntp.server=127.0.0.1", "--web.disable-exporter-metrics",
            "--log.level=warn", "--log.format=json", "--runtime.gomaxprocs=1", "--web.max-requests=40",
            "--path.procfs=/proc", "--path.sysfs", "/sys", "--path.rootfs=/",
        ]
        try await withAgent(flags) { agent in
            let response = try await agent.get("/metrics")
            #expect(response.status == 200)
            #expect(!response.text.contains("process_cpu_seconds_total"))
        }
    }
}
