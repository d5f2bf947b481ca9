import VigilCore

/// systemd's "not available" for accounting and task counters (and "infinity" for `TasksMax`).
let notAvailable = UInt64.max

/// The states `systemd_unit_state` and `node_systemd_units` always have a series for.
let unitStates = ["active", "activating", "deactivating", "inactive", "failed"]

/// The families, with systemd_exporter's and node_exporter's names and help texts.
enum SystemdFamily {
    static let unitState = MetricFamily("systemd_unit_state", help: "Systemd unit", type: .gauge)
    static let unitInfo = MetricFamily(
        "systemd_unit_info",
        help: "Mostly-static metadata for all unit types",
        type: .gauge
    )
    static let startTime = MetricFamily(
        "systemd_unit_start_time_seconds",
        help: "Start time of the unit since unix epoch in seconds.",
        type: .gauge
    )
    static let tasksCurrent = MetricFamily(
        "systemd_unit_tasks_current",
        help: "Current number of tasks per Systemd unit",
        type: .gauge
    )
    static let tasksMax = MetricFamily(
        "systemd_unit_tasks_max",
        help: "Maximum number of tasks per Systemd unit",
        type: .gauge
    )
    static let restarts = MetricFamily(
        "systemd_service_restart_total",
        help: "Service unit count of Restart triggers",
        type: .counter
    )
    static let accepted = MetricFamily(
        "systemd_socket_accepted_connections_total",
        help: "Total number of accepted socket connections",
        type: .counter
    )
    static let connections = MetricFamily(
        "systemd_socket_current_connections",
        help: "Current number of socket connections",
        type: .gauge
    )
    // systemd_exporter declares it a gauge; a counter here, so that its _total is right (promtool).
    static let refused = MetricFamily(
        "systemd_socket_refused_connections_total",
        help: "Total number of refused socket connections",
        type: .counter
    )
    static let lastTrigger = MetricFamily(
        "systemd_timer_last_trigger_seconds",
        help: "Seconds since epoch of last trigger.",
        type: .gauge
    )
    static let cpu = MetricFamily(
        "systemd_unit_cpu_seconds_total",
        help: "CPU time consumed by the unit's control group in seconds (systemd's CPUUsageNSec; needs CPUAccounting).",
        type: .counter
    )
    static let memory = MetricFamily(
        "systemd_unit_memory_bytes",
        help:
            "Memory used by the unit's control group in bytes (systemd's MemoryCurrent: memory.current, or memory.usage_in_bytes on cgroup v1; needs MemoryAccounting).",
        type: .gauge
    )
    static let ioRead = MetricFamily(
        "systemd_unit_io_read_bytes_total",
        help:
            "Bytes read from block devices by the unit's control group (systemd's IOReadBytes; needs IOAccounting and cgroup v2).",
        type: .counter
    )
    static let ioWrite = MetricFamily(
        "systemd_unit_io_write_bytes_total",
        help:
            "Bytes written to block devices by the unit's control group (systemd's IOWriteBytes; needs IOAccounting and cgroup v2).",
        type: .counter
    )
    static let ipIngress = MetricFamily(
        "systemd_unit_ip_ingress_bytes_total",
        help: "IP bytes received by the unit's processes (systemd's IPIngressBytes; needs IPAccounting).",
        type: .counter
    )
    static let ipEgress = MetricFamily(
        "systemd_unit_ip_egress_bytes_total",
        help: "IP bytes sent by the unit's processes (systemd's IPEgressBytes; needs IPAccounting).",
        type: .counter
    )
    static let units = MetricFamily("node_systemd_units", help: "Summary of systemd unit states", type: .gauge)
    static let systemRunning = MetricFamily(
        "node_systemd_system_running",
        help: "Whether the system is operational (see 'systemctl is-system-running')",
        type: .gauge
    )
    static let version = MetricFamily("node_systemd_version", help: "Detected systemd version", type: .gauge)
}

/// Writes the systemd families from one scrape's units and properties.
///
/// - Parameters:
///   - units: the units that passed the filters (loaded, included, not excluded).
///   - properties: their properties, index for index.
///   - allUnits: every unit systemd listed, for `node_systemd_units`.
///   - manager: the manager's properties, nil when they could not be read.
func writeSystemdFamilies(
    units: [ListedUnit],
    properties: [UnitProperties],
    allUnits: [ListedUnit],
    manager: ManagerProperties?,
    into writer: inout MetricWriter
) {
    if !units.isEmpty {
        writer.family(SystemdFamily.unitState)
        for unit in units {
            for state in unitStates {
                writer.sample(
                    unit.activeState == state ? 1 : 0,
                    ("name", unit.name),
                    ("type", unit.type),
                    ("state", state)
                )
            }
        }
    }
    writeUnitInfo(units: units, properties: properties, into: &writer)

    let perUnit = UnitFamilies(units: units, properties: properties)
    perUnit.write(SystemdFamily.startTime, .nameAndType, into: &writer) { unit, properties in
        guard unit.type == "service" else { return nil }
        guard unit.activeState == "active" else { return 0 }
        return properties.activeEnterTimestamp.map { Double($0) / 1e6 }
    }
    perUnit.write(SystemdFamily.tasksCurrent, .name, into: &writer) { unit, properties in
        unit.type == "service" ? available(properties.tasksCurrent) : nil
    }
    perUnit.write(SystemdFamily.tasksMax, .nameAndType, into: &writer) { unit, properties in
        unit.type == "service" ? available(properties.tasksMax) : nil
    }
    perUnit.write(SystemdFamily.restarts, .name, into: &writer) { $1.nRestarts.map(Double.init) }
    perUnit.write(SystemdFamily.accepted, .name, into: &writer) { $1.nAccepted.map(Double.init) }
    perUnit.write(SystemdFamily.connections, .name, into: &writer) { $1.nConnections.map(Double.init) }
    perUnit.write(SystemdFamily.refused, .name, into: &writer) { $1.nRefused.map(Double.init) }
    perUnit.write(SystemdFamily.lastTrigger, .name, into: &writer) { $1.lastTriggerUSec.map { Double($0) / 1e6 } }

    // Resource accounting, of every unit with a control group that has it on.
    perUnit.write(SystemdFamily.cpu, .nameAndType, into: &writer) { available($1.cpuUsageNSec).map { $0 / 1e9 } }
    perUnit.write(SystemdFamily.memory, .nameAndType, into: &writer) { available($1.memoryCurrent) }
    perUnit.write(SystemdFamily.ioRead, .nameAndType, into: &writer) { available($1.ioReadBytes) }
    perUnit.write(SystemdFamily.ioWrite, .nameAndType, into: &writer) { available($1.ioWriteBytes) }
    perUnit.write(SystemdFamily.ipIngress, .nameAndType, into: &writer) { available($1.ipIngressBytes) }
    perUnit.write(SystemdFamily.ipEgress, .nameAndType, into: &writer) { available($1.ipEgressBytes) }

    if !allUnits.isEmpty {
        writeUnitSummary(allUnits, into: &writer)
    }
    if let state = manager?.systemState {
        writer.family(SystemdFamily.systemRunning)
        writer.sample(state == "running" ? 1 : 0)
    }
    if let version = manager?.version {
        // As node_exporter: the number and the full string, or 0 and "" when there is no number.
        let number = parseSystemdVersion(version)
        writer.family(SystemdFamily.version)
        writer.sample(number ?? 0, ("version", number == nil ? "" : version))
    }
}

/// A counter systemd reports, unless it is UINT64_MAX (accounting off, no control group).
private func available(_ value: UInt64?) -> Double? {
    guard let value, value != notAvailable else { return nil }
    return Double(value)
}

/// `systemd_unit_info`: the service type of services and the mount type of mounts.
private func writeUnitInfo(units: [ListedUnit], properties: [UnitProperties], into writer: inout MetricWriter) {
    var started = false
    for (unit, properties) in zip(units, properties) {
        // An empty type: the unit vanished after ListUnits, and systemd answered with defaults.
        guard let type = properties.type, !type.isEmpty, unit.type == "service" || unit.type == "mount" else {
            continue
        }
        if !started {
            writer.family(SystemdFamily.unitInfo)
            started = true
        }
        let isService = unit.type == "service"
        writer.sample(
            1,
            ("name", unit.name),
            ("type", unit.type),
            ("mount_type", isService ? "" : type),
            ("service_type", isService ? type : "")
        )
    }
}

/// `node_systemd_units`: how many units are in each state, over every unit systemd lists (not only
/// the filtered ones); states beyond the usual five (reloading, maintenance) get their own series.
private func writeUnitSummary(_ allUnits: [ListedUnit], into writer: inout MetricWriter) {
    var counts: [String: Int] = [:]
    for unit in allUnits { counts[unit.activeState, default: 0] += 1 }
    writer.family(SystemdFamily.units)
    for state in unitStates { writer.sample(Double(counts[state] ?? 0), ("state", state)) }
    for (state, count) in counts.sorted(by: { $0.key < $1.key }) where !unitStates.contains(state) {
        writer.sample(Double(count), ("state", state))
    }
}

/// Per-unit families with the label sets systemd_exporter uses.
private struct UnitFamilies {
    enum Labels {
        case name
        case nameAndType
    }

    let units: [ListedUnit]
    let properties: [UnitProperties]

    /// Writes the family with a sample for every unit `value` has one for; nothing when it has none.
    func write(
        _ family: MetricFamily,
        _ labels: Labels,
        into writer: inout MetricWriter,
        value: (ListedUnit, UnitProperties) -> Double?
    ) {
        var started = false
        for (unit, properties) in zip(self.units, self.properties) {
            guard let value = value(unit, properties) else { continue }
            if !started {
                writer.family(family)
                started = true
            }
            switch labels {
            case .name: writer.sample(value, ("name", unit.name))
            case .nameAndType: writer.sample(value, ("name", unit.name), ("type", unit.type))
            }
        }
    }
}
