import Logging
import Synchronization
import VigilCore

/// Unit metrics from systemd over D-Bus, with systemd_exporter's families (`systemd_unit_state`,
/// `systemd_unit_info`, …), the unit's resource accounting, and node_exporter's `node_systemd_units`,
/// `node_systemd_system_running` and `node_systemd_version`.
///
/// Per scrape: `ListUnits`, then one `Properties.GetAll` per unit for the interface of its type
/// (Service, Socket, Timer, Mount, Swap, Slice, Scope) and, for active services, the Unit interface's
/// start time; all pipelined on one persistent connection, and bounded by the scrape's deadline.
/// Without a system bus (or without systemd on it) the collector reports no data and says why once.
struct SystemdCollector: Collector {
    static let unitInclude = "systemd.collector.unit-include"
    static let unitExclude = "systemd.collector.unit-exclude"
    static let privateSocket = "systemd.collector.private"

    static let descriptor = CollectorDescriptor(
        name: "systemd",
        enabledByDefault: true,
        help: "unit states, restarts, sockets, timers and resource use from systemd over D-Bus",
        options: [
            OptionSpec(
                unitInclude,
                .regex(".+"),
                help:
                    "Regexp of systemd units to include. Units must both match include and not match exclude to be included.",
                aliases: ["collector.systemd.unit-include", "collector.systemd.unit-whitelist"]
            ),
            OptionSpec(
                unitExclude,
                .regex(#".+\.(device)"#),
                help:
                    "Regexp of systemd units to exclude. Units must both match include and not match exclude to be included.",
                aliases: ["collector.systemd.unit-exclude", "collector.systemd.unit-blacklist"]
            ),
            OptionSpec(
                privateSocket,
                .bool(false),
                help:
                    "Establish a private, direct connection to systemd without dbus (/run/systemd/private; needs root). Saves the bus daemon relaying every call.",
                aliases: ["collector.systemd.private"]
            ),
        ]
    ) { setup in
        SystemdCollector(
            filter: NameFilter(
                include: try setup.settings.regex(unitInclude),
                exclude: try setup.settings.regex(unitExclude),
                wholeName: true
            ),
            endpoint: setup.settings.bool(privateSocket) ? .systemdPrivate : .systemBus
        )
    }

    /// Unanswered GetAll calls at a time; dbus-daemon allows 128 per connection by default.
    static let window = 64

    let filter: NameFilter
    /// Where systemd is: the system bus, or (tests) another bus or systemd's private socket.
    let endpoint: BusEndpoint
    let bus = SystemdBus()

    init(filter: NameFilter, endpoint: BusEndpoint = .systemBus) {
        self.filter = filter
        self.endpoint = endpoint
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let deadline = busDeadline(context.deadline)
        var (connection, reused): (BusConnection, Bool)
        do {
            (connection, reused) = try self.bus.take(self.endpoint)
        } catch {
            let what = self.endpoint == .systemBus ? "no system bus" : "systemd is not reachable"
            throw self.bus.unavailable("\(what) (\(error))", logger: context.logger)
        }
        var allUnits: [ListedUnit] = []
        while true {
            do throws(BusError) {
                allUnits = try listUnits(on: connection, deadline: deadline)
                break
            } catch {
                if error.meansNoService {
                    self.bus.giveBack(connection)
                    throw self.bus.unavailable("systemd is not on the system bus (\(error))", logger: context.logger)
                }
                // A kept connection may have died with the bus daemon or systemd since the last scrape.
                if reused && error.meansDisconnected, let fresh = try? BusConnection.open(self.endpoint) {
                    (connection, reused) = (fresh, false)
                    continue
                }
                // The connection is dropped: a late reply must not meet the next scrape.
                throw CollectorError.failed("\(error)")
            }
        }
        self.bus.available(logger: context.logger)

        let units = allUnits.filter { $0.loadState == "loaded" && self.filter.allows($0.name) }
        let fetched = fetchProperties(of: units, connection: connection, deadline: deadline)
        if let broken = fetched.connectionError {
            context.recordFailure("unit properties incomplete: \(broken)")
        } else {
            self.bus.giveBack(connection)
        }
        if let failed = fetched.firstFailure {
            context.recordFailure("\(fetched.failedCalls) property calls failed, the first: \(failed)")
        }
        writeSystemdFamilies(
            units: units,
            properties: fetched.units,
            allUnits: allUnits,
            manager: fetched.manager,
            into: &writer
        )
    }
}

/// systemd's units: `Manager.ListUnits`.
func listUnits(on connection: BusConnection, deadline: ContinuousClock.Instant) throws(BusError) -> [ListedUnit] {
    let call = try connection.methodCall(
        path: "/org/freedesktop/systemd1",
        interface: "org.freedesktop.systemd1.Manager",
        member: "ListUnits"
    )
    return try decodeListUnits(connection.call(call, deadline: deadline, operation: "ListUnits"))
}

/// When bus calls stop: a little before the scrape's deadline, so that the unit states already read
/// are still served when systemd or the bus daemon is slow.
private func busDeadline(_ deadline: ContinuousClock.Instant) -> ContinuousClock.Instant {
    let left = ContinuousClock.now.duration(to: deadline)
    return deadline - min(.milliseconds(100), left / 10)
}

/// What the collector keeps between scrapes: one idle connection to reuse, and what it last said
/// about the bus being unreachable (so that it says it once, not every scrape).
final class SystemdBus: Sendable {
    private let idle = Mutex<BusConnection?>(nil)
    private let unavailableReason = Mutex<String?>(nil)

    /// The idle connection (reused: true), or a new one when there is none (first scrape, dropped
    /// after an error, or in use by a concurrent scrape).
    func take(_ endpoint: BusEndpoint) throws(BusError) -> (BusConnection, reused: Bool) {
        let idle = self.idle.withLock { idle -> BusConnection? in
            let connection = idle
            idle = nil
            return connection
        }
        if let idle { return (idle, true) }
        return (try BusConnection.open(endpoint), false)
    }

    /// Keeps `connection` for the next scrape (a second one, from a concurrent scrape, is closed).
    func giveBack(_ connection: BusConnection) {
        let extra = self.idle.withLock { idle -> BusConnection? in
            guard idle == nil else { return connection }
            idle = connection
            return nil
        }
        _ = extra  // closed here, outside the lock
    }

    /// Logs why there is no data when the reason is new, and returns the error for the scraper.
    func unavailable(_ reason: String, logger: Logger) -> CollectorError {
        let isNew = self.unavailableReason.withLock { last in
            defer { last = reason }
            return last != reason
        }
        if isNew {
            logger.info(
                "systemd collector has no data; it keeps trying on every scrape",
                metadata: ["collector": "systemd", "reason": "\(reason)"]
            )
        }
        return CollectorError.noData(reason)
    }

    /// Notes that systemd answered, and says so if it had not before.
    func available(logger: Logger) {
        let wasUnavailable = self.unavailableReason.withLock { last in
            defer { last = nil }
            return last != nil
        }
        if wasUnavailable {
            logger.info("systemd is reachable on the system bus", metadata: ["collector": "systemd"])
        }
    }
}

/// The properties of one scrape's units, and how their calls went.
struct FetchedProperties {
    var manager: ManagerProperties?
    var units: [UnitProperties]
    /// Calls answered with an error other than "not there"; their units' series are missing.
    var failedCalls = 0
    var firstFailure: BusError?
    /// The connection broke or the deadline passed: units not answered by then have no properties.
    var connectionError: BusError?
}

/// One property call: `GetAll(interface)`, or `Get(interface, property)` when one property is all
/// vigil needs of the interface.
struct PropertyCall {
    /// The unit's index, or -1 for the manager.
    let unit: Int
    let interface: String
    let single: BusProperty?
    let wanted: PropertySet

    static let manager = PropertyCall(
        unit: -1,
        interface: "org.freedesktop.systemd1.Manager",
        single: nil,
        wanted: PropertySet([.version, .systemState])
    )

    /// The calls for a unit of this type: its type's interface, and for an active service the Unit
    /// interface's ActiveEnterTimestamp (a Get: the Unit interface's other hundred properties, with
    /// every dependency list, would cost systemd more than the service's).
    static func calls(for unit: ListedUnit, index: Int) -> [PropertyCall] {
        let accounting: [BusProperty] = [
            .cpuUsageNSec, .memoryCurrent, .ioReadBytes, .ioWriteBytes, .ipIngressBytes, .ipEgressBytes,
        ]
        func getAll(_ interface: String, _ wanted: [BusProperty]) -> PropertyCall {
            PropertyCall(
                unit: index,
                interface: "org.freedesktop.systemd1." + interface,
                single: nil,
                wanted: PropertySet(wanted)
            )
        }
        switch unit.type {
        case "service":
            let service = getAll("Service", [.type, .nRestarts, .tasksCurrent, .tasksMax] + accounting)
            guard unit.activeState == "active" else { return [service] }
            let started = PropertyCall(
                unit: index,
                interface: "org.freedesktop.systemd1.Unit",
                single: .activeEnterTimestamp,
                wanted: PropertySet([.activeEnterTimestamp])
            )
            return [service, started]
        case "socket": return [getAll("Socket", [.nAccepted, .nConnections, .nRefused] + accounting)]
        case "timer": return [getAll("Timer", [.lastTriggerUSec])]
        case "mount": return [getAll("Mount", [.type] + accounting)]
        case "swap": return [getAll("Swap", accounting)]
        case "slice": return [getAll("Slice", accounting)]
        case "scope": return [getAll("Scope", accounting)]
        default: return []
        }
    }
}

/// Reads the manager's and every unit's properties, pipelined on `connection`.
func fetchProperties(
    of units: [ListedUnit],
    connection: BusConnection,
    deadline: ContinuousClock.Instant
) -> FetchedProperties {
    var calls = [PropertyCall.manager]
    for (index, unit) in units.enumerated() {
        calls += PropertyCall.calls(for: unit, index: index)
    }
    var fetched = FetchedProperties(units: Array(repeating: UnitProperties(), count: units.count))
    var manager = ManagerProperties()
    var managerAnswered = false
    do {
        try connection.pipeline(
            count: calls.count,
            window: SystemdCollector.window,
            deadline: deadline,
            makeCall: { (index: Int) throws(BusError) -> BusMessage in
                let call = calls[index]
                let path = call.unit < 0 ? "/org/freedesktop/systemd1" : units[call.unit].path
                guard let property = call.single else {
                    return try connection.getAll(path: path, interface: call.interface)
                }
                return try connection.get(path: path, interface: call.interface, property: property.name)
            },
            handle: { index, reply in
                let call = calls[index]
                do throws(BusError) {
                    if let error = reply.error(
                        of: "\(call.interface) of \(call.unit < 0 ? "manager" : units[call.unit].name)"
                    ) {
                        // A unit that vanished since ListUnits, an interface this systemd lacks: no series.
                        guard !error.meansAbsent else { return }
                        throw error
                    }
                    if call.unit < 0 {
                        try decodeProperties(reply, wanted: call.wanted) { manager.set($0, $1) }
                        managerAnswered = true
                    } else if let property = call.single {
                        if let value = try decodeVariant(reply, as: property) {
                            fetched.units[call.unit].set(property, value)
                        }
                    } else {
                        try decodeProperties(reply, wanted: call.wanted) { fetched.units[call.unit].set($0, $1) }
                    }
                } catch {
                    fetched.failedCalls += 1
                    if fetched.firstFailure == nil { fetched.firstFailure = error }
                }
            }
        )
    } catch {
        fetched.connectionError = error
    }
    if managerAnswered { fetched.manager = manager }
    return fetched
}
