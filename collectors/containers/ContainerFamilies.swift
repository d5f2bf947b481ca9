import VigilCore

/// Writes cAdvisor's container families, each once, with a sample per cgroup that has the figure.
/// `labels` holds each cgroup's rendered base labels, in the same order as `cgroups`.
func writeContainerFamilies(
    _ cgroups: [ScrapedCgroup],
    labels: [RenderedLabels],
    deviceNames: [UInt64: String],
    lastSeen: Double,
    into writer: inout MetricWriter
) {
    var families = FamilyWriter(cgroups: cgroups, labels: labels)

    families.gauge("container_last_seen", "Last time a container was seen by the exporter", &writer) { _ in lastSeen }

    // CPU
    families.write(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
        .counter,
        &writer,
        has: { $0.stats.cpuUsage != nil },
        samples: { cgroup, labels, writer in
            writer.sample(cgroup.stats.cpuUsage ?? 0, labels, ("cpu", "total"))
        }
    )
    families.counter("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", &writer) {
        $0.stats.cpuUser
    }
    families.counter("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", &writer) {
        $0.stats.cpuSystem
    }
    families.counter("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", &writer) {
        $0.stats.cfsPeriods.map { Double($0) }
    }
    families.counter("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", &writer) {
        $0.stats.cfsThrottledPeriods.map { Double($0) }
    }
    families.counter(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
        &writer
    ) { $0.stats.cfsThrottledSeconds }

    // Memory
    families.gauge("container_memory_cache", "Number of bytes of page cache memory.", &writer) {
        $0.stats.memory.map { Double($0.cache) }
    }
    families.gauge("container_memory_rss", "Size of RSS in bytes.", &writer) { $0.stats.memory.map { Double($0.rss) } }
    families.gauge("container_memory_mapped_file", "Size of memory mapped files in bytes.", &writer) {
        $0.stats.memory.map { Double($0.mappedFile) }
    }
    families.gauge("container_memory_swap", "Container swap usage in bytes.", &writer) {
        $0.stats.memory.map { Double($0.swap) }
    }
    families.counter("container_memory_failcnt", "Number of memory usage hits limits", &writer) {
        $0.stats.memory.map { Double($0.failcnt) }
    }
    families.gauge(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        &writer
    ) { $0.stats.memory.map { Double($0.usage) } }
    families.gauge("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", &writer) {
        $0.stats.memory.map { Double($0.maxUsage) }
    }
    families.gauge("container_memory_working_set_bytes", "Current working set in bytes.", &writer) {
        $0.stats.memory.map { Double($0.workingSet) }
    }
    families.gauge("container_memory_total_active_file_bytes", "Current total active file in bytes.", &writer) {
        $0.stats.memory.map { Double($0.activeFile) }
    }
    families.gauge("container_memory_total_inactive_file_bytes", "Current total inactive file in bytes.", &writer) {
        $0.stats.memory.map { Double($0.inactiveFile) }
    }
    families.write(
        "container_memory_failures_total",
        "Cumulative count of memory allocation failures.",
        .counter,
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
    families.counter("container_oom_events_total", "Count of out of memory events observed for the container", &writer)
    {
        $0.stats.oomKills.map { Double($0) }
    }

    // Pressure (v2 files; a hybrid host's unified tree has them too)
    let pressures: [(String, String, KeyPath<CgroupStats, PressureTotals?>, KeyPath<PressureTotals, UInt64?>)] = [
        (
            "container_pressure_cpu_stalled_seconds_total",
            "Total time duration no tasks in the container could make progress due to CPU congestion.",
            \.cpuPressure, \.full
        ),
        (
            "container_pressure_cpu_waiting_seconds_total",
            "Total time duration tasks in the container have waited due to CPU congestion.",
            \.cpuPressure, \.some
        ),
        (
            "container_pressure_memory_stalled_seconds_total",
            "Total time duration no tasks in the container could make progress due to memory congestion.",
            \.memoryPressure, \.full
        ),
        (
            "container_pressure_memory_waiting_seconds_total",
            "Total time duration tasks in the container have waited due to memory congestion.",
            \.memoryPressure, \.some
        ),
        (
            "container_pressure_io_stalled_seconds_total",
            "Total time duration no tasks in the container could make progress due to IO congestion.",
            \.ioPressure, \.full
        ),
        (
            "container_pressure_io_waiting_seconds_total",
            "Total time duration tasks in the container have waited due to IO congestion.",
            \.ioPressure, \.some
        ),
    ]
    for (name, help, file, line) in pressures {
        families.counter(name, help, &writer) { cgroup in
            cgroup.stats[keyPath: file]?[keyPath: line].map { Double($0) / 1e6 }
        }
    }

    // Block IO
    families.write(
        "container_blkio_device_usage_total",
        "Blkio Device bytes usage",
        .counter,
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
    let perDevice: [(String, String, KeyPath<CgroupStats, [IOEntry]>, IOOperation)] = [
        ("container_fs_reads_bytes_total", "Cumulative count of bytes read", \.ioBytes, .read),
        ("container_fs_reads_total", "Cumulative count of reads completed", \.ioOperations, .read),
        ("container_fs_writes_bytes_total", "Cumulative count of bytes written", \.ioBytes, .write),
        ("container_fs_writes_total", "Cumulative count of writes completed", \.ioOperations, .write),
    ]
    for (name, help, entries, operation) in perDevice {
        // One series per named device: unnamed devices would collide on `device=""`.
        func named(_ entry: IOEntry) -> String? {
            guard entry.operation == operation, let device = deviceNames[deviceKey(entry.major, entry.minor)],
                !device.isEmpty
            else { return nil }
            return device
        }
        families.write(
            name,
            help,
            .counter,
            &writer,
            has: { $0.stats[keyPath: entries].contains { named($0) != nil } },
            samples: { cgroup, labels, writer in
                for entry in cgroup.stats[keyPath: entries] {
                    if let device = named(entry) { writer.sample(Double(entry.value), labels, ("device", device)) }
                }
            }
        )
    }

    // Processes
    families.gauge("container_processes", "Number of processes running inside the container.", &writer) {
        $0.stats.processes.map { Double($0) }
    }
    families.gauge("container_threads", "Number of threads running inside the container", &writer) {
        $0.stats.threads.map { Double($0) }
    }
    families.gauge(
        "container_threads_max",
        "Maximum number of threads allowed inside the container, infinity if value is zero",
        &writer
    ) { cgroup in
        cgroup.stats.spec.threadsMax.map { $0 == .max ? 0 : Double($0) }
    }

    // Limits
    families.gauge("container_spec_cpu_period", "CPU period of the container.", &writer) {
        $0.stats.spec.cpuPeriod.map { Double($0) }
    }
    families.gauge("container_spec_cpu_quota", "CPU quota of the container.", &writer) {
        $0.stats.spec.cpuQuota.map { Double($0) }
    }
    families.gauge("container_spec_cpu_shares", "CPU share of the container.", &writer) {
        $0.stats.spec.cpuShares.map { Double($0) }
    }
    families.gauge("container_spec_memory_limit_bytes", "Memory limit for the container.", &writer) {
        $0.stats.spec.memoryLimit.map(specMemoryValue)
    }
    families.gauge("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", &writer) {
        $0.stats.spec.memorySwapLimit.map(specMemoryValue)
    }
    families.gauge(
        "container_spec_memory_reservation_limit_bytes",
        "Memory reservation limit for the container.",
        &writer
    ) { $0.stats.spec.memoryReservation.map(specMemoryValue) }

    // Network
    let network: [(String, String, KeyPath<InterfaceCounters, UInt64>)] = [
        ("container_network_receive_bytes_total", "Cumulative count of bytes received", \.receiveBytes),
        ("container_network_receive_packets_total", "Cumulative count of packets received", \.receivePackets),
        (
            "container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving",
            \.receiveDropped
        ),
        (
            "container_network_receive_errors_total", "Cumulative count of errors encountered while receiving",
            \.receiveErrors
        ),
        ("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", \.transmitBytes),
        ("container_network_transmit_packets_total", "Cumulative count of packets transmitted", \.transmitPackets),
        (
            "container_network_transmit_packets_dropped_total",
            "Cumulative count of packets dropped while transmitting", \.transmitDropped
        ),
        (
            "container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting",
            \.transmitErrors
        ),
    ]
    for (name, help, counter) in network {
        families.write(
            name,
            help,
            .counter,
            &writer,
            has: { !$0.interfaces.isEmpty },
            samples: { cgroup, labels, writer in
                for interface in cgroup.interfaces {
                    writer.sample(Double(interface[keyPath: counter]), labels, ("interface", interface.name))
                }
            }
        )
    }
}

/// Writes one family across all cgroups, leaving out families no cgroup has.
private struct FamilyWriter {
    let cgroups: [ScrapedCgroup]
    let labels: [RenderedLabels]

    /// A family with one sample per cgroup, where `value` is not nil.
    mutating func gauge(
        _ name: String,
        _ help: String,
        _ writer: inout MetricWriter,
        _ value: (ScrapedCgroup) -> Double?
    ) {
        self.single(name, help, .gauge, &writer, value)
    }

    mutating func counter(
        _ name: String,
        _ help: String,
        _ writer: inout MetricWriter,
        _ value: (ScrapedCgroup) -> Double?
    ) {
        self.single(name, help, .counter, &writer, value)
    }

    private mutating func single(
        _ name: String,
        _ help: String,
        _ type: MetricType,
        _ writer: inout MetricWriter,
        _ value: (ScrapedCgroup) -> Double?
    ) {
        var declared = false
        for index in self.cgroups.indices {
            guard let sample = value(self.cgroups[index]) else { continue }
            if !declared {
                writer.family(name, help: help, type: type)
                declared = true
            }
            writer.sample(sample, self.labels[index])
        }
    }

    /// A family whose samples `body` writes (extra labels, several samples) for each cgroup that
    /// `has` them.
    mutating func write(
        _ name: String,
        _ help: String,
        _ type: MetricType,
        _ writer: inout MetricWriter,
        has: (ScrapedCgroup) -> Bool,
        samples body: (ScrapedCgroup, RenderedLabels, inout MetricWriter) -> Void
    ) {
        var declared = false
        for index in self.cgroups.indices where has(self.cgroups[index]) {
            if !declared {
                writer.family(name, help: help, type: type)
                declared = true
            }
            body(self.cgroups[index], self.labels[index], &writer)
        }
    }
}
