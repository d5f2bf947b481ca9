import VigilCore

/// The properties of one scrape's units, and how their calls went.
struct FetchedProperties {
    var manager: ManagerProperties?
    var units: [UnitProperties]
    /// Calls answered with an error other than "not there"; their units' series are missing.
    var failedCalls = 0
    var firstFailure: BusError?
    /// The connection broke or the deadline passed: units not answered by then have no properties.
    var connectionError: BusError?
    /// Calls sent, for tests and benchmarks.
    var calls = 0
}

/// One property call: `GetAll(interface)`, or `Get(interface, property)` when one property is all
/// vigil needs of the interface.
struct PropertyCall {
    enum Purpose {
        case manager
        /// Part of a unit's refresh (all of them must succeed for the refresh to count).
        case refresh
        /// A figure systemd gives only over the bus, read every scrape.
        case poll
    }

    /// The unit's index, or -1 for the manager.
    let unit: Int
    let interface: StaticString
    let single: BusProperty?
    let wanted: PropertySet
    let purpose: Purpose

    static func manager(_ property: BusProperty) -> PropertyCall {
        PropertyCall(
            unit: -1,
            interface: "org.freedesktop.systemd1.Manager",
            single: property,
            wanted: PropertySet([property]),
            purpose: .manager
        )
    }

    static func get(_ unit: Int, _ interface: StaticString, _ property: BusProperty, _ purpose: Purpose) -> PropertyCall
    {
        PropertyCall(
            unit: unit,
            interface: interface,
            single: property,
            wanted: PropertySet([property]),
            purpose: purpose
        )
    }

    /// The calls that refresh a unit of this type. For a unit with a control group, first its Unit
    /// interface's `InvocationID` (before the counters, so that a start between the two calls is seen
    /// at the next refresh, never taken as the counters' invocation), then a `GetAll` of its type's
    /// interface; for an active service also `ActiveEnterTimestamp` (a `Get`: the Unit interface's
    /// hundred other properties, with every dependency list, would cost systemd more than the service's).
    static func refresh(_ unit: ListedUnit, index: Int) -> [PropertyCall] {
        guard let interface = unitInterface(unit.type) else { return [] }
        var wanted = AccountingMetric.of(unit.type).map(\.property)
        switch unit.type {
        case "service": wanted += [.type, .nRestarts, .tasksMax]
        case "socket": wanted += [.accept, .nAccepted, .nConnections, .nRefused]
        case "timer": wanted += [.lastTriggerUSec]
        case "mount": wanted += [.type]
        default: break
        }
        let getAll = PropertyCall(
            unit: index,
            interface: interface,
            single: nil,
            wanted: PropertySet(wanted + [.controlGroup]),
            purpose: .refresh
        )
        guard unit.type != "timer" else { return [getAll] }
        var calls = [Self.get(index, "org.freedesktop.systemd1.Unit", .invocationID, .refresh), getAll]
        if unit.type == "service" && unit.activeState == "active" {
            calls.append(Self.get(index, "org.freedesktop.systemd1.Unit", .activeEnterTimestamp, .refresh))
        }
        return calls
    }
}

/// The D-Bus interface of a unit type vigil reads properties of.
func unitInterface(_ type: Substring) -> StaticString? {
    switch type {
    case "service": "org.freedesktop.systemd1.Service"
    case "socket": "org.freedesktop.systemd1.Socket"
    case "timer": "org.freedesktop.systemd1.Timer"
    case "mount": "org.freedesktop.systemd1.Mount"
    case "swap": "org.freedesktop.systemd1.Swap"
    case "slice": "org.freedesktop.systemd1.Slice"
    case "scope": "org.freedesktop.systemd1.Scope"
    default: nil
    }
}

/// Reads what a scrape needs of systemd for `units` (this scrape's `ListUnits`, filtered, reconciled
/// with `cache`): the manager's state, a refresh of every unit the cache has marked, the figures only
/// the bus gives; the other units' accounting from their cgroup files. All calls are pipelined on
/// `connection` and stop at `deadline`. Returns the properties to export, index for index.
func readUnits(
    _ units: [ListedUnit],
    cache: inout UnitCache,
    connection: BusConnection,
    files: AccountingFiles,
    deadline: ContinuousClock.Instant
) -> FetchedProperties {
    var fetched = FetchedProperties(units: Array(repeating: UnitProperties(), count: units.count))
    var calls = [PropertyCall.manager(.systemState)]
    if cache.version == nil { calls.append(.manager(.version)) }
    var refreshing: [Int: RefreshedUnit] = [:]
    var unanswered: [Int: Int] = [:]
    for (index, unit) in units.enumerated() {
        guard var cached = cache.units[unit.name] else { continue }
        if cached.known && !cached.stale, let current = currentProperties(cached, files: files) {
            fetched.units[index] = current.properties
            calls += current.polls.map { PropertyCall.get(index, unitInterface(unit.type)!, $0, .poll) }
            continue
        }
        // A refresh is in flight: a signal from now on marks the unit for the next scrape.
        cached.stale = false
        let refresh = PropertyCall.refresh(unit, index: index)
        if refresh.isEmpty {
            // Targets, paths, devices…: nothing to read.
            cached.known = true
        } else {
            refreshing[index] = RefreshedUnit()
            unanswered[index] = refresh.count
            calls += refresh
        }
        cache.update(unit.name) { $0 = cached }
    }

    var manager = ManagerProperties()
    var managerAnswered = false
    fetched.calls = calls.count
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
                if call.purpose == .refresh { unanswered[call.unit, default: 0] -= 1 }
                do throws(BusError) {
                    if let error = reply.error(
                        of: "\(call.interface) of \(call.unit < 0 ? "manager" : units[call.unit].name)"
                    ) {
                        // A unit that vanished since ListUnits, an interface this systemd lacks: no series.
                        guard !error.meansAbsent else { return }
                        throw error
                    }
                    switch call.purpose {
                    case .manager:
                        try decodeProperties(reply, wanted: call.wanted, single: call.single) { manager.set($0, $1) }
                        managerAnswered = true
                    case .poll:
                        try decodeProperties(reply, wanted: call.wanted, single: call.single) {
                            fetched.units[call.unit].set($0, $1)
                        }
                    case .refresh:
                        try decodeProperties(reply, wanted: call.wanted, single: call.single) {
                            refreshing[call.unit]?.set($0, $1)
                        }
                        if call.single == nil, var refreshed = refreshing[call.unit] {
                            // The counters right after systemd's reply: never behind what systemd read.
                            refreshed.readings = files.read(
                                AccountingMetric.of(units[call.unit].type),
                                controlGroup: refreshed.controlGroup
                            )
                            if refreshed.countsIP { refreshed.readIPMaps(files) }
                            refreshing[call.unit] = refreshed
                        }
                    }
                } catch {
                    fetched.failedCalls += 1
                    if fetched.firstFailure == nil { fetched.firstFailure = error }
                    if call.purpose == .refresh { refreshing[call.unit] = nil }
                }
            },
            other: { cache.take(signal: $0) }
        )
    } catch {
        fetched.connectionError = error
    }

    for (index, refreshed) in refreshing {
        let name = units[index].name
        guard unanswered[index] == 0 else {
            cache.markStale(name)
            continue
        }
        cache.update(name) { fetched.units[index] = $0.take(refreshed) }
    }
    for (index, _) in unanswered where refreshing[index] == nil {
        cache.markStale(units[index].name)
    }
    if managerAnswered {
        if let version = manager.version { cache.version = version }
        manager.version = cache.version
        fetched.manager = manager
    }
    return fetched
}

/// The properties of a unit the cache holds current, with its accounting figures read now from its
/// cgroup files, and the properties to `Get` over the bus this scrape; nil when a file no longer reads
/// as the cache expects (the cgroup went away or was made anew): the unit is then refreshed.
private func currentProperties(
    _ cached: CachedUnit,
    files: AccountingFiles
) -> (properties: UnitProperties, polls: [BusProperty])? {
    var properties = cached.properties
    var polls: [BusProperty] = []
    let metrics = AccountingMetric.of(cached.listed.type)
    var readings: [UInt64?]?
    for metric in metrics {
        switch cached.sources[metric.rawValue] {
        case .absent:
            properties[metric] = nil
        case .fixed(let value):
            properties[metric] = value
        case .file(let base):
            if readings == nil {
                readings = files.read(
                    metrics.filter { if case .file = cached.sources[$0.rawValue] { true } else { false } },
                    controlGroup: cached.controlGroup
                )
            }
            guard let reading = readings?[metric.rawValue], reading >= base else { return nil }
            properties[metric] = reading - base
        case .map(let map, let extra):
            guard let bytes = map.bytes() else { return nil }
            properties[metric] = bytes &+ extra
        case .bus:
            properties[metric] = nil
            polls.append(metric.property)
        }
    }
    if cached.accept {
        polls += [.nAccepted, .nConnections, .nRefused]
    }
    return (properties, polls)
}
