import Logging
import Synchronization
import VigilCore

/// Unit metrics from systemd over D-Bus, with systemd_exporter's families (`systemd_unit_state`,
/// `systemd_unit_info`, …), the unit's resource accounting, and node_exporter's `node_systemd_units`,
/// `node_systemd_system_running` and `node_systemd_version`.
///
/// Asking systemd for a unit's properties is what costs (a `GetAll` makes systemd serialize some 300
/// properties), so the collector keeps the units' properties between scrapes and asks only for what may
/// have changed. On one persistent connection, subscribed to systemd's signals, a scrape
///
/// 1. takes the signals that arrived since the last scrape: `PropertiesChanged` of a unit carries the
///    values of the properties systemd flags `emits-change` (`NRestarts`, `ActiveEnterTimestamp`,
///    `LastTriggerUSec`, `Mount.Type`, `InvocationID`); a new `InvocationID` (the unit started again)
///    marks the unit for a refresh; `UnitNew`/`UnitRemoved` mark it too, `Reloading` (daemon-reload,
///    daemon-reexec) and a new owner of `org.freedesktop.systemd1` mark every unit;
/// 2. calls `ListUnits` once (every unit's state and job in one reply, for `systemd_unit_state` and the
///    unfiltered `node_systemd_units`); a unit that is new, or whose active state, sub-state, load
///    state or job changed, is marked for a refresh;
/// 3. marks `⌈units / 60⌉` more units in turn, so that every unit is read again at least every 60
///    scrapes: the safety net for what systemd changes without a signal (`TasksMax`, `Accept` or the
///    accounting settings changed by `systemctl set-property` — `daemon-reload` sends `Reloading`);
/// 4. refreshes the marked units: `Get(InvocationID)` and one `GetAll` of the unit type's interface
///    (and for an active service `Get(ActiveEnterTimestamp)`), pipelined;
/// 5. reads the accounting figures systemd does not signal from the unit's cgroup files, as systemd
///    computes them (``AccountingFiles``; for CPU and IO minus the counter at the unit's start, which
///    each refresh measures again), and IP accounting from systemd's BPF maps, found at the refresh
///    (``IPAccountingMap``; needs CAP_NET_ADMIN and CAP_SYS_ADMIN); a unit whose cgroup is gone keeps
///    systemd's last value; where vigil can read neither — the host's root slice (systemd reads /proc),
///    IP maps without the privileges — one `Properties.Get` per figure and scrape; and `Accept=yes`
///    sockets, whose connection counters change without a signal (`NRefused` never signals), get one
///    `Get` per counter and scrape.
///
/// Worst-case staleness: a value systemd signals is current at the next scrape; one it does not signal
/// and that changes without a state change, reload or restart of the unit is at most 60 scrapes old.
/// Accounting figures are read every scrape. With signals lost (a new connection after the bus daemon
/// or systemd restarted) every unit is refreshed.
///
/// Every call is bounded by the scrape's deadline; without a system bus (or without systemd on it) the
/// collector reports no data and says why once.
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

    /// Unanswered calls at a time; dbus-daemon allows 128 per connection by default.
    static let window = 64
    /// Every unit is refreshed at least once in this many scrapes.
    static let roundRobinScrapes = 60

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
        var session = self.bus.take()
        var reused = session.connection != nil
        var connection: BusConnection
        var allUnits: [ListedUnit] = []
        while true {
            do {
                connection = try session.connection ?? session.open(self.endpoint)
            } catch {
                self.bus.giveBack(session)
                let what = self.endpoint == .systemBus ? "no system bus" : "systemd is not reachable"
                throw self.bus.unavailable("\(what) (\(error))", logger: context.logger)
            }
            do throws(BusError) {
                if session.needsSubscribe { try session.subscribe(deadline: deadline) }
                // Signals first: they mark units that ListUnits shows unchanged (restarted meanwhile).
                guard try connection.drain(deadline: deadline, { session.cache.take(signal: $0) }) else {
                    throw BusError.timedOut("signals")
                }
                if session.cache.resubscribe { try session.subscribe(deadline: deadline) }
                allUnits = try listUnits(on: connection, deadline: deadline)
                break
            } catch {
                // The connection is dropped (a late reply must not meet the next scrape); the cache
                // stays, to be refreshed in full on the next connection.
                session.connection = nil
                if error.meansNoService {
                    self.bus.giveBack(session)
                    throw self.bus.unavailable("systemd is not on the system bus (\(error))", logger: context.logger)
                }
                // A kept connection may have died with the bus daemon or systemd since the last scrape.
                if reused && error.meansDisconnected {
                    reused = false
                    continue
                }
                self.bus.giveBack(session)
                throw CollectorError.failed("\(error)")
            }
        }
        self.bus.available(logger: context.logger)

        let units = session.cache.reconcile(allUnits, filter: self.filter)
        if session.subscribed {
            let perScrape = Self.roundRobinScrapes
            session.cache.markRoundRobin((units.count + perScrape - 1) / perScrape)
        } else {
            // Without signals nothing tells a restart between two scrapes: every unit is read every time.
            session.cache.invalidateAll()
        }
        let mounts = parseCgroupMounts(
            (try? context.reader.read(context.paths.proc("self/mountinfo"))) ?? [],
            paths: context.paths
        )
        let fetched = readUnits(
            units,
            cache: &session.cache,
            connection: connection,
            files: AccountingFiles(mounts: mounts),
            deadline: deadline
        )
        if let broken = fetched.connectionError {
            session.connection = nil
            context.recordFailure("unit properties incomplete: \(broken)")
        }
        self.bus.giveBack(session)
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

/// A connection to systemd, subscribed to its signals, and the unit cache those signals keep current.
struct SystemdSession: Sendable {
    var connection: BusConnection?
    var cache = UnitCache()
    /// The connection is new: the bus daemon is to route systemd's signals to it, and systemd to send them.
    var needsSubscribe = false
    /// systemd accepted `Subscribe` on this connection.
    var subscribed = false

    /// Opens a new connection; every cached unit is then refreshed (signals may have been missed).
    mutating func open(_ endpoint: BusEndpoint) throws(BusError) -> BusConnection {
        let connection = try BusConnection.open(endpoint)
        self.connection = connection
        self.needsSubscribe = true
        self.subscribed = false
        self.cache.invalidateAll()
        self.cache.version = nil
        return connection
    }

    /// Asks systemd to send its unit signals (it sends none while nobody is subscribed), and the bus
    /// daemon to route them here.
    mutating func subscribe(deadline: ContinuousClock.Instant) throws(BusError) {
        guard let connection = self.connection else { return }
        if self.needsSubscribe && connection.isBusClient {
            for rule in SystemdSignal.matchRules { try connection.addMatch(rule, deadline: deadline) }
        }
        self.needsSubscribe = false
        self.cache.resubscribe = false
        let call = try connection.methodCall(
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "Subscribe"
        )
        do {
            _ = try connection.call(call, deadline: deadline, operation: "Subscribe")
            self.subscribed = true
        } catch {
            if error.name == "org.freedesktop.systemd1.AlreadySubscribed" {
                self.subscribed = true
            } else if error.name != nil && !error.meansNoService && !error.meansDisconnected {
                // Refused: the collector still works, reading every unit every scrape.
                self.subscribed = false
            } else {
                throw error
            }
        }
    }
}

/// What the collector keeps between scrapes: one idle session (connection and unit cache), and what
/// it last said about the bus being unreachable (so that it says it once, not every scrape).
final class SystemdBus: Sendable {
    private let idle = Mutex<SystemdSession?>(nil)
    private let unavailableReason = Mutex<String?>(nil)

    /// The idle session, or a new one when there is none (first scrape, or in use by a concurrent
    /// scrape).
    func take() -> SystemdSession {
        self.idle.withLock { idle in
            defer { idle = nil }
            return idle ?? SystemdSession()
        }
    }

    /// Keeps `session` for the next scrape (a second one, from a concurrent scrape, is dropped).
    func giveBack(_ session: SystemdSession) {
        let extra = self.idle.withLock { idle -> SystemdSession? in
            guard idle == nil else { return session }
            idle = session
            return nil
        }
        _ = extra  // its connection is closed here, outside the lock
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
