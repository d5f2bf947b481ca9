import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The resource figures systemd reports per unit (its cgroup block), in exported order.
enum AccountingMetric: Int, CaseIterable, Sendable {
    case cpu, memory, tasks, ioRead, ioWrite, ipIngress, ipEgress

    var property: BusProperty {
        switch self {
        case .cpu: .cpuUsageNSec
        case .memory: .memoryCurrent
        case .tasks: .tasksCurrent
        case .ioRead: .ioReadBytes
        case .ioWrite: .ioWriteBytes
        case .ipIngress: .ipIngressBytes
        case .ipEgress: .ipEgressBytes
        }
    }

    var isIP: Bool { self == .ipIngress || self == .ipEgress }

    /// systemd reports these counters from the unit's start: the cgroup's counter minus its value when
    /// the unit (re)started, which systemd keeps to itself.
    var countsFromStart: Bool { self == .cpu || self == .ioRead || self == .ioWrite }

    /// The figures of a unit type: tasks only for services (as systemd_exporter), none for units
    /// without a control group.
    static func of(_ type: Substring) -> [AccountingMetric] {
        switch type {
        case "service": allCases
        case "socket", "mount", "swap", "slice", "scope": [.cpu, .memory, .ioRead, .ioWrite, .ipIngress, .ipEgress]
        default: []
        }
    }
}

extension UnitProperties {
    subscript(metric: AccountingMetric) -> UInt64? {
        get {
            switch metric {
            case .cpu: self.cpuUsageNSec
            case .memory: self.memoryCurrent
            case .tasks: self.tasksCurrent
            case .ioRead: self.ioReadBytes
            case .ioWrite: self.ioWriteBytes
            case .ipIngress: self.ipIngressBytes
            case .ipEgress: self.ipEgressBytes
            }
        }
        set {
            switch metric {
            case .cpu: self.cpuUsageNSec = newValue
            case .memory: self.memoryCurrent = newValue
            case .tasks: self.tasksCurrent = newValue
            case .ioRead: self.ioReadBytes = newValue
            case .ioWrite: self.ioWriteBytes = newValue
            case .ipIngress: self.ipIngressBytes = newValue
            case .ipEgress: self.ipEgressBytes = newValue
            }
        }
    }
}

/// Where a unit's accounting figure comes from between two refreshes of the unit.
enum AccountingSource: Equatable, Sendable {
    /// systemd has none (UINT64_MAX: accounting off, no control group, controller not enabled).
    case absent
    /// The control group is gone (the unit stopped): systemd keeps reporting the last value.
    case fixed(UInt64)
    /// The unit's cgroup file, read every scrape, minus `base` (systemd's counter at the unit's start).
    case file(base: UInt64)
    /// systemd's IP accounting map, read every scrape, plus `extra` (what systemd counted in earlier
    /// maps, before it re-executed).
    case map(IPAccountingMap, extra: UInt64)
    /// Nothing vigil can read gives systemd's figure (the host's root cgroup is read from /proc; IP
    /// accounting maps without the privileges to open them): one `Properties.Get` per scrape.
    case bus
}

/// What one refresh of a unit read: its properties as systemd reported them, and the cgroup files'
/// raw counters read right after the reply.
struct RefreshedUnit {
    var properties = UnitProperties()
    var controlGroup = ""
    var accept = false
    var invocation: [UInt8]?
    /// The raw cgroup counters, by `AccountingMetric` (nil where no file or map could be read).
    var readings: [UInt64?] = Array(repeating: nil, count: AccountingMetric.allCases.count)
    /// systemd's IP accounting maps of the unit, when vigil may open them.
    var ipMaps: (ingress: IPAccountingMap?, egress: IPAccountingMap?) = (nil, nil)

    /// The IP accounting map of `metric`, nil for the other figures.
    func ipMap(_ metric: AccountingMetric) -> IPAccountingMap? {
        switch metric {
        case .ipIngress: self.ipMaps.ingress
        case .ipEgress: self.ipMaps.egress
        default: nil
        }
    }

    /// Whether systemd reported IP accounting figures for the unit.
    var countsIP: Bool {
        [.ipIngress, .ipEgress].contains { (metric: AccountingMetric) in
            self.properties[metric].map { $0 != notAvailable } ?? false
        }
    }

    /// Reads the unit's IP accounting maps, right after systemd's reply (see ``CachedUnit/take(_:)``).
    mutating func readIPMaps(_ files: AccountingFiles) {
        self.ipMaps = files.ipAccountingMaps(controlGroup: self.controlGroup)
        self.readings[AccountingMetric.ipIngress.rawValue] = self.ipMaps.ingress?.bytes()
        self.readings[AccountingMetric.ipEgress.rawValue] = self.ipMaps.egress?.bytes()
    }

    mutating func set(_ property: BusProperty, _ value: BusValue) {
        switch (property, value) {
        case (.controlGroup, .string(let v)): self.controlGroup = v
        case (.accept, .bool(let v)): self.accept = v
        case (.invocationID, .bytes(let v)): self.invocation = v
        default: self.properties.set(property, value)
        }
    }
}

/// What the collector knows of one unit between scrapes.
struct CachedUnit: Sendable {
    var listed: ListedUnit
    /// The values of the last refresh, kept current by signals; accounting as of the last scrape.
    var properties = UnitProperties()
    var controlGroup = ""
    /// A socket with `Accept=yes`, whose connection counters change without a signal.
    var accept = false
    /// The unit's invocation as last seen (refresh or signal): a new one means the unit started again.
    var invocation: [UInt8]?
    /// The invocation the `.file` bases were measured in.
    var baseInvocation: [UInt8]?
    var sources = [AccountingSource](repeating: .absent, count: AccountingMetric.allCases.count)
    /// Refreshed at least once.
    var known = false
    /// To be refreshed at the next scrape.
    var stale = true
    /// The last `ListUnits` that listed the unit.
    var seen: UInt64 = 0

    init(listed: ListedUnit) {
        self.listed = listed
    }

    /// Takes a refresh: the properties, and for each accounting figure where it comes from until the
    /// next refresh. Returns the properties to export now.
    ///
    /// A counter systemd reports from the unit's start (CPU, IO) is its cgroup file minus a base. The
    /// base is measured as `file − systemd` with the file read after systemd's reply, so it is never
    /// below systemd's (the counter only grows): vigil never reports more than systemd. Within one
    /// invocation the base only ever decreases (towards systemd's), so the exported counter never goes
    /// backwards; a new invocation (systemd resets its base at every start) measures it afresh.
    mutating func take(_ refreshed: RefreshedUnit) -> UnitProperties {
        var exported = refreshed.properties
        let sameInvocation = self.known && self.baseInvocation == refreshed.invocation
        // The host's root cgroup: systemd reads /proc, not the cgroup's files.
        let hostRoot = refreshed.controlGroup == "/"
        // A counter behind systemd's means the file is not the one systemd reads (another cgroup
        // namespace): then every figure of the unit comes from systemd.
        var filesAgree = true
        for metric in AccountingMetric.of(self.listed.type) where metric.countsFromStart {
            if let value = refreshed.properties[metric], value != notAvailable,
                let reading = refreshed.readings[metric.rawValue], reading < value
            {
                filesAgree = false
            }
        }
        for metric in AccountingMetric.of(self.listed.type) {
            let source: AccountingSource
            let value = refreshed.properties[metric]
            if let value, value != notAvailable {
                let map = refreshed.ipMap(metric)
                if refreshed.controlGroup.isEmpty {
                    source = .fixed(value)
                } else if let map, let reading = refreshed.readings[metric.rawValue] {
                    // systemd reports the map plus what earlier maps counted; measured as systemd's
                    // figure minus the map read after its reply, it is never above the true one.
                    var extra = value > reading ? value - reading : 0
                    if sameInvocation, case .map(let previousMap, let previous) = self.sources[metric.rawValue],
                        previousMap == map
                    {
                        extra = max(extra, previous)
                    }
                    source = .map(map, extra: extra)
                    exported[metric] = reading + extra
                } else if !metric.isIP, let reading = refreshed.readings[metric.rawValue], filesAgree, !hostRoot {
                    guard metric.countsFromStart else {
                        source = .file(base: 0)
                        exported[metric] = reading
                        self.sources[metric.rawValue] = source
                        continue
                    }
                    var base = reading - value
                    if sameInvocation, case .file(let previous) = self.sources[metric.rawValue] {
                        base = min(base, previous)
                    }
                    source = .file(base: base)
                    exported[metric] = reading - base
                } else {
                    source = .bus
                }
            } else {
                source = .absent
                exported[metric] = nil
            }
            self.sources[metric.rawValue] = source
        }
        self.properties = exported
        self.controlGroup = refreshed.controlGroup
        self.accept = refreshed.accept
        self.invocation = refreshed.invocation
        self.baseInvocation = refreshed.invocation
        self.known = true
        return exported
    }
}

/// The units of the last scrapes, kept current between scrapes by systemd's signals, by the states
/// `ListUnits` reports and by a slow round-robin refresh; see ``SystemdCollector`` for the policy.
struct UnitCache: Sendable {
    /// The units that pass the filters, by name.
    private(set) var units: [String: CachedUnit] = [:]
    /// Unit names by object path, for signals.
    private var names: [String: String] = [:]
    /// Units the filters reject (each name is matched once).
    private var rejected: Set<String> = []
    /// The round-robin order and position.
    private var rotation: [String] = []
    private var rotationIndex = 0
    /// Counts `ListUnits` replies taken, one per scrape.
    private(set) var listing: UInt64 = 0
    /// The manager's version (it cannot change without a new systemd, and so a new connection).
    var version: String?
    /// systemd's bus name changed owner: subscribe again, in case the new systemd forgot.
    var resubscribe = false

    init() {}

    /// Takes a `ListUnits` reply: adds the loaded units the filter allows, marks stale those whose
    /// state or job changed, forgets the units no longer listed. Returns the units to export, in order.
    mutating func reconcile(_ listed: [ListedUnit], filter: NameFilter) -> [ListedUnit] {
        self.listing += 1
        var exported: [ListedUnit] = []
        exported.reserveCapacity(self.units.count)
        var added = false
        for unit in listed where unit.loadState == "loaded" {
            if var cached = self.units[unit.name] {
                if cached.listed.path != unit.path {
                    self.names[unit.path] = unit.name
                    cached.stale = true
                }
                if !cached.listed.sameState(as: unit) { cached.stale = true }
                cached.listed = unit
                cached.seen = self.listing
                self.units[unit.name] = cached
            } else {
                guard !self.rejected.contains(unit.name) else { continue }
                guard filter.allows(unit.name) else {
                    self.rejected.insert(unit.name)
                    continue
                }
                var cached = CachedUnit(listed: unit)
                cached.seen = self.listing
                self.units[unit.name] = cached
                self.names[unit.path] = unit.name
                added = true
            }
            exported.append(unit)
        }
        if exported.count != self.units.count {
            self.units = self.units.filter { $0.value.seen == self.listing }
            self.names = self.names.filter { self.units[$0.value]?.listed.path == $0.key }
            added = true
        }
        // Transient units (instances of Accept=yes sockets, scopes) come and go: forget old rejections.
        if self.rejected.count > 2 * listed.count + 64 {
            let names = Set(listed.map(\.name))
            self.rejected = self.rejected.filter { names.contains($0) }
        }
        if added {
            self.rotation = self.units.keys.sorted()
            self.rotationIndex = 0
        }
        return exported
    }

    /// Marks up to `count` units that are not stale anyway stale, taking turns: the safety net for the
    /// changes systemd announces with no signal (`TasksMax`, accounting settings changed at run time).
    mutating func markRoundRobin(_ count: Int) {
        var marked = 0
        var looked = 0
        while marked < count && looked < self.rotation.count {
            if self.rotationIndex >= self.rotation.count { self.rotationIndex = 0 }
            let name = self.rotation[self.rotationIndex]
            self.rotationIndex += 1
            looked += 1
            guard self.units[name]?.stale == false else { continue }
            self.units[name]?.stale = true
            marked += 1
        }
    }

    /// Marks every unit stale: after a reload of systemd, a new connection, or lost signals.
    mutating func invalidateAll() {
        for name in self.units.keys { self.units[name]?.stale = true }
    }

    mutating func markStale(_ name: String) {
        self.units[name]?.stale = true
    }

    mutating func update(_ name: String, _ change: (inout CachedUnit) -> Void) {
        guard var unit = self.units[name] else { return }
        self.units[name] = nil  // no copy on write
        change(&unit)
        self.units[name] = unit
    }

    /// Acts on a message that arrived unasked: one of systemd's signals, or anything else (ignored).
    mutating func take(signal message: borrowing BusMessage) {
        // A signal that does not decode changes nothing.
        if let signal = try? SystemdSignal(message) { self.apply(signal) }
    }

    /// Acts on a signal of systemd's.
    mutating func apply(_ signal: SystemdSignal) {
        switch signal {
        case .propertiesChanged(let path, let changes):
            guard let name = self.names[path], var unit = self.units[name] else { return }
            for (property, value) in changes {
                switch (property, value) {
                case (.invocationID, .bytes(let invocation)):
                    if unit.invocation != invocation {
                        unit.invocation = invocation
                        unit.stale = true
                    }
                case (.activeEnterTimestamp, _), (.nRestarts, _), (.lastTriggerUSec, _), (.type, _):
                    // Values emitted with every change: taken as they are, no refresh needed.
                    unit.properties.set(property, value)
                default: break
                }
            }
            self.units[name] = unit
        case .unitNew(let name), .unitRemoved(let name):
            // Another object of that name (a unit unloaded and loaded again): read it anew.
            self.markStale(name)
        case .reloading:
            self.invalidateAll()
        case .managerChanged:
            self.invalidateAll()
            self.resubscribe = true
        }
    }
}

/// The signals of systemd's that the unit cache acts on.
enum SystemdSignal: Equatable {
    /// `PropertiesChanged` of a unit, with the values vigil tracks among those it carries.
    case propertiesChanged(path: String, changes: [(BusProperty, BusValue)])
    case unitNew(name: String)
    case unitRemoved(name: String)
    /// `Reloading`: the unit files were read again (daemon-reload, daemon-reexec).
    case reloading
    /// The bus name `org.freedesktop.systemd1` changed owner: systemd restarted or re-executed.
    case managerChanged

    static func == (lhs: SystemdSignal, rhs: SystemdSignal) -> Bool {
        switch (lhs, rhs) {
        case (.propertiesChanged(let a, let x), .propertiesChanged(let b, let y)):
            a == b && x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.unitNew(let a), .unitNew(let b)), (.unitRemoved(let a), .unitRemoved(let b)): a == b
        case (.reloading, .reloading), (.managerChanged, .managerChanged): true
        default: false
        }
    }

    /// The match rules that route these signals to a bus client.
    static let matchRules = [
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',"
            + "member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit'",
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',"
            + "member='UnitNew',path='/org/freedesktop/systemd1'",
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',"
            + "member='UnitRemoved',path='/org/freedesktop/systemd1'",
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',"
            + "member='Reloading',path='/org/freedesktop/systemd1'",
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
            + "member='NameOwnerChanged',arg0='org.freedesktop.systemd1'",
    ]

    /// The properties each interface's `PropertiesChanged` carries that vigil tracks.
    private static func tracked(_ interface: UnsafePointer<CChar>) -> PropertySet? {
        func equals(_ name: StaticString) -> Bool {
            strcmp(interface, UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)) == 0
        }
        if equals("org.freedesktop.systemd1.Unit") { return PropertySet([.invocationID, .activeEnterTimestamp]) }
        if equals("org.freedesktop.systemd1.Service") { return PropertySet([.nRestarts]) }
        if equals("org.freedesktop.systemd1.Timer") { return PropertySet([.lastTriggerUSec]) }
        if equals("org.freedesktop.systemd1.Mount") { return PropertySet([.type]) }
        return nil
    }

    /// Reads a signal; nil for one vigil does not act on.
    init?(_ message: borrowing BusMessage) throws(BusError) {
        if message.isSignal("org.freedesktop.DBus.Properties", "PropertiesChanged") {
            guard let path = message.path, let tracked = Self.tracked(try message.readCString()) else { return nil }
            var changes: [(BusProperty, BusValue)] = []
            try decodeProperties(message, wanted: tracked) { changes.append(($0, $1)) }
            self = .propertiesChanged(path: String(cString: path), changes: changes)
        } else if message.isSignal("org.freedesktop.systemd1.Manager", "UnitNew") {
            self = .unitNew(name: try message.readString())
        } else if message.isSignal("org.freedesktop.systemd1.Manager", "UnitRemoved") {
            self = .unitRemoved(name: try message.readString())
        } else if message.isSignal("org.freedesktop.systemd1.Manager", "Reloading") {
            self = .reloading
        } else if message.isSignal("org.freedesktop.DBus", "NameOwnerChanged") {
            self = .managerChanged
        } else {
            return nil
        }
    }
}
