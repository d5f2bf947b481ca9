import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// `vigil_build_info`: the version this agent runs, for fleet-wide rollout dashboards.
struct BuildInfo: MetricSource {
    func write(into writer: inout MetricWriter) {
        writer.family(
            "vigil_build_info",
            help: "A metric with a constant '1' value labeled by version and the Swift version vigil was built with.",
            type: .gauge
        )
        writer.sample(1, ("version", vigilVersion), ("swiftversion", swiftVersion))
    }
}

#if compiler(>=6.3)
private let swiftVersion = "6.3"
#elseif compiler(>=6.2)
private let swiftVersion = "6.2"
#else
private let swiftVersion = "6.1"
#endif

/// The standard `process_*` families about vigil's own process (the names every Prometheus client
/// library exports), so that the agent's footprint can be watched on every node.
struct ProcessMetrics: MetricSource {
    private let startTime: Double = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }()
    private let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
    private let statm = KeptOpenFile("/proc/self/statm", end: .shortRead)
    /// Kept open: `fstat` on it counts the descriptors without looking the path up again (it counts
    /// itself, as node_exporter's count includes the descriptor it lists the directory with).
    private let descriptors = KeptOpenFile("/proc/self/fd")

    func write(into writer: inout MetricWriter) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        writer.family(cpuSeconds, onlySample: cpu)
        if let statm = try? FileReader(capacity: 256).read(self.statm) {
            var fields = statm.fields
            let size = fields.next()?.parseUInt64()
            let resident = fields.next()?.parseUInt64()
            if let size, let resident {
                writer.family(residentMemory, onlySample: Double(resident) * self.pageSize)
                writer.family(virtualMemory, onlySample: Double(size) * self.pageSize)
            }
        }
        if let fds = self.openDescriptors() {
            writer.family(openFDs, onlySample: Double(fds))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            writer.family(maxFDs, onlySample: Double(limit.rlim_cur))
        }
        writer.family(startTimeSeconds, onlySample: self.startTime)
    }

    /// How many descriptors vigil has open. Linux 6.2 and later give the number as the size of
    /// /proc/self/fd: one `fstat` instead of listing the hundred-odd files vigil keeps open (and a
    /// dentry lookup for each); older kernels give 0 there, and the directory is listed.
    func openDescriptors() -> Int? {
        if let size = self.descriptors.size(), size > 0 { return size }
        return (try? FileSystem.entryCount(of: "/proc/self/fd")).map { $0 - 1 }  // minus the one listing them
    }
}

private let cpuSeconds = MetricFamily(
    "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    type: .counter
)
private let residentMemory = MetricFamily(
    "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    type: .gauge
)
private let virtualMemory = MetricFamily(
    "process_virtual_memory_bytes",
    help: "Virtual memory size in bytes.",
    type: .gauge
)
private let openFDs = MetricFamily("process_open_fds", help: "Number of open file descriptors.", type: .gauge)
private let maxFDs = MetricFamily("process_max_fds", help: "Maximum number of open file descriptors.", type: .gauge)
private let startTimeSeconds = MetricFamily(
    "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds.",
    type: .gauge
)
