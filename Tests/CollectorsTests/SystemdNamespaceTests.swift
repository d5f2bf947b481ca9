import Foundation
import Testing
import VigilCore

@testable import Collectors

/// The systemd collector against a real systemd booted in a private namespace: the vigil binary runs
/// inside it, and every family is checked against `systemctl show`.
@Suite(.enabled(if: NamespacedSystemd.isSupported, "needs root, unshare, nsenter, systemd and dbus"))
struct SystemdNamespaceTests {
    /// Test units in every state: active, activating (a notify service that never notifies),
    /// deactivating (stopped, with a stop command that never ends), inactive, failed; a service that
    /// restarts until its start limit, then stays failed; a service that restarts whenever its process
    /// is killed; sockets with connections made to them (one on `echoPort`, one on `echoPort + 3`); a
    /// timer that fired.
    static func units(echoPort: Int) -> [String: String] {
        let wanted = [
            "vt-running.service", "vt-failing.service", "vt-restarting.service", "vt-starting.service",
            "vt-stopping.service", "vt-flaky.service", "vt-echo.socket", "vt-talk.socket", "vt-tick.timer",
        ]
        return [
            "vt-test.target": """
            [Unit]
            DefaultDependencies=no
            Wants=\(wanted.joined(separator: " "))
            """,
            // Connects once to a closed port, so that IP accounting has packets to count.
            "vt-running.service": """
            [Unit]
            DefaultDependencies=no
            [Service]
            ExecStart=/bin/bash -c 'echo > /dev/tcp/127.0.0.1/21799; exec sleep infinity'
            CPUAccounting=yes
            MemoryAccounting=yes
            TasksAccounting=yes
            IOAccounting=yes
            IPAccounting=yes
            """,
            "vt-failing.service": """
            [Unit]
            DefaultDependencies=no
            [Service]
            ExecStart=/bin/false
            """,
            "vt-restarting.service": """
            [Unit]
            DefaultDependencies=no
            StartLimitIntervalSec=1h
            StartLimitBurst=4
            [Service]
            ExecStart=/bin/false
            Restart=always
            RestartSec=50ms
            """,
            "vt-starting.service": """
            [Unit]
            DefaultDependencies=no
            [Service]
            Type=notify
            ExecStart=/bin/sleep infinity
            TimeoutStartSec=infinity
            """,
            "vt-stopping.service": """
            [Unit]
            DefaultDependencies=no
            [Service]
            ExecStart=/bin/sleep infinity
            ExecStop=/bin/sleep infinity
            TimeoutStopSec=infinity
            """,
            "vt-echo.socket": """
            [Unit]
            DefaultDependencies=no
            [Socket]
            ListenStream=127.0.0.1:\(echoPort)
            Accept=yes
            MaxConnections=1
            """,
            "vt-echo@.service": """
            [Unit]
            DefaultDependencies=no
            [Service]
            ExecStart=/bin/cat
            StandardInput=socket
            """,
            "vt-flaky.service": """
            [Unit]
            DefaultDependencies=no
            [Service]
            ExecStart=/bin/sleep infinity
            Restart=always
            RestartSec=50ms
            TasksAccounting=yes
            """,
            "vt-talk.socket": """
            [Unit]
            DefaultDependencies=no
            [Socket]
            ListenStream=127.0.0.1:\(echoPort + 3)
            Accept=yes
            """,
            "vt-talk@.service": """
            [Unit]
            DefaultDependencies=no
            [Service]
            ExecStart=/bin/cat
            StandardInput=socket
            """,
            "vt-tick.timer": """
            [Unit]
            DefaultDependencies=no
            [Timer]
            OnActiveSec=100ms
            AccuracySec=1ms
            """,
            "vt-tick.service": """
            [Unit]
            DefaultDependencies=no
            [Service]
            Type=oneshot
            ExecStart=/bin/true
            """,
        ]
    }

    /// Boots the test units, brings them into their states (one connection held open and one refused
    /// on the socket, the restarting service failed at its start limit, the timer fired, the stopping
    /// service stuck in its stop command), runs `body`, and stops systemd whatever happens.
    static func withTestUnits(echoPort: Int, _ body: (NamespacedSystemd) async throws -> Void) async throws {
        let booted = try await blocking { () throws -> (NamespacedSystemd, LoopbackConnection) in
            let systemd = try NamespacedSystemd(units: units(echoPort: echoPort), target: "vt-test.target")
            do {
                return (systemd, try settle(systemd, echoPort: echoPort))
            } catch {
                systemd.stop()
                throw error
            }
        }
        try await withStopping(booted.0) { systemd in
            try await body(systemd)
            withExtendedLifetime(booted.1) {}
        }
    }

    /// Boots `units`, runs `body`, and stops systemd whatever happens.
    static func withSystemd(
        units: [String: String],
        target: String,
        _ body: (NamespacedSystemd) async throws -> Void
    ) async throws {
        let systemd = try await blocking { try NamespacedSystemd(units: units, target: target) }
        try await withStopping(systemd, body)
    }

    private static func withStopping(
        _ systemd: NamespacedSystemd,
        _ body: (NamespacedSystemd) async throws -> Void
    ) async throws {
        do {
            try await body(systemd)
        } catch {
            try? await blocking { systemd.stop() }
            throw error
        }
        try await blocking { systemd.stop() }
    }

    private static func settle(_ systemd: NamespacedSystemd, echoPort: Int) throws -> LoopbackConnection {
        try systemd.run(["systemctl", "stop", "--no-block", "vt-stopping.service"])
        let held = try LoopbackConnection(port: echoPort)
        try systemd.waitUntil(timeout: .seconds(20), "the echo socket holds a connection") {
            try systemd.show("vt-echo.socket", ["NConnections"])["NConnections"] == "1"
        }
        // MaxConnections=1: systemd accepts and closes the second connection, counting it refused.
        _ = try? LoopbackConnection(port: echoPort).readToEnd()
        try systemd.waitUntil(timeout: .seconds(20), "the units settled") {
            try systemd.show("vt-echo.socket", ["NRefused"])["NRefused"] == "1"
                && systemd.show("vt-restarting.service", ["ActiveState"])["ActiveState"] == "failed"
                && seconds(systemd.show("vt-tick.timer", ["LastTriggerUSec"])["LastTriggerUSec"]) != nil
                && systemd.show("vt-stopping.service", ["ActiveState"])["ActiveState"] == "deactivating"
                && systemd.show("vt-failing.service", ["ActiveState"])["ActiveState"] == "failed"
        }
        return held
    }

    @Test func everyFamilyMatchesSystemctlShow() async throws {
        try await Self.withTestUnits(echoPort: 21710) { systemd in
            let (before, scrape, after, manager, lint) = try await blocking {
                _ = try systemd.startVigil(port: 21711)
                let before = try UnitSnapshot(systemd)
                let scrape = try httpGet(port: 21711, path: "/metrics")
                let after = try UnitSnapshot(systemd)
                let manager = try systemd.show("", ["Version", "SystemState"])
                return (before, scrape, after, manager, try promtoolCheckMetrics(scrape.body))
            }
            try Self.checkFamilies(scrape: scrape, before: before, after: after, manager: manager, lint: lint)
        }
    }

    private static func checkFamilies(
        scrape: (status: Int, body: String),
        before: UnitSnapshot,
        after: UnitSnapshot,
        manager: [String: String],
        lint: String?,
        testUnitStates: Bool = true
    ) throws {
        #expect(scrape.status == 200)
        let families = try parseExposition(scrape.body)
        let scraped = Scraped(families)
        #expect(scraped.value("node_scrape_collector_success", ["collector": "systemd"]) == 1)
        #expect(Set(families.map(\.name)).count == families.count, "no family written twice")
        if let lint {
            #expect(lint.isEmpty, "promtool check metrics: \(lint)")
        }

        // The manager and the unfiltered summary.
        let version = try #require(manager["Version"])
        #expect(scraped.value("node_systemd_version", ["version": version]) == parseSystemdVersion(version))
        #expect(scraped.value("node_systemd_system_running") == (manager["SystemState"] == "running" ? 1 : 0))
        for state in unitStates + ["reloading", "maintenance"] {
            let listed = after.allStates.filter { $0 == state }.count
            if listed > 0 || unitStates.contains(state) {
                #expect(scraped.value("node_systemd_units", ["state": state]) == Double(listed), "state \(state)")
            }
        }

        // Each loaded unit: its state, and every property family against systemctl show.
        #expect(after.units.count > 10)
        for (name, show) in after.units {
            let type = String(name[name.index(after: name.lastIndex(of: ".")!)...])
            let unit = ["name": name, "type": type]
            let then = before.units[name] ?? show
            for state in unitStates {
                let expected: Double = show["ActiveState"] == state ? 1 : 0
                #expect(
                    scraped.value("systemd_unit_state", unit.merging(["state": state]) { $1 }) == expected,
                    "\(name) \(state)"
                )
            }
            switch type {
            case "service":
                let serviceType = try #require(show["Type"])
                #expect(
                    scraped.value(
                        "systemd_unit_info",
                        unit.merging(["mount_type": "", "service_type": serviceType]) { $1 }
                    )
                        == 1,
                    "\(name) info"
                )
                let started = show["ActiveState"] == "active" ? seconds(show["ActiveEnterTimestamp"]) : 0
                #expect(
                    scraped.value("systemd_unit_start_time_seconds", unit).map { $0.rounded(.down) } == started,
                    "\(name) start time"
                )
                #expect(scraped.value("systemd_service_restart_total", ["name": name]) == number(show["NRestarts"]))
                #expect(
                    scraped.value("systemd_unit_tasks_current", ["name": name]) == number(show["TasksCurrent"]),
                    "\(name) tasks \(show["TasksCurrent"] ?? "")"
                )
                #expect(scraped.value("systemd_unit_tasks_max", unit) == number(show["TasksMax"]), "\(name) tasks max")
            case "mount":
                let mountType = try #require(show["Type"])
                #expect(
                    scraped.value(
                        "systemd_unit_info",
                        unit.merging(["mount_type": mountType, "service_type": ""]) { $1 }
                    )
                        == 1,
                    "\(name) info"
                )
            case "socket":
                #expect(
                    scraped.value("systemd_socket_accepted_connections_total", ["name": name])
                        == number(show["NAccepted"])
                )
                #expect(
                    scraped.value("systemd_socket_current_connections", ["name": name]) == number(show["NConnections"])
                )
                #expect(
                    scraped.value("systemd_socket_refused_connections_total", ["name": name])
                        == number(show["NRefused"])
                )
            case "timer":
                #expect(
                    scraped.value("systemd_timer_last_trigger_seconds", ["name": name]).map { $0.rounded(.down) }
                        == seconds(show["LastTriggerUSec"]) ?? 0,
                    "\(name) last trigger"
                )
            default:
                #expect(
                    scraped.value("systemd_unit_info", unit.merging(["mount_type": "", "service_type": ""]) { $1 })
                        == nil
                )
            }
            // Accounting: present exactly when systemd has a value, and between the two readings.
            for (family, property, scale) in [
                ("systemd_unit_cpu_seconds_total", "CPUUsageNSec", 1e-9),
                ("systemd_unit_memory_bytes", "MemoryCurrent", 1),
                ("systemd_unit_io_read_bytes_total", "IOReadBytes", 1),
                ("systemd_unit_io_write_bytes_total", "IOWriteBytes", 1),
                ("systemd_unit_ip_ingress_bytes_total", "IPIngressBytes", 1),
                ("systemd_unit_ip_egress_bytes_total", "IPEgressBytes", 1),
            ] {
                let value = scraped.value(family, unit)
                guard let first = number(then[property]), let last = number(show[property]), last != 0x1p64 else {
                    #expect(value == nil, "\(name) \(family) absent: \(show[property] ?? "no property")")
                    continue
                }
                let range = (min(first, last) * scale)...(max(first, last) * scale)
                #expect(value.map { range.contains($0) } == true, "\(name) \(family) \(value ?? -1) in \(range)")
            }
        }

        guard testUnitStates else { return }
        // The test units themselves reached the states the test meant, so all five states are covered.
        let expectedStates = [
            "vt-running.service": "active", "vt-starting.service": "activating",
            "vt-stopping.service": "deactivating", "vt-tick.service": "inactive", "vt-failing.service": "failed",
        ]
        for (name, state) in expectedStates {
            #expect(scraped.value("systemd_unit_state", ["name": name, "state": state]) == 1, "\(name) \(state)")
        }
        #expect((scraped.value("systemd_service_restart_total", ["name": "vt-restarting.service"]) ?? 0) >= 2)
        #expect(scraped.value("systemd_unit_state", ["name": "vt-restarting.service", "state": "failed"]) == 1)
        #expect(scraped.value("systemd_socket_accepted_connections_total", ["name": "vt-echo.socket"]) == 1)
        #expect(scraped.value("systemd_socket_current_connections", ["name": "vt-echo.socket"]) == 1)
        #expect(scraped.value("systemd_socket_refused_connections_total", ["name": "vt-echo.socket"]) == 1)
        #expect((scraped.value("systemd_timer_last_trigger_seconds", ["name": "vt-tick.timer"]) ?? 0) > 1e9)
        // Devices are excluded by default.
        #expect(!families.contains { $0.samples.contains { $0[label: "type"] == "device" } })
    }

    /// systemd_exporter's flags and node_exporter's aliases; patterns match whole unit names. This
    /// vigil talks to systemd directly, over its private socket.
    @Test func unitFiltersAreAnchoredAndTakeNodeExporterNames() async throws {
        try await Self.withTestUnits(echoPort: 21720) { systemd in
            let body = try await blocking {
                _ = try systemd.startVigil(
                    port: 21721,
                    extra: [
                        #"--systemd.collector.unit-include=vt-(running|failing)\.service|vt-echo"#,
                        #"--collector.systemd.unit-exclude=vt-failing\.service"#,
                        "--collector.systemd.private",
                    ]
                )
                return try httpGet(port: 21721, path: "/metrics").body
            }
            let scraped = Scraped(try parseExposition(body))
            #expect(scraped.value("node_scrape_collector_success", ["collector": "systemd"]) == 1)
            #expect(scraped.value("systemd_unit_info", ["name": "vt-running.service", "service_type": "simple"]) == 1)
            let names = Set(scraped.samples("systemd_unit_state").compactMap { $0[label: "name"] })
            // "vt-echo" would match vt-echo.socket unanchored.
            #expect(names == ["vt-running.service"])
            #expect((scraped.value("node_systemd_units", ["state": "inactive"]) ?? 0) > 1, "the summary is unfiltered")
        }
    }

    /// A stuck systemd (stopped with SIGSTOP) costs the collector its series for that scrape, not the
    /// scrape; it recovers once systemd runs again, and reconnects when the bus daemon restarts.
    @Test func aStuckSystemdCostsOneCollectorNotTheScrape() async throws {
        try await Self.withTestUnits(echoPort: 21730) { systemd in
            let (first, stuck, elapsed, afterRestart) = try await blocking {
                _ = try systemd.startVigil(port: 21731)
                let first = try httpGet(port: 21731, path: "/metrics").body
                kill(systemd.pid, SIGSTOP)
                let started = ContinuousClock.now
                let stuck = try? httpGet(
                    port: 21731,
                    path: "/metrics",
                    headers: ["X-Prometheus-Scrape-Timeout-Seconds": "2"]
                )
                let elapsed = started.duration(to: .now)
                kill(systemd.pid, SIGCONT)
                try systemd.waitUntil(timeout: .seconds(20), "the collector recovers") {
                    let body = try httpGet(port: 21731, path: "/metrics").body
                    return try Scraped(parseExposition(body)).value(
                        "node_scrape_collector_success",
                        ["collector": "systemd"]
                    ) == 1
                }
                // The bus daemon restarts: the kept connection is dead, and the next scrape reconnects.
                try systemd.run(["systemctl", "restart", "dbus.service"])
                return (first, stuck, elapsed, try httpGet(port: 21731, path: "/metrics").body)
            }
            let success = ["collector": "systemd"]
            #expect(Scraped(try parseExposition(first)).value("node_scrape_collector_success", success) == 1)
            #expect(stuck?.status == 200)
            #expect(elapsed < .seconds(3), "the scrape returned after \(elapsed)")
            let scraped = Scraped(try parseExposition(stuck?.body ?? ""))
            #expect(scraped.value("node_scrape_collector_success", success) == 0)
            #expect(scraped.samples("systemd_unit_state").isEmpty)
            let restarted = Scraped(try parseExposition(afterRestart))
            #expect(restarted.value("node_scrape_collector_success", success) == 1)
            #expect(restarted.value("systemd_unit_state", ["name": "vt-running.service", "state": "active"]) == 1)
        }
    }
}

extension SystemdNamespaceTests {
    /// A unit that vanished after `ListUnits` (systemd then answers with a not-found unit's defaults), a
    /// call systemd rejects, an interface the unit lacks: each costs only that unit's series.
    @Test func aBadUnitCostsOnlyItsOwnSeries() async throws {
        let units = [
            ListedUnit(
                name: "vt-running.service",
                loadState: "loaded",
                activeState: "active",
                path: "/org/freedesktop/systemd1/unit/vt_2drunning_2eservice"
            ),
            ListedUnit(
                name: "vt-gone.service",
                loadState: "loaded",
                activeState: "active",
                path: "/org/freedesktop/systemd1/unit/vt_2dgone_2eservice"
            ),
            ListedUnit(
                name: "bad.service",
                loadState: "loaded",
                activeState: "active",
                path: "/org/freedesktop/systemd1/unit/bad"
            ),
            // A socket's path asked for the Timer interface: "unknown interface", so absent.
            ListedUnit(
                name: "vt-echo.timer",
                loadState: "loaded",
                activeState: "active",
                path: "/org/freedesktop/systemd1/unit/vt_2decho_2esocket"
            ),
        ]
        var answer: FetchedProperties?
        try await Self.withSystemd(units: Self.units(echoPort: 21740), target: "vt-test.target") { systemd in
            answer = try await blocking {
                let connection = try BusConnection.open(systemd.systemBus)
                var cache = UnitCache()
                return readUnits(
                    cache.reconcile(units, filter: .all),
                    cache: &cache,
                    connection: connection,
                    files: try hostAccountingFiles(),
                    deadline: .now + .seconds(10)
                )
            }
        }
        let fetched = try #require(answer)
        #expect(fetched.connectionError == nil)
        #expect(fetched.failedCalls == 3, "bad.service's Service and two Unit calls are rejected")
        #expect(fetched.units[0].type == "simple")
        #expect(fetched.units[0].activeEnterTimestamp ?? 0 > 0)
        #expect(fetched.units[2] == UnitProperties())
        #expect(fetched.units[3] == UnitProperties())
        #expect(fetched.manager?.version != nil)

        var writer = MetricWriter(format: .text)
        writeSystemdFamilies(
            units: units,
            properties: fetched.units,
            allUnits: units,
            manager: fetched.manager,
            into: &writer
        )
        let scraped = Scraped(try parseExposition(writer.takeBytes()[...]))
        #expect(scraped.value("systemd_unit_info", ["name": "vt-running.service", "service_type": "simple"]) == 1)
        #expect(scraped.value("systemd_unit_info", ["name": "vt-gone.service"]) == nil)
        #expect(scraped.samples("systemd_unit_state").count == 20)
    }

    /// Calls that cannot finish before the deadline stop there: the connection is reported broken and
    /// no unit has properties, but nothing hangs.
    @Test func callsStopAtTheDeadline() async throws {
        let unit = ListedUnit(
            name: "vt-running.service",
            loadState: "loaded",
            activeState: "active",
            path: "/org/freedesktop/systemd1/unit/vt_2drunning_2eservice"
        )
        var result: (FetchedProperties, Duration)?
        try await Self.withSystemd(units: Self.units(echoPort: 21745), target: "vt-test.target") { systemd in
            result = try await blocking {
                let connection = try BusConnection.open(systemd.systemBus)
                let files = try hostAccountingFiles()
                kill(systemd.pid, SIGSTOP)
                defer { kill(systemd.pid, SIGCONT) }
                let started = ContinuousClock.now
                var cache = UnitCache()
                let fetched = readUnits(
                    cache.reconcile([unit], filter: .all),
                    cache: &cache,
                    connection: connection,
                    files: files,
                    deadline: .now + .milliseconds(300)
                )
                #expect(cache.units[unit.name]?.stale == true, "read again at the next scrape")
                return (fetched, started.duration(to: .now))
            }
        }
        let (fetched, elapsed) = try #require(result)
        #expect(fetched.connectionError?.code == ETIMEDOUT)
        #expect(fetched.units == [UnitProperties()])
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(2), "\(elapsed)")
    }

    /// The vigil binary where no system bus exists (a private, empty /run): success 0, a fast scrape,
    /// the reason logged once. Then with a bus daemon but no systemd on it: the same.
    @Test func withoutSystemdOnTheBusTheCollectorFailsCleanly() async throws {
        for (port, withBusDaemon) in [(21750, false), (21751, true)] {
            let (scrapes, log) = try await blocking {
                try Self.scrapeWithoutSystemd(port: port, busDaemon: withBusDaemon)
            }
            #expect(scrapes.count == 3)
            for (status, body, elapsed) in scrapes {
                let scraped = Scraped(try parseExposition(body))
                #expect(status == 200)
                #expect(scraped.value("node_scrape_collector_success", ["collector": "systemd"]) == 0)
                let collection = try #require(
                    scraped.value("node_scrape_collector_duration_seconds", ["collector": "systemd"])
                )
                // The deadline is 9 s: failing takes a connect() or one call, not a timeout.
                #expect(collection < 0.5, "collection took \(collection) s")
                #expect(elapsed < .seconds(1))
                #expect(scraped.samples("systemd_unit_state").isEmpty)
            }
            let reasons = log.split(separator: "\n").filter { $0.contains("systemd collector has no data") }
            #expect(reasons.count == 1, "logged once: \(log)")
            #expect(
                reasons.first?.contains(withBusDaemon ? "systemd is not on the system bus" : "no system bus") == true,
                "\(reasons)"
            )
        }
    }

    /// Runs vigil with a private, empty /run (and a bus daemon in it, if asked), scrapes it three times,
    /// and returns the scrapes and its log.
    private static func scrapeWithoutSystemd(
        port: Int,
        busDaemon: Bool
    ) throws -> ([(status: Int, body: String, elapsed: Duration)], String) {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let daemon = busDaemon ? "mkdir -p /run/dbus && dbus-daemon --system --fork && " : ""
        let vigil = Process()
        vigil.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        vigil.arguments = [
            "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "sh", "-c",
            "mount -t tmpfs tmpfs /run && \(daemon)exec env -u DBUS_SYSTEM_BUS_ADDRESS \"$0\" \"$@\"",
            NamespacedSystemd.vigilBinary, "--collector.disable-defaults", "--collector.systemd",
            "--web.listen-address=127.0.0.1:\(port)",
        ]
        let log = directory + "/vigil.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        vigil.standardOutput = handle
        vigil.standardError = handle
        try vigil.run()
        defer {
            // unshare ignores SIGTERM while it waits; SIGKILL takes vigil along (--kill-child).
            kill(vigil.processIdentifier, SIGKILL)
            vigil.waitUntilExit()
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? httpGet(port: port, path: "/")) == nil {
            guard vigil.isRunning && ContinuousClock.now < deadline else {
                throw HarnessError("vigil did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            usleep(50_000)
        }
        var scrapes: [(status: Int, body: String, elapsed: Duration)] = []
        for _ in 0..<3 {
            let started = ContinuousClock.now
            let scrape = try httpGet(port: port, path: "/metrics")
            scrapes.append((scrape.status, scrape.body, started.duration(to: .now)))
        }
        return (scrapes, try String(contentsOfFile: log, encoding: .utf8))
    }
}

/// The collector keeps what systemd told it between scrapes: changes made between two scrapes must show
/// at the next one, each checked against `systemctl show`.
extension SystemdNamespaceTests {
    /// `systemctl show` of every unit just before and after a scrape of vigil.
    private struct Observation: Sendable {
        let before: UnitSnapshot
        let scrape: (status: Int, body: String)
        let after: UnitSnapshot
        let manager: [String: String]

        init(_ systemd: NamespacedSystemd, port: Int) throws {
            self.before = try UnitSnapshot(systemd)
            self.scrape = try httpGet(port: port, path: "/metrics")
            self.after = try UnitSnapshot(systemd)
            self.manager = try systemd.show("", ["Version", "SystemState"])
        }
    }

    /// Makes a change (blocking, on a thread of its own), scrapes, checks every family against
    /// `systemctl show`, and returns the scrape.
    private static func observe(
        _ systemd: NamespacedSystemd,
        port: Int,
        after change: @escaping @Sendable () throws -> Void = {}
    ) async throws -> Scraped {
        let observed = try await blocking {
            try change()
            return try Observation(systemd, port: port)
        }
        try Self.checkFamilies(
            scrape: observed.scrape,
            before: observed.before,
            after: observed.after,
            manager: observed.manager,
            lint: nil,
            testUnitStates: false
        )
        return Scraped(try parseExposition(observed.scrape.body))
    }

    @Test func changesBetweenScrapesShowAtTheNextScrape() async throws {
        let (echoPort, port) = (21755, 21756)
        try await Self.withTestUnits(echoPort: echoPort) { systemd in
            try await blocking { _ = try systemd.startVigil(port: port) }
            @Sendable func show(_ unit: String, _ property: String) throws -> String? {
                try systemd.show(unit, [property])[property]
            }
            let flaky = ["name": "vt-flaky.service"]
            var scraped = try await Self.observe(systemd, port: port)
            #expect(scraped.value("systemd_service_restart_total", flaky) == 0)

            // A restart between two scrapes: the unit is active in both ListUnits replies; its signals
            // (a new invocation, NRestarts) tell.
            scraped = try await Self.observe(systemd, port: port) {
                try systemd.run(["systemctl", "kill", "--signal=KILL", "--kill-who=main", "vt-flaky.service"])
                try systemd.waitUntil(timeout: .seconds(20), "vt-flaky.service restarted") {
                    let shown = try systemd.show("vt-flaky.service", ["NRestarts", "SubState"])
                    return shown["NRestarts"] == "1" && shown["SubState"] == "running"
                }
            }
            #expect(scraped.value("systemd_service_restart_total", flaky) == 1)

            // A socket accepts a connection (and later closes it).
            let talk = ["name": "vt-talk.socket"]
            let connection = try await blocking {
                let connection = try LoopbackConnection(port: echoPort + 3)
                try systemd.waitUntil(timeout: .seconds(20), "vt-talk.socket accepted") {
                    try show("vt-talk.socket", "NConnections") == "1"
                }
                return connection
            }
            scraped = try await Self.observe(systemd, port: port)
            #expect(scraped.value("systemd_socket_accepted_connections_total", talk) == 1)
            #expect(scraped.value("systemd_socket_current_connections", talk) == 1)
            withExtendedLifetime(connection) {}
            scraped = try await Self.observe(systemd, port: port) {
                shutdown(connection.descriptor, Int32(SHUT_RDWR))
                try systemd.waitUntil(timeout: .seconds(20), "vt-talk.socket's connection ended") {
                    try show("vt-talk.socket", "NConnections") == "0"
                }
            }
            #expect(scraped.value("systemd_socket_current_connections", talk) == 0)
            // A refused connection changes a counter systemd sends no signal for.
            scraped = try await Self.observe(systemd, port: port) {
                _ = try? LoopbackConnection(port: echoPort).readToEnd()
                try systemd.waitUntil(timeout: .seconds(20), "vt-echo.socket refused again") {
                    try show("vt-echo.socket", "NRefused") == "2"
                }
            }
            #expect(scraped.value("systemd_socket_refused_connections_total", ["name": "vt-echo.socket"]) == 2)

            // A timer fires again.
            scraped = try await Self.observe(systemd, port: port) {
                let fired = try show("vt-tick.timer", "LastTriggerUSecMonotonic")
                try systemd.run(["systemctl", "restart", "vt-tick.timer"])
                try systemd.waitUntil(timeout: .seconds(20), "vt-tick.timer fired again") {
                    try show("vt-tick.timer", "LastTriggerUSecMonotonic") != fired
                }
            }

            // A unit stopped, then started.
            let running = ["name": "vt-running.service"]
            scraped = try await Self.observe(systemd, port: port) {
                try systemd.run(["systemctl", "stop", "vt-running.service"])
            }
            #expect(scraped.value("systemd_unit_state", running.merging(["state": "inactive"]) { $1 }) == 1)
            #expect(scraped.value("systemd_unit_tasks_current", running) == nil)
            scraped = try await Self.observe(systemd, port: port) {
                try systemd.run(["systemctl", "start", "vt-running.service"])
            }
            #expect(scraped.value("systemd_unit_state", running.merging(["state": "active"]) { $1 }) == 1)
            #expect(scraped.value("systemd_unit_tasks_current", running) == 1)

            // A unit file added, another changed (TasksMax sends no signal), then daemon-reload.
            scraped = try await Self.observe(systemd, port: port) {
                try systemd.run([
                    "sh", "-c",
                    """
                    printf '[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/sleep infinity\nTasksMax=77\n' \
                        > /run/systemd/system/vt-later.service
                    mkdir -p /run/systemd/system/vt-running.service.d
                    printf '[Service]\nTasksMax=55\n' > /run/systemd/system/vt-running.service.d/tasks.conf
                    systemctl daemon-reload && systemctl start vt-later.service
                    """,
                ])
            }
            #expect(scraped.value("systemd_unit_tasks_max", running) == 55)
            #expect(scraped.value("systemd_unit_tasks_max", ["name": "vt-later.service"]) == 77)
            #expect(scraped.value("systemd_unit_info", ["name": "vt-later.service", "service_type": "simple"]) == 1)

            // systemd re-executes itself (a new owner of its bus name), then a unit restarts.
            scraped = try await Self.observe(systemd, port: port) {
                try systemd.run(["systemctl", "daemon-reexec"])
                try systemd.waitUntil(timeout: .seconds(30), "systemd is back") {
                    (try? show("", "Version")) != nil
                }
                try systemd.run(["systemctl", "kill", "--signal=KILL", "--kill-who=main", "vt-flaky.service"])
                try systemd.waitUntil(timeout: .seconds(20), "vt-flaky.service restarted again") {
                    let shown = try systemd.show("vt-flaky.service", ["NRestarts", "SubState"])
                    return shown["NRestarts"] == "2" && shown["SubState"] == "running"
                }
            }
            #expect(scraped.value("systemd_service_restart_total", flaky) == 2)
            #expect(scraped.value("node_scrape_collector_success", ["collector": "systemd"]) == 1)
        }
    }

    /// Without CAP_SYS_ADMIN, which opening a BPF program or map by id needs (vigil as packaged has no
    /// capabilities), the IP counters come over the bus, current at every scrape as the other figures.
    @Test func withoutCapabilitiesIPAccountingComesOverTheBus() async throws {
        let (echoPort, port) = (19570, 19571)
        try await Self.withTestUnits(echoPort: echoPort) { systemd in
            try await blocking {
                _ = try systemd.startVigil(port: port, wrapper: ["setpriv", "--bounding-set=-sys_admin,-bpf"])
            }
            for _ in 0..<2 {
                let scraped = try await Self.observe(systemd, port: port)
                let running = ["name": "vt-running.service", "type": "service"]
                #expect((scraped.value("systemd_unit_ip_egress_bytes_total", running) ?? 0) > 0)
                #expect(scraped.value("node_scrape_collector_success", ["collector": "systemd"]) == 1)
            }

            // The same in-process, where the source of each figure shows: a `Get` per IP counter and
            // scrape, with systemd's values.
            let (second, cache, units, before, after) = try await blocking {
                let connection = try BusConnection.open(systemd.systemBus)
                let listed = try listUnits(on: connection, deadline: .now + .seconds(10))
                var cache = UnitCache()
                var units: [ListedUnit] = []
                var second: FetchedProperties?
                var before: [String: String] = [:]
                for round in 0..<2 {
                    units = cache.reconcile(listed, filter: .all)
                    if round == 1 {
                        before = try systemd.show("vt-running.service", ["IPIngressBytes", "IPEgressBytes"])
                    }
                    second = readUnits(
                        units,
                        cache: &cache,
                        connection: connection,
                        files: try hostAccountingFiles(findsIPMaps: false),
                        deadline: .now + .seconds(10)
                    )
                }
                let after = try systemd.show("vt-running.service", ["IPIngressBytes", "IPEgressBytes"])
                return (try #require(second), cache, units, before, after)
            }
            let running = try #require(cache.units["vt-running.service"])
            #expect(running.sources[AccountingMetric.ipIngress.rawValue] == .bus)
            #expect(running.sources[AccountingMetric.ipEgress.rawValue] == .bus)
            let index = try #require(units.firstIndex { $0.name == "vt-running.service" })
            for (property, value) in [
                ("IPIngressBytes", second.units[index].ipIngressBytes),
                ("IPEgressBytes", second.units[index].ipEgressBytes),
            ] {
                let range = try #require(UInt64(before[property] ?? ""))...(try #require(UInt64(after[property] ?? "")))
                #expect(value.map { range.contains($0) } == true, "\(property) \(value ?? 0) in \(range)")
            }
        }
    }

    /// Once the cache holds every unit, a read asks systemd only for the manager's state and the figures
    /// no signal or file gives (IP accounting, the counters of Accept=yes sockets), and the values stay
    /// those of a full read.
    @Test func aSecondReadAsksOnlyForWhatNoSignalOrFileGives() async throws {
        try await Self.withTestUnits(echoPort: 21765) { systemd in
            let (first, second, cache, units) = try await blocking {
                let connection = try BusConnection.open(systemd.systemBus)
                let listed = try listUnits(on: connection, deadline: .now + .seconds(10))
                var cache = UnitCache()
                let units = cache.reconcile(listed, filter: .all)
                let first = readUnits(
                    units,
                    cache: &cache,
                    connection: connection,
                    files: try hostAccountingFiles(),
                    deadline: .now + .seconds(10)
                )
                let second = readUnits(
                    cache.reconcile(listed, filter: .all),
                    cache: &cache,
                    connection: connection,
                    files: try hostAccountingFiles(),
                    deadline: .now + .seconds(10)
                )
                return (first, second, cache, units)
            }
            #expect(first.connectionError == nil && second.connectionError == nil)
            #expect(first.failedCalls == 0 && second.failedCalls == 0)
            let polled = cache.units.values.reduce(0) { count, unit in
                count + unit.sources.filter { $0 == .bus }.count + (unit.accept ? 3 : 0)
            }
            #expect(second.calls == 1 + polled, "SystemState and the polled figures only")
            #expect(polled >= 6, "the counters of two Accept=yes sockets")
            // IP accounting from systemd's BPF maps (the test runs as root), not over the bus.
            let running = try #require(cache.units["vt-running.service"])
            for metric in AccountingMetric.allCases {
                let source = running.sources[metric.rawValue]
                let fromMap = { if case .map = source { true } else { false } }()
                #expect(fromMap == metric.isIP, "\(metric): \(source)")
            }
            let index = try #require(units.firstIndex { $0.name == "vt-running.service" })
            #expect((second.units[index].ipEgressBytes ?? 0) > 0, "vt-running connected once")
            let refreshes = cache.units.values.reduce(0) { $0 + PropertyCall.refresh($1.listed, index: 0).count }
            #expect(first.calls == 2 + refreshes, "Version, SystemState and a refresh of every unit")
            #expect(cache.units.values.allSatisfy { !$0.stale })
            #expect(first.manager?.version != nil && second.manager?.version == first.manager?.version)
            #expect(second.manager?.systemState != nil)
            // Everything but the live figures reads the same.
            var firstStatic = first.units
            var secondStatic = second.units
            for index in firstStatic.indices {
                for metric in AccountingMetric.allCases {
                    firstStatic[index][metric] = nil
                    secondStatic[index][metric] = nil
                }
            }
            #expect(firstStatic == secondStatic)
            let tasks = second.units.compactMap(\.tasksCurrent)
            #expect(!tasks.isEmpty, "tasks read from pids.current")
        }
    }
}

/// This host's cgroup files, as the collector finds them.
func hostAccountingFiles(findsIPMaps: Bool = true) throws -> AccountingFiles {
    AccountingFiles(
        mounts: parseCgroupMounts(try FileReader().read("/proc/self/mountinfo"), paths: PathRoots()),
        findsIPMaps: findsIPMaps
    )
}

/// What `systemctl show` says of every loaded unit, and the active state of every listed unit.
private struct UnitSnapshot: Sendable {
    static let properties = [
        "ActiveState", "Type", "ActiveEnterTimestamp", "NRestarts", "TasksCurrent", "TasksMax", "NAccepted",
        "NConnections", "NRefused", "LastTriggerUSec", "CPUUsageNSec", "MemoryCurrent", "IOReadBytes",
        "IOWriteBytes", "IPIngressBytes", "IPEgressBytes",
    ]

    var units: [String: [String: String]] = [:]
    var allStates: [String] = []

    init(_ systemd: NamespacedSystemd) throws {
        let listing = try systemd.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--full"])
        var loaded: [String] = []
        for line in listing.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3 else { continue }
            self.allStates.append(String(fields[2]))
            if fields[1] == "loaded" && !fields[0].hasSuffix(".device") { loaded.append(String(fields[0])) }
        }
        for values in try systemd.show(units: loaded, ["Id"] + Self.properties) {
            if let name = values["Id"] { self.units[name] = values }
        }
    }
}

/// A scrape, parsed, with lookups by family and labels.
struct Scraped {
    let families: [ParsedFamily]

    init(_ families: [ParsedFamily]) {
        self.families = families
    }

    subscript(family name: String) -> ParsedFamily? {
        self.families.first { $0.name == name }
    }

    func samples(_ family: String) -> [ParsedSample] {
        self.families.first { $0.name == family }?.samples ?? []
    }

    /// The value of the one sample of `family` whose labels include `labels`; nil if there is none
    /// (or more than one).
    func value(_ family: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = self.samples(family).filter { sample in
            labels.allSatisfy { sample[label: $0.key] == $0.value }
        }
        return matching.count == 1 ? matching[0].value : nil
    }
}

/// What `promtool check metrics` says of an exposition (empty when it is clean), or nil without promtool.
private func promtoolCheckMetrics(_ exposition: String) throws -> String? {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else { return nil }
    let promtool = Process()
    promtool.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
    promtool.arguments = ["check", "metrics"]
    let input = Pipe()
    let output = Pipe()
    promtool.standardInput = input
    promtool.standardOutput = output
    promtool.standardError = output
    try promtool.run()
    input.fileHandleForWriting.write(Data(exposition.utf8))
    try input.fileHandleForWriting.close()
    let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    promtool.waitUntilExit()
    return promtool.terminationStatus == 0 ? "" : said
}

/// A number as `systemctl show` prints it; nil for `[not set]`, `infinity`, `n/a`.
private func number(_ text: String?) -> Double? {
    text.flatMap { Double($0) }
}

/// A timestamp as `systemctl show --timestamp=unix` prints it, in seconds: `@1795645324`, or
/// `Wed 2026-11-25 23:13:16 UTC` for the properties it formats regardless (a timer's LastTriggerUSec);
/// nil for `n/a` and empty values.
private func seconds(_ text: String?) -> Double? {
    guard let text else { return nil }
    if text.hasPrefix("@") { return Double(text.dropFirst()) }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.dateFormat = "EEE yyyy-MM-dd HH:mm:ss zzz"
    return formatter.date(from: text)?.timeIntervalSince1970
}
