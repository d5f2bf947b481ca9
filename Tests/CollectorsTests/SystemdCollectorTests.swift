import CSystemd
import Foundation
import Logging
import Synchronization
import Testing
import VigilCore

@testable import Collectors

/// The systemd collector's decoding and families, on D-Bus messages built with libsystemd itself.
@Suite struct SystemdCollectorTests {
    @Test func parsesTheVersionAsNodeExporterDoes() {
        #expect(parseSystemdVersion("252.39-1~deb12u2") == 252.39)
        #expect(parseSystemdVersion("252") == 252)
        #expect(parseSystemdVersion("v25.1-256.7") == 256.7)
        #expect(parseSystemdVersion("245.4-4ubuntu3.24") == 245.4)
        #expect(parseSystemdVersion("239 (239-78.el8)") == 239)
        #expect(parseSystemdVersion("257.") == 257)
        #expect(parseSystemdVersion("12.3") == nil)
        #expect(parseSystemdVersion("") == nil)
    }

    @Test func decodesListUnits() throws {
        let reply = try TestMessage { message in
            try message.open("a", "(ssssssouso)")
            for (name, load, active) in [
                ("ssh.service", "loaded", "active"), ("home.mount", "not-found", "inactive"),
                ("odd", "loaded", "maintenance"),
            ] {
                try message.open("r", "ssssssouso")
                for value in [name, "description", load, active, "sub", ""] { try message.append("s", value) }
                try message.append("o", "/org/freedesktop/systemd1/unit/x")
                try message.append(UInt32(0))
                try message.append("s", "")
                try message.append("o", "/")
                try message.close()
            }
            try message.close()
        }
        let units = try decodeListUnits(reply.message)
        #expect(units.map(\.name) == ["ssh.service", "home.mount", "odd"])
        #expect(units.map(\.loadState) == ["loaded", "not-found", "loaded"])
        #expect(units.map(\.activeState) == ["active", "inactive", "maintenance"])
        #expect(units.map(\.type) == ["service", "mount", ""])
        #expect(units[0].path == "/org/freedesktop/systemd1/unit/x")
    }

    @Test func decodesTheKnownPropertiesAndSkipsTheRest() throws {
        let reply = try TestMessage { message in
            try message.open("a", "{sv}")
            try message.property("Type", "s", "notify")
            try message.property("Restart", "s", "always")  // not read
            try message.property("NRestarts", "u", UInt32(7))
            try message.property("TasksCurrent", "t", UInt64(3))
            try message.property("TasksMax", "t", UInt64.max)
            try message.property("ExecStart", "a(sasbttttuii)", nil)  // a container, skipped
            try message.property("CPUUsageNSec", "u", UInt32(5))  // unexpected type: skipped
            try message.property("MemoryCurrent", "t", UInt64(1 << 40))
            try message.property("TasksCurrentX", "t", UInt64(9))  // a longer name, not TasksCurrent
            try message.close()
        }
        var properties = UnitProperties()
        try decodeProperties(reply.message, wanted: PropertySet(BusProperty.allCases)) { properties.set($0, $1) }
        var expected = UnitProperties()
        expected.type = "notify"
        expected.nRestarts = 7
        expected.tasksCurrent = 3
        expected.tasksMax = UInt64.max
        expected.memoryCurrent = 1 << 40
        #expect(properties == expected)
    }

    @Test func anEmptyOrTruncatedReplyCostsOnlyItsProperties() throws {
        let empty = try TestMessage { message in
            try message.open("a", "{sv}")
            try message.close()
        }
        var properties = UnitProperties()
        try decodeProperties(empty.message, wanted: PropertySet([.type])) { properties.set($0, $1) }
        #expect(properties == UnitProperties())

        // A reply of another shape (a string where the array belongs) is an error, not a crash.
        let wrong = try TestMessage { message in try message.append("s", "surprise") }
        #expect(throws: BusError.self) {
            try decodeProperties(wrong.message, wanted: PropertySet([.type])) { properties.set($0, $1) }
        }
    }

    /// Once every wanted property is read, the rest of the reply is not: systemd lists a service's
    /// execution settings, costly to skip, after its accounting.
    @Test func stopsReadingOnceEveryWantedPropertyIsSeen() throws {
        let reply = try TestMessage { message in
            try message.open("a", "{sv}")
            try message.property("Type", "s", "simple")
            try message.property("NRestarts", "u", UInt32(1))
            try message.property("TasksCurrent", "t", UInt64(2))
            try message.close()
        }
        var seen: [BusProperty] = []
        try decodeProperties(reply.message, wanted: PropertySet([.type, .nRestarts])) { property, _ in
            seen.append(property)
        }
        #expect(seen == [.type, .nRestarts])
    }

    @Test func writesSystemdExporterFamilies() throws {
        let units = [
            ListedUnit(name: "a.service", loadState: "loaded", activeState: "active", path: "/a"),
            ListedUnit(name: "b.service", loadState: "loaded", activeState: "failed", path: "/b"),
            ListedUnit(name: "c.socket", loadState: "loaded", activeState: "active", path: "/c"),
            ListedUnit(name: "d.mount", loadState: "loaded", activeState: "reloading", path: "/d"),
            ListedUnit(name: "e.timer", loadState: "loaded", activeState: "active", path: "/e"),
        ]
        var a = UnitProperties()
        a.type = "simple"
        a.activeEnterTimestamp = 1_700_000_000_500_000
        a.nRestarts = 2
        a.tasksCurrent = 4
        a.tasksMax = UInt64.max
        a.cpuUsageNSec = 1_500_000_000
        a.memoryCurrent = UInt64.max
        a.ipIngressBytes = 40
        var b = UnitProperties()
        b.type = ""  // a unit that vanished after ListUnits: systemd answers with defaults
        b.nRestarts = 0
        var c = UnitProperties()
        c.nAccepted = 5
        c.nConnections = 1
        c.nRefused = 2
        var d = UnitProperties()
        d.type = "ext4"
        var e = UnitProperties()
        e.lastTriggerUSec = 1_700_000_123_000_000
        let all = units + [ListedUnit(name: "gone.service", loadState: "not-found", activeState: "inactive", path: "/")]
        var manager = ManagerProperties()
        manager.version = "252.39-1~deb12u2"
        manager.systemState = "degraded"

        var writer = MetricWriter(format: .text)
        writeSystemdFamilies(units: units, properties: [a, b, c, d, e], allUnits: all, manager: manager, into: &writer)
        let text = String(decoding: writer.takeBytes(), as: UTF8.self)
        let families = try parseExposition(text)
        let scraped = Scraped(families)
        #expect(Set(families.map(\.name)).count == families.count)

        #expect(scraped.samples("systemd_unit_state").count == 25)
        #expect(scraped.value("systemd_unit_state", ["name": "a.service", "type": "service", "state": "active"]) == 1)
        #expect(scraped.value("systemd_unit_state", ["name": "b.service", "state": "failed"]) == 1)
        // systemd_exporter knows five states: a reloading unit is 0 in each.
        #expect(
            scraped.samples("systemd_unit_state").filter { $0[label: "name"] == "d.mount" }.allSatisfy { $0.value == 0 }
        )
        #expect(
            scraped.value(
                "systemd_unit_info",
                ["name": "a.service", "type": "service", "mount_type": "", "service_type": "simple"]
            ) == 1
        )
        #expect(scraped.value("systemd_unit_info", ["name": "d.mount", "mount_type": "ext4", "service_type": ""]) == 1)
        #expect(scraped.value("systemd_unit_info", ["name": "b.service"]) == nil)
        #expect(
            scraped.value("systemd_unit_start_time_seconds", ["name": "a.service", "type": "service"])
                == 1_700_000_000.5
        )
        #expect(scraped.value("systemd_unit_start_time_seconds", ["name": "b.service"]) == 0)
        #expect(scraped.value("systemd_unit_tasks_current", ["name": "a.service"]) == 4)
        #expect(scraped[family: "systemd_unit_tasks_max"] == nil, "UINT64_MAX is infinity: no series, no family")
        #expect(scraped.value("systemd_service_restart_total", ["name": "a.service"]) == 2)
        #expect(scraped[family: "systemd_service_restart_total"]?.type == "counter")
        #expect(scraped.value("systemd_socket_accepted_connections_total", ["name": "c.socket"]) == 5)
        #expect(scraped.value("systemd_socket_current_connections", ["name": "c.socket"]) == 1)
        #expect(scraped.value("systemd_socket_refused_connections_total", ["name": "c.socket"]) == 2)
        #expect(scraped.value("systemd_timer_last_trigger_seconds", ["name": "e.timer"]) == 1_700_000_123)
        #expect(scraped.value("systemd_unit_cpu_seconds_total", ["name": "a.service", "type": "service"]) == 1.5)
        #expect(scraped[family: "systemd_unit_memory_bytes"] == nil)
        #expect(scraped.value("systemd_unit_ip_ingress_bytes_total", ["name": "a.service"]) == 40)
        #expect(scraped[family: "systemd_unit_ip_egress_bytes_total"] == nil)
        #expect(scraped[family: "systemd_unit_cpu_seconds_total"]?.help?.contains("CPUUsageNSec") == true)

        #expect(scraped.value("node_systemd_units", ["state": "active"]) == 3)
        #expect(scraped.value("node_systemd_units", ["state": "inactive"]) == 1)
        #expect(scraped.value("node_systemd_units", ["state": "deactivating"]) == 0)
        #expect(scraped.value("node_systemd_units", ["state": "reloading"]) == 1)
        #expect(scraped.value("node_systemd_system_running") == 0)
        #expect(scraped.value("node_systemd_version", ["version": "252.39-1~deb12u2"]) == 252.39)
        #expect(!text.contains("\n\n"))
    }

    @Test func noUnitsAndNoManagerWriteNoEmptyFamilies() throws {
        var writer = MetricWriter(format: .text)
        writeSystemdFamilies(units: [], properties: [], allUnits: [], manager: nil, into: &writer)
        #expect(writer.takeBytes().isEmpty)
    }

    @Test func unitPatternsMatchWholeNames() throws {
        let collector = try SystemdCollector.descriptor.make(
            setup([SystemdCollector.unitInclude: .regex(#"ssh|cron\.service"#)])
        )
        let filter = try #require(collector as? SystemdCollector).filter
        #expect(filter.allows("cron.service"))
        #expect(!filter.allows("ssh.service"), "anchored: ssh does not match ssh.service")
        let defaults = try #require(try SystemdCollector.descriptor.make(setup([:])) as? SystemdCollector).filter
        #expect(defaults.allows("ssh.service"))
        #expect(!defaults.allows("dev-sda.device"))
        #expect(defaults.allows("dev-sda.device.mount"))
    }

    @Test func nodeExporterFlagNamesAreAliases() {
        let include = SystemdCollector.descriptor.options.first { $0.name == "systemd.collector.unit-include" }
        let exclude = SystemdCollector.descriptor.options.first { $0.name == "systemd.collector.unit-exclude" }
        #expect(include?.aliases.contains("collector.systemd.unit-include") == true)
        #expect(exclude?.aliases.contains("collector.systemd.unit-exclude") == true)
        #expect(exclude?.defaultValue == .regex(#".+\.(device)"#))
    }

    /// Without a bus the collector reports no data at once, and logs why once, not every scrape.
    @Test func withoutABusItHasNoDataAndSaysSoOnce() throws {
        let log = CapturedLog()
        let collector = SystemdCollector(
            filter: NameFilter.all,
            endpoint: .bus(address: "unix:path=/tmp/vigil-systemd-no-such-dir/system_bus_socket")
        )
        for _ in 0..<3 {
            let started = ContinuousClock.now
            var writer = MetricWriter(format: .text)
            #expect {
                try collector.collect(into: &writer, context: log.context(deadline: .now + .seconds(9)))
            } throws: { error in
                guard case CollectorError.noData(let reason) = error else { return false }
                return reason.contains("No such file or directory")
            }
            #expect(started.duration(to: .now) < .milliseconds(500))
            #expect(writer.bytes.isEmpty)
        }
        #expect(log.messages.filter { $0.contains("systemd collector has no data") }.count == 1)
    }
}

/// A D-Bus message built with libsystemd, sealed and rewound for reading, as a reply would be.
final class TestMessage {
    /// A connection that is started (over a socket pair) but never used: sd-bus builds messages only
    /// for a started bus.
    nonisolated(unsafe) private static let bus: OpaquePointer = {
        var bus: OpaquePointer?
        var pair: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        precondition(sd_bus_new(&bus) >= 0)
        precondition(sd_bus_set_fd(bus, pair[0], pair[0]) >= 0)
        precondition(sd_bus_start(bus) >= 0)
        return bus!
    }()
    private static let lock = Mutex(())

    let message: BusMessage
    private let raw: OpaquePointer

    /// A message built by `build`; a signal `member` of `interface` from `path` (by default, one that
    /// only stands in for a reply).
    init(
        path: String = "/test",
        interface: String = "test.Vigil",
        member: String = "Reply",
        _ build: (TestMessage) throws -> Void
    ) throws {
        var raw: OpaquePointer?
        try Self.lock.withLock { _ in
            try check(sd_bus_message_new_signal(Self.bus, &raw, path, interface, member))
        }
        self.raw = raw!
        self.message = BusMessage(owning: sd_bus_message_ref(raw)!)
        try build(self)
        try check(sd_bus_message_seal(self.raw, 1, 0))
        try check(sd_bus_message_rewind(self.raw, 1))
        sd_bus_message_unref(self.raw)
    }

    func open(_ type: Unicode.Scalar, _ contents: String) throws {
        try check(sd_bus_message_open_container(self.raw, CChar(UInt8(ascii: type)), contents))
    }

    func close() throws {
        try check(sd_bus_message_close_container(self.raw))
    }

    func append(_ type: Unicode.Scalar, _ text: String) throws {
        try check(sd_bus_message_append_basic(self.raw, CChar(UInt8(ascii: type)), text))
    }

    func append(_ value: UInt32) throws {
        var value = value
        try check(sd_bus_message_append_basic(self.raw, CChar(UInt8(ascii: "u")), &value))
    }

    func append(_ value: UInt64) throws {
        var value = value
        try check(sd_bus_message_append_basic(self.raw, CChar(UInt8(ascii: "t")), &value))
    }

    func append(_ value: Bool) throws {
        var value: Int32 = value ? 1 : 0
        try check(sd_bus_message_append_basic(self.raw, CChar(UInt8(ascii: "b")), &value))
    }

    func append(bytes: [UInt8]) throws {
        try check(
            bytes.withUnsafeBytes {
                sd_bus_message_append_array(self.raw, CChar(UInt8(ascii: "y")), $0.baseAddress, $0.count)
            }
        )
    }

    /// One `{sv}` entry; a nil value writes an empty container of the signature.
    func property(_ name: String, _ signature: String, _ value: Any?) throws {
        try self.open("e", "sv")
        try self.append("s", name)
        try self.open("v", signature)
        switch value {
        case let text as String: try self.append("s", text)
        case let number as UInt32: try self.append(number)
        case let number as UInt64: try self.append(number)
        case let flag as Bool: try self.append(flag)
        case let bytes as [UInt8]: try self.append(bytes: bytes)
        default:
            try self.open("a", String(signature.dropFirst()))
            try self.close()
        }
        try self.close()
        try self.close()
    }
}

private func check(_ result: Int32) throws {
    guard result >= 0 else { throw BusError("build a test message", code: result) }
}

/// Settings for the systemd collector with some options overridden.
func setup(_ overrides: [String: OptionValue]) -> CollectorSetup {
    var settings = Settings(specs: [SystemdCollector.descriptor.enableOption] + SystemdCollector.descriptor.options)
    for (name, value) in overrides { settings.set(name, value, origin: .commandLine) }
    return CollectorSetup(settings: settings, paths: PathRoots(), logger: Logger(label: "test"))
}

/// Log messages written through a logger, for tests that check what is logged.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])

    var messages: [String] { self.lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(log: self) }
    }

    func context(deadline: ContinuousClock.Instant) -> ScrapeContext {
        ScrapeContext(
            paths: PathRoots(),
            reader: FileReader(),
            deadline: deadline,
            shared: ScrapeShared(),
            logger: self.logger,
            pool: BlockingPool.shared
        )
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let text = "\(event.message) \(event.metadata ?? [:])"
            self.log.lines.withLock { $0.append(text) }
        }
    }
}
