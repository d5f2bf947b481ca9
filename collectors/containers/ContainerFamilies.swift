import VigilCore

/// Writes cAdvisor's container families, each once, with a sample per cgroup that has the figure.
/// `labels` holds each cgroup's rendered base labels, in the same order as `cgroups`; `processes`
/// adds cAdvisor's process metrics.
func writeContainerFamilies(
    _ cgroups: [ScrapedCgroup],
    labels: [RenderedLabels],
    deviceNames: [UInt64: String],
    lastSeen: Double,
    processes: Bool,
    into writer: inout MetricWriter
) {
    let families = FamilyWriter(cgroups: cgroups, labels: labels)
    typealias F = ContainerFamily

    families.single(F.lastSeen, &writer) { _ in lastSeen }

    // CPU
    families.write(
        F.cpuUsage,
        &writer,
        has: { $0.stats.cpuUsage != nil },
        samples: { cgroup, labels, writer in
            writer.sample(cgroup.stats.cpuUsage ?? 0, labels, ("cpu", "total"))
        }
    )
    families.single(F.cpuUser, &writer) { $0.stats.cpuUser }
    families.single(F.cpuSystem, &writer) { $0.stats.cpuSystem }
    families.single(F.cfsPeriods, &writer) { $0.stats.cfsPeriods.map { Double($0) } }
    families.single(F.cfsThrottledPeriods, &writer) { $0.stats.cfsThrottledPeriods.map { Double($0) } }
    families.single(F.cfsThrottledSeconds, &writer) { $0.stats.cfsThrottledSeconds }

    // Memory
    families.single(F.memoryCache, &writer) { $0.stats.memory.map { Double($0.cache) } }
    families.single(F.memoryRSS, &writer) { $0.stats.memory.map { Double($0.rss) } }
    families.single(F.memoryMappedFile, &writer) { $0.stats.memory.map { Double($0.mappedFile) } }
    families.single(F.memorySwap, &writer) { $0.stats.memory.map { Double($0.swap) } }
    families.single(F.memoryFailcnt, &writer) { $0.stats.memory.map { Double($0.failcnt) } }
    families.single(F.memoryUsage, &writer) { $0.stats.memory.map { Double($0.usage) } }
    families.single(F.memoryMaxUsage, &writer) { $0.stats.memory.map { Double($0.maxUsage) } }
    families.single(F.memoryWorkingSet, &writer) { $0.stats.memory.map { Double($0.workingSet) } }
    families.single(F.memoryActiveFile, &writer) { $0.stats.memory.map { Double($0.activeFile) } }
    families.single(F.memoryInactiveFile, &writer) { $0.stats.memory.map { Double($0.inactiveFile) } }
    families.write(
        F.memoryFailures,
        &writer,
        has: { $0.stats.memory != nil },
        samples: { cgroup, labels, writer in
            guard let memory = cgroup.stats.memory else { return }
            writer.sample(Double(memory.pgfault), labels, ("failure_type", "pgfault"), ("scope", "container"))
            writer.sample(Double(memory.pgmajfault), labels, ("failure_type", "pgmajfault"), ("scope", "container"))
            writer.sample(Double(memory.hierarchyPgfault), labels, ("failure_type", "pgfault"), ("scope", "hierarchy"))
            writer.sample(
                Double(memory.hierarchyPgmajfault),
                labels,
                ("failure_type", "pgmajfault"),
                ("scope", "hierarchy")
            )
        }
    )
    families.single(F.oomEvents, &writer) { $0.stats.oomKills.map { Double($0) } }

    // Pressure (v2 files; a hybrid host's unified tree has them too), in microseconds.
    families.single(F.cpuStalled, &writer) { seconds($0.stats.cpuPressure?.full) }
    families.single(F.cpuWaiting, &writer) { seconds($0.stats.cpuPressure?.some) }
    families.single(F.memoryStalled, &writer) { seconds($0.stats.memoryPressure?.full) }
    families.single(F.memoryWaiting, &writer) { seconds($0.stats.memoryPressure?.some) }
    families.single(F.ioStalled, &writer) { seconds($0.stats.ioPressure?.full) }
    families.single(F.ioWaiting, &writer) { seconds($0.stats.ioPressure?.some) }

    // Block IO
    families.write(
        F.blkioDeviceUsage,
        &writer,
        has: { !$0.stats.ioBytes.isEmpty },
        samples: { cgroup, labels, writer in
            for entry in cgroup.stats.ioBytes {
                writer.sample(
                    Double(entry.value),
                    labels,
                    ("device", deviceNames[deviceKey(entry.major, entry.minor)] ?? ""),
                    ("major", Int(entry.major)),
                    ("minor", Int(entry.minor)),
                    ("operation", entry.operation.rawValue)
                )
            }
        }
    )
    // One series per named device: unnamed devices would collide on `device=""`.
    func perDevice(_ family: MetricFamily, _ operation: IOOperation, _ entries: (CgroupStats) -> [IOEntry]) {
        func named(_ entry: IOEntry) -> String? {
            guard entry.operation == operation, let device = deviceNames[deviceKey(entry.major, entry.minor)],
                !device.isEmpty
            else { return nil }
            return device
        }
        families.write(
            family,
            &writer,
            has: { entries($0.stats).contains { named($0) != nil } },
            samples: { cgroup, labels, writer in
                for entry in entries(cgroup.stats) {
                    if let device = named(entry) { writer.sample(Double(entry.value), labels, ("device", device)) }
                }
            }
        )
    }
    perDevice(F.fsReadsBytes, .read) { $0.ioBytes }
    perDevice(F.fsReads, .read) { $0.ioOperations }
    perDevice(F.fsWritesBytes, .write) { $0.ioBytes }
    perDevice(F.fsWrites, .write) { $0.ioOperations }

    // Processes (cAdvisor's `process` set)
    if processes {
        families.single(F.processes, &writer) { $0.stats.processes.map { Double($0) } }
        families.single(F.threads, &writer) { $0.stats.threads.map { Double($0) } }
        families.single(F.threadsMax, &writer) { $0.stats.spec.threadsMax.map { $0 == .max ? 0 : Double($0) } }
    }

    // Limits
    families.single(F.specCPUPeriod, &writer) { $0.stats.spec.cpuPeriod.map { Double($0) } }
    families.single(F.specCPUQuota, &writer) { $0.stats.spec.cpuQuota.map { Double($0) } }
    families.single(F.specCPUShares, &writer) { $0.stats.spec.cpuShares.map { Double($0) } }
    families.single(F.specMemoryLimit, &writer) { $0.stats.spec.memoryLimit.map(specMemoryValue) }
    families.single(F.specMemorySwapLimit, &writer) { $0.stats.spec.memorySwapLimit.map(specMemoryValue) }
    families.single(F.specMemoryReservation, &writer) { $0.stats.spec.memoryReservation.map(specMemoryValue) }

    // Network
    func network(_ family: MetricFamily, _ counter: (InterfaceCounters) -> UInt64) {
        families.write(
            family,
            &writer,
            has: { !$0.interfaces.isEmpty },
            samples: { cgroup, labels, writer in
                for interface in cgroup.interfaces {
                    writer.sample(Double(counter(interface)), labels, ("interface", interface.name))
                }
            }
        )
    }
    network(F.receiveBytes) { $0.receiveBytes }
    network(F.receivePackets) { $0.receivePackets }
    network(F.receiveDropped) { $0.receiveDropped }
    network(F.receiveErrors) { $0.receiveErrors }
    network(F.transmitBytes) { $0.transmitBytes }
    network(F.transmitPackets) { $0.transmitPackets }
    network(F.transmitDropped) { $0.transmitDropped }
    network(F.transmitErrors) { $0.transmitErrors }
}

/// PSI totals are microseconds.
private func seconds(_ microseconds: UInt64?) -> Double? {
    microseconds.map { Double($0) / 1e6 }
}

/// Writes one family across all cgroups, leaving out families no cgroup has.
private struct FamilyWriter {
    let cgroups: [ScrapedCgroup]
    let labels: [RenderedLabels]

    /// A family with one sample per cgroup, where `value` is not nil.
    func single(_ family: MetricFamily, _ writer: inout MetricWriter, _ value: (ScrapedCgroup) -> Double?) {
        var declared = false
        for index in self.cgroups.indices {
            guard let sample = value(self.cgroups[index]) else { continue }
            if !declared {
                writer.family(family)
                declared = true
            }
            writer.sample(sample, self.labels[index])
        }
    }

    /// A family whose samples `body` writes (extra labels, several samples) for each cgroup that
    /// `has` them.
    func write(
        _ family: MetricFamily,
        _ writer: inout MetricWriter,
        has: (ScrapedCgroup) -> Bool,
        samples body: (ScrapedCgroup, RenderedLabels, inout MetricWriter) -> Void
    ) {
        var declared = false
        for index in self.cgroups.indices where has(self.cgroups[index]) {
            if !declared {
                writer.family(family)
                declared = true
            }
            body(self.cgroups[index], self.labels[index], &writer)
        }
    }
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
