import Collectors
import VigilCore

/// The agent's own settings (web, paths, logging), with node_exporter's flag names and defaults.
enum AgentOption {
    static let configFile = "config.file"
    static let listenAddress = "web.listen-address"
    static let telemetryPath = "web.telemetry-path"
    static let maxRequests = "web.max-requests"
    static let disableExporterMetrics = "web.disable-exporter-metrics"
    static let procfs = "path.procfs"
    static let sysfs = "path.sysfs"
    static let rootfs = "path.rootfs"
    static let udevData = "path.udev.data"
    static let disableDefaults = "collector.disable-defaults"
    static let collectorTimeout = "collector.timeout"
    static let logLevel = "log.level"
    static let logFormat = "log.format"
    static let gomaxprocs = "runtime.gomaxprocs"
    static let forwardTarget = "forward.target"
    static let journalDryRun = "journal.dry-run"

    static let specs: [OptionSpec] = [
        OptionSpec(configFile, .string(""), help: "vigil's YAML configuration file (settings as in these flags)."),
        OptionSpec(
            listenAddress,
            .strings([":9100"]),
            help: "Addresses on which to expose metrics and the web interface. Repeatable."
        ),
        OptionSpec(telemetryPath, .string("/metrics"), help: "Path under which to expose metrics."),
        OptionSpec(
            maxRequests,
            .integer(40),
            help: "Maximum number of parallel scrape requests. Use 0 to disable."
        ),
        OptionSpec(
            disableExporterMetrics,
            .bool(false),
            help: "Exclude metrics about the exporter itself (process_*, vigil_http_*)."
        ),
        OptionSpec(procfs, .string("/proc"), help: "procfs mountpoint."),
        OptionSpec(sysfs, .string("/sys"), help: "sysfs mountpoint."),
        OptionSpec(rootfs, .string("/"), help: "rootfs mountpoint."),
        OptionSpec(udevData, .string("/run/udev/data"), help: "udev data path."),
        OptionSpec(
            disableDefaults,
            .bool(false),
            help: "Set all collectors to disabled by default; enable them one by one with --collector.NAME."
        ),
        OptionSpec(
            collectorTimeout,
            .duration(.seconds(9)),
            help:
                "How long a scrape waits for its collectors; a collector still running then is reported failed. Prometheus' scrape timeout header lowers it."
        ),
        OptionSpec(
            logLevel,
            .string("info"),
            help: "Only log messages with the given severity or above: debug, info, warn, error."
        ),
        OptionSpec(logFormat, .string("logfmt"), help: "Output format of log messages: logfmt or json."),
        OptionSpec(
            forwardTarget,
            .strings([]),
            help:
                "Forward the journal to this Fluentd forward-protocol receiver, HOST:PORT (port 24224 when omitted). Repeatable; replaces forward.targets of the configuration file. Without a target vigil forwards nothing."
        ),
        OptionSpec(
            journalDryRun,
            .bool(false),
            help:
                "Print the records the journal forwarder would send, as JSON lines on standard output, instead of sending them (for setting up filters); the cursor file is neither read nor written."
        ),
        OptionSpec(
            gomaxprocs,
            .integer(1),
            help:
                "The number of CPUs scrapes run on: vigil's event loop and collector threads are kept on the first N of the CPUs it may use. 1 (node_exporter's default) keeps a scrape's hand-overs between them on one CPU, which then wakes no other; 0 leaves them where the kernel puts them."
        ),
    ]

    /// Every setting vigil declares: the agent's and every collector's.
    static var allSpecs: [OptionSpec] { specs + CollectorCatalog.options }
}

/// node_exporter flags that vigil accepts so that existing units and scripts keep working, although it
/// does not implement what they control.
enum NodeExporterCompatibility {
    /// node_exporter's collectors (1.5 to 1.12). `--collector.X` for one vigil lacks is accepted with a
    /// warning; `--no-collector.X` is accepted silently (it is off anyway).
    static let collectors: Set<String> = [
        "arp", "bcache", "bcachefs", "bonding", "btrfs", "buddyinfo", "cgroups", "conntrack", "cpu",
        "cpu_vulnerabilities", "cpufreq", "diskstats", "dmi", "dmmultipath", "drbd", "drm", "edac", "entropy",
        "ethtool", "fibrechannel", "filefd", "filesystem", "hwmon", "infiniband", "interrupts", "ipvs",
        "kernel_hung", "ksmd", "lnstat", "loadavg", "logind", "mdadm", "meminfo", "meminfo_numa", "mountstats",
        "netclass", "netdev", "netstat", "network_route", "nfs", "nfsd", "ntp", "nvme", "nvmesubsystem", "os",
        "pcidevice", "perf", "powersupplyclass", "pressure", "processes", "qdisc", "rapl", "runit", "schedstat",
        "selinux", "slabinfo", "sockstat", "softirqs", "softnet", "stat", "supervisord", "swap", "sysctl",
        "systemd", "tapestats", "tcpstat", "textfile", "thermal_zone", "time", "timex", "udp_queues", "uname",
        "vmstat", "watchdog", "wifi", "xfrm", "xfs", "zfs", "zoneinfo",
    ]

    /// node_exporter flags that take a value.
    static let valueFlags: Set<String> = [
        "collector.arp.device-include", "collector.arp.device-exclude", "collector.cpu.info.flags-include",
        "collector.cpu.info.bugs-include", "collector.ethtool.device-include", "collector.ethtool.device-exclude",
        "collector.ethtool.metrics-include", "collector.ipvs.backend-labels", "collector.netclass.ignored-devices",
        "collector.ntp.server", "collector.ntp.server-port", "collector.ntp.protocol-version", "collector.ntp.ip-ttl",
        "collector.ntp.max-distance", "collector.ntp.local-offset-tolerance", "collector.perf.cpus",
        "collector.perf.tracepoint", "collector.powersupply.ignored-supplies", "collector.qdisc.fixtures",
        "collector.qdisc.device-include", "collector.qdisc.device-exclude", "collector.qdisk.device-include",
        "collector.qdisk.device-exclude", "collector.runit.servicedir", "collector.supervisord.url",
        "collector.sysctl.include", "collector.sysctl.include-info", "collector.tapestats.ignored-devices",
        "collector.wifi.fixtures", "collector.hwmon.chip-include",
        "collector.hwmon.chip-exclude", "collector.hwmon.sensor-include", "collector.hwmon.sensor-exclude",
        "collector.filesystem.stat-workers", "collector.filesystem.mount-timeout", "collector.bcache.priorityStats",
        "collector.netdev.device-whitelist", "collector.netdev.device-blacklist", "collector.cpufreq.governor",
        "collector.diskstats.ignored-devices", "collector.filesystem.ignored-mount-points",
        "collector.filesystem.ignored-fs-types", "collector.interrupts.name-include",
        "collector.interrupts.name-exclude", "collector.slabinfo.slabs-include", "collector.slabinfo.slabs-exclude",
        "collector.rapl.enable-zone-label", "collector.pcidevice.idsfile", "collector.textfile.directory",
        "web.config.file",
    ]

    /// node_exporter boolean flags vigil does not implement.
    static let boolFlags: Set<String> = [
        "collector.bcache.priorityStats", "collector.cpu.info", "collector.netclass.ignore-invalid-speed",
        "collector.netclass.netlink", "collector.netclass_rtnl.with-stats", "collector.netdev.address-info",
        "collector.netdev.enable-detailed-metrics", "collector.netdev.netlink", "collector.netdev.label-ifalias",
        "collector.ntp.server-is-local", "collector.rapl.enable-zone-label", "collector.stat.softirq",
        "collector.systemd.enable-task-metrics", "collector.systemd.enable-restarts-metrics",
        "collector.systemd.enable-start-time-metrics", "collector.arp.netlink",
        "collector.perf.disable-hardware-profilers", "collector.perf.disable-software-profilers",
        "collector.perf.disable-cache-profilers", "web.systemd-socket", "collector.cpu.guest",
    ]
}
