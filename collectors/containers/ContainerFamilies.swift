import VigilCore

/// One cgroup's figures and base labels as the families write them: what one scrape read, apart from
/// what the collector keeps between scrapes (a class: each family passes over it).
final class ContainerRow: Sendable {
    let stats: CgroupStats
    let interfaces: [InterfaceCounters]
    let labels: RenderedLabels

    init(stats: CgroupStats, interfaces: [InterfaceCounters], labels: RenderedLabels) {
        self.stats = stats
        self.interfaces = interfaces
        self.labels = labels
    }
}

/// cAdvisor's container families over the cgroups of one scrape, each family once with a sample per
/// cgroup that has the figure (a family no cgroup has is left out), written a chunk at a time while
/// the response is sent.
struct ContainerExposition: StreamedFamilies {
    /// One family: whether a cgroup has samples in it, and its samples.
    struct Family: Sendable {
        let family: MetricFamily
        let has: @Sendable (ContainerRow) -> Bool
        let samples: @Sendable (ContainerRow, inout MetricWriter) -> Void

        /// A family with one sample per cgroup, where `value` is not nil. `value` reads the row's figure
        /// in place: a closure given `row.stats` would get a copy of all of them, for every cgroup and family.
        static func single(_ family: MetricFamily, _ value: @escaping @Sendable (ContainerRow) -> Double?) -> Family {
            Family(
                family: family,
                has: { value($0) != nil },
                samples: { row, writer in
                    if let sample = value(row) { writer.sample(sample, row.labels) }
                }
            )
        }
    }

    let rows: [ContainerRow]
    let plan: [Family]
    /// Where writing goes on: the family, the cgroup, and whether the family's header is written.
    private var next = (family: 0, row: 0, declared: false)

    /// - Parameter processes: adds cAdvisor's process metrics.
    init(rows: [ContainerRow], deviceNames: [UInt64: String], lastSeen: Double, processes: Bool) {
        self.rows = rows
        self.plan = containerFamilies(deviceNames: deviceNames, lastSeen: lastSeen, processes: processes)
    }

    var families: [MetricFamily] { self.plan.map(\.family) }

    mutating func write(into writer: inout MetricWriter, until limit: Int) -> Bool {
        while self.next.family < self.plan.count {
            let family = self.plan[self.next.family]
            while self.next.row < self.rows.count {
                guard writer.count < limit else { return false }
                let row = self.rows[self.next.row]
                self.next.row += 1
                guard family.has(row) else { continue }
                if !self.next.declared {
                    writer.family(family.family)
                    self.next.declared = true
                }
                family.samples(row, &writer)
            }
            self.next = (self.next.family + 1, 0, false)
        }
        return true
    }
}

/// cAdvisor's container families in the order they are written.
private func containerFamilies(
    deviceNames: [UInt64: String],
    lastSeen: Double,
    processes: Bool
) -> [ContainerExposition.Family] {
    typealias F = ContainerFamily
    typealias Family = ContainerExposition.Family
    var plan: [Family] = [
        .single(F.lastSeen) { _ in lastSeen },

        // CPU
        Family(
            family: F.cpuUsage,
            has: { $0.stats.cpuUsage != nil },
            samples: { row, writer in
                writer.sample(row.stats.cpuUsage ?? 0, row.labels, ("cpu", "total"))
            }
        ),
        .single(F.cpuUser) { $0.stats.cpuUser },
        .single(F.cpuSystem) { $0.stats.cpuSystem },
        .single(F.cfsPeriods) { $0.stats.cfsPeriods.map { Double($0) } },
        .single(F.cfsThrottledPeriods) { $0.stats.cfsThrottledPeriods.map { Double($0) } },
        .single(F.cfsThrottledSeconds) { $0.stats.cfsThrottledSeconds },

        // Memory
        .single(F.memoryCache) { $0.stats.memory.map { Double($0.cache) } },
        .single(F.memoryRSS) { $0.stats.memory.map { Double($0.rss) } },
        .single(F.memoryMappedFile) { $0.stats.memory.map { Double($0.mappedFile) } },
        .single(F.memorySwap) { $0.stats.memory.map { Double($0.swap) } },
        .single(F.memoryFailcnt) { $0.stats.memory.map { Double($0.failcnt) } },
        .single(F.memoryUsage) { $0.stats.memory.map { Double($0.usage) } },
        .single(F.memoryMaxUsage) { $0.stats.memory.map { Double($0.maxUsage) } },
        .single(F.memoryWorkingSet) { $0.stats.memory.map { Double($0.workingSet) } },
        .single(F.memoryActiveFile) { $0.stats.memory.map { Double($0.activeFile) } },
        .single(F.memoryInactiveFile) { $0.stats.memory.map { Double($0.inactiveFile) } },
        Family(
            family: F.memoryFailures,
            has: { $0.stats.memory != nil },
            samples: { row, writer in
                guard let memory = row.stats.memory else { return }
                let labels = row.labels
                writer.sample(Double(memory.pgfault), labels, ("failure_type", "pgfault"), ("scope", "container"))
                writer.sample(Double(memory.pgmajfault), labels, ("failure_type", "pgmajfault"), ("scope", "container"))
                writer.sample(
                    Double(memory.hierarchyPgfault),
                    labels,
                    ("failure_type", "pgfault"),
                    ("scope", "hierarchy")
                )
                writer.sample(
                    Double(memory.hierarchyPgmajfault),
                    labels,
                    ("failure_type", "pgmajfault"),
                    ("scope", "hierarchy")
                )
            }
        ),
        .single(F.oomEvents) { $0.stats.oomKills.map { Double($0) } },

        // Pressure (v2 files; a hybrid host's unified tree has them too), in microseconds.
        .single(F.cpuStalled) { seconds($0.stats.cpuPressure?.full) },
        .single(F.cpuWaiting) { seconds($0.stats.cpuPressure?.some) },
        .single(F.memoryStalled) { seconds($0.stats.memoryPressure?.full) },
        .single(F.memoryWaiting) { seconds($0.stats.memoryPressure?.some) },
        .single(F.ioStalled) { seconds($0.stats.ioPressure?.full) },
        .single(F.ioWaiting) { seconds($0.stats.ioPressure?.some) },

        // Block IO
        Family(
            family: F.blkioDeviceUsage,
            has: { !$0.stats.ioBytes.isEmpty },
            samples: { row, writer in
                for entry in row.stats.ioBytes {
                    writer.sample(
                        Double(entry.value),
                        row.labels,
                        ("device", deviceNames[deviceKey(entry.major, entry.minor)] ?? ""),
                        ("major", Int(entry.major)),
                        ("minor", Int(entry.minor)),
                        ("operation", entry.operation.rawValue)
                    )
                }
            }
        ),
    ]
    // One series per named device: unnamed devices would collide on `device=""`.
    func perDevice(
        _ family: MetricFamily,
        _ operation: IOOperation,
        _ entries: @escaping @Sendable (CgroupStats) -> [IOEntry]
    ) -> Family {
        @Sendable func named(_ entry: IOEntry) -> String? {
            guard entry.operation == operation, let device = deviceNames[deviceKey(entry.major, entry.minor)],
                !device.isEmpty
            else { return nil }
            return device
        }
        return Family(
            family: family,
            has: { entries($0.stats).contains { named($0) != nil } },
            samples: { row, writer in
                for entry in entries(row.stats) {
                    if let device = named(entry) { writer.sample(Double(entry.value), row.labels, ("device", device)) }
                }
            }
        )
    }
    plan += [
        perDevice(F.fsReadsBytes, .read) { $0.ioBytes },
        perDevice(F.fsReads, .read) { $0.ioOperations },
        perDevice(F.fsWritesBytes, .write) { $0.ioBytes },
        perDevice(F.fsWrites, .write) { $0.ioOperations },
    ]

    // Processes (cAdvisor's `process` set)
    if processes {
        plan += [
            .single(F.processes) { $0.stats.processes.map { Double($0) } },
            .single(F.threads) { $0.stats.threads.map { Double($0) } },
            .single(F.threadsMax) { $0.stats.spec.threadsMax.map { $0 == .max ? 0 : Double($0) } },
        ]
    }

    // Limits
    plan += [
        .single(F.specCPUPeriod) { $0.stats.spec.cpuPeriod.map { Double($0) } },
        .single(F.specCPUQuota) { $0.stats.spec.cpuQuota.map { Double($0) } },
        .single(F.specCPUShares) { $0.stats.spec.cpuShares.map { Double($0) } },
        .single(F.specMemoryLimit) { $0.stats.spec.memoryLimit.map(specMemoryValue) },
        .single(F.specMemorySwapLimit) { $0.stats.spec.memorySwapLimit.map(specMemoryValue) },
        .single(F.specMemoryReservation) { $0.stats.spec.memoryReservation.map(specMemoryValue) },
    ]

    // Network
    func network(_ family: MetricFamily, _ counter: @escaping @Sendable (InterfaceCounters) -> UInt64) -> Family {
        Family(
            family: family,
            has: { !$0.interfaces.isEmpty },
            samples: { row, writer in
                for interface in row.interfaces {
                    writer.sample(Double(counter(interface)), row.labels, ("interface", interface.name))
                }
            }
        )
    }
    plan += [
        network(F.receiveBytes) { $0.receiveBytes },
        network(F.receivePackets) { $0.receivePackets },
        network(F.receiveDropped) { $0.receiveDropped },
        network(F.receiveErrors) { $0.receiveErrors },
        network(F.transmitBytes) { $0.transmitBytes },
        network(F.transmitPackets) { $0.transmitPackets },
        network(F.transmitDropped) { $0.transmitDropped },
        network(F.transmitErrors) { $0.transmitErrors },
    ]
    return plan
}

/// PSI totals are microseconds.
private func seconds(_ microseconds: UInt64?) -> Double? {
    microseconds.map { Double($0) / 1e6 }
}

/// cAdvisor's container families, rendered once.
private enum ContainerFamily {
    static let lastSeen = MetricFamily(
        "container_last_seen",
        help: "Last time a container was seen by the exporter",
        type: .gauge
    )

    static let cpuUsage = MetricFamily(
        "container_cpu_usage_seconds_total",
        help: "Cumulative cpu time consumed in seconds.",
        type: .counter
    )
    static let cpuUser = MetricFamily(
        "container_cpu_user_seconds_total",
        help: "Cumulative user cpu time consumed in seconds.",
        type: .counter
    )
    static let cpuSystem = MetricFamily(
        "container_cpu_system_seconds_total",
        help: "Cumulative system cpu time consumed in seconds.",
        type: .counter
    )
    static let cfsPeriods = MetricFamily(
        "container_cpu_cfs_periods_total",
        help: "Number of elapsed enforcement period intervals.",
        type: .counter
    )
    static let cfsThrottledPeriods = MetricFamily(
        "container_cpu_cfs_throttled_periods_total",
        help: "Number of throttled period intervals.",
        type: .counter
    )
    static let cfsThrottledSeconds = MetricFamily(
        "container_cpu_cfs_throttled_seconds_total",
        help: "Total time duration the container has been throttled.",
        type: .counter
    )

    static let memoryCache = MetricFamily(
        "container_memory_cache",
        help: "Number of bytes of page cache memory.",
        type: .gauge
    )
    static let memoryRSS = MetricFamily("container_memory_rss", help: "Size of RSS in bytes.", type: .gauge)
    static let memoryMappedFile = MetricFamily(
        "container_memory_mapped_file",
        help: "Size of memory mapped files in bytes.",
        type: .gauge
    )
    static let memorySwap = MetricFamily("container_memory_swap", help: "Container swap usage in bytes.", type: .gauge)
    static let memoryFailcnt = MetricFamily(
        "container_memory_failcnt",
        help: "Number of memory usage hits limits",
        type: .counter
    )
    static let memoryUsage = MetricFamily(
        "container_memory_usage_bytes",
        help: "Current memory usage in bytes, including all memory regardless of when it was accessed",
        type: .gauge
    )
    static let memoryMaxUsage = MetricFamily(
        "container_memory_max_usage_bytes",
        help: "Maximum memory usage recorded in bytes",
        type: .gauge
    )
    static let memoryWorkingSet = MetricFamily(
        "container_memory_working_set_bytes",
        help: "Current working set in bytes.",
        type: .gauge
    )
    static let memoryActiveFile = MetricFamily(
        "container_memory_total_active_file_bytes",
        help: "Current total active file in bytes.",
        type: .gauge
    )
    static let memoryInactiveFile = MetricFamily(
        "container_memory_total_inactive_file_bytes",
        help: "Current total inactive file in bytes.",
        type: .gauge
    )
    static let memoryFailures = MetricFamily(
        "container_memory_failures_total",
        help: "Cumulative count of memory allocation failures.",
        type: .counter
    )
    static let oomEvents = MetricFamily(
        "container_oom_events_total",
        help: "Count of out of memory events observed for the container",
        type: .counter
    )

    static let cpuStalled = MetricFamily(
        "container_pressure_cpu_stalled_seconds_total",
        help: "Total time duration no tasks in the container could make progress due to CPU congestion.",
        type: .counter
    )
    static let cpuWaiting = MetricFamily(
        "container_pressure_cpu_waiting_seconds_total",
        help: "Total time duration tasks in the container have waited due to CPU congestion.",
        type: .counter
    )
    static let memoryStalled = MetricFamily(
        "container_pressure_memory_stalled_seconds_total",
        help: "Total time duration no tasks in the container could make progress due to memory congestion.",
        type: .counter
    )
    static let memoryWaiting = MetricFamily(
        "container_pressure_memory_waiting_seconds_total",
        help: "Total time duration tasks in the container have waited due to memory congestion.",
        type: .counter
    )
    static let ioStalled = MetricFamily(
        "container_pressure_io_stalled_seconds_total",
        help: "Total time duration no tasks in the container could make progress due to IO congestion.",
        type: .counter
    )
    static let ioWaiting = MetricFamily(
        "container_pressure_io_waiting_seconds_total",
        help: "Total time duration tasks in the container have waited due to IO congestion.",
        type: .counter
    )

    static let blkioDeviceUsage = MetricFamily(
        "container_blkio_device_usage_total",
        help: "Blkio Device bytes usage",
        type: .counter
    )
    static let fsReadsBytes = MetricFamily(
        "container_fs_reads_bytes_total",
        help: "Cumulative count of bytes read",
        type: .counter
    )
    static let fsReads = MetricFamily(
        "container_fs_reads_total",
        help: "Cumulative count of reads completed",
        type: .counter
    )
    static let fsWritesBytes = MetricFamily(
        "container_fs_writes_bytes_total",
        help: "Cumulative count of bytes written",
        type: .counter
    )
    static let fsWrites = MetricFamily(
        "container_fs_writes_total",
        help: "Cumulative count of writes completed",
        type: .counter
    )

    static let processes = MetricFamily(
        "container_processes",
        help: "Number of processes running inside the container.",
        type: .gauge
    )
    static let threads = MetricFamily(
        "container_threads",
        help: "Number of threads running inside the container",
        type: .gauge
    )
    static let threadsMax = MetricFamily(
        "container_threads_max",
        help: "Maximum number of threads allowed inside the container, infinity if value is zero",
        type: .gauge
    )

    static let specCPUPeriod = MetricFamily(
        "container_spec_cpu_period",
        help: "CPU period of the container.",
        type: .gauge
    )
    static let specCPUQuota = MetricFamily(
        "container_spec_cpu_quota",
        help: "CPU quota of the container.",
        type: .gauge
    )
    static let specCPUShares = MetricFamily(
        "container_spec_cpu_shares",
        help: "CPU share of the container.",
        type: .gauge
    )
    static let specMemoryLimit = MetricFamily(
        "container_spec_memory_limit_bytes",
        help: "Memory limit for the container.",
        type: .gauge
    )
    static let specMemorySwapLimit = MetricFamily(
        "container_spec_memory_swap_limit_bytes",
        help: "Memory swap limit for the container.",
        type: .gauge
    )
    static let specMemoryReservation = MetricFamily(
        "container_spec_memory_reservation_limit_bytes",
        help: "Memory reservation limit for the container.",
        type: .gauge
    )

    static let receiveBytes = MetricFamily(
        "container_network_receive_bytes_total",
        help: "Cumulative count of bytes received",
        type: .counter
    )
    static let receivePackets = MetricFamily(
        "container_network_receive_packets_total",
        help: "Cumulative count of packets received",
        type: .counter
    )
    static let receiveDropped = MetricFamily(
        "container_network_receive_packets_dropped_total",
        help: "Cumulative count of packets dropped while receiving",
        type: .counter
    )
    static let receiveErrors = MetricFamily(
        "container_network_receive_errors_total",
        help: "Cumulative count of errors encountered while receiving",
        type: .counter
    )
    static let transmitBytes = MetricFamily(
        "container_network_transmit_bytes_total",
        help: "Cumulative count of bytes transmitted",
        type: .counter
    )
    static let transmitPackets = MetricFamily(
        "container_network_transmit_packets_total",
        help: "Cumulative count of packets transmitted",
        type: .counter
    )
    static let transmitDropped = MetricFamily(
        "container_network_transmit_packets_dropped_total",
        help: "Cumulative count of packets dropped while transmitting",
        type: .counter
    )
    static let transmitErrors = MetricFamily(
        "container_network_transmit_errors_total",
        help: "Cumulative count of errors encountered while transmitting",
        type: .counter
    )
}
