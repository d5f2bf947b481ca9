public import Logging
import Synchronization

/// A source of metric families: host files, cgroups, the system bus, vigil itself.
///
/// A collector is shared by concurrent scrapes, so it keeps no per-scrape state in itself; state that
/// must survive between scrapes (kept-open files, counters that must not go backwards) sits behind a
/// lock. `collect` runs on a scrape worker thread, never on Swift's cooperative pool, so it may block
/// on file reads; a scrape that cannot wait any longer abandons it (see ``Scraper``).
public protocol Collector: Sendable {
    /// Writes this collector's families for one scrape.
    ///
    /// - Throws: ``CollectorError/noData(_:)`` when the source does not exist on this host (reported
    ///   quietly, as node_exporter does), or any error that makes the whole collection fail. A
    ///   `FileError` for a missing file counts as no data. Problems that cost only some samples are
    ///   recorded with ``ScrapeContext/recordFailure(_:)`` instead.
    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws

    /// Whether the family names this collector writes come from outside vigil (the textfile collector's
    /// `*.prom` files). The scraper then drops any of its families that another collector wrote in the
    /// same scrape, and reports this collector failed. Families named `node_<collector name>_*` are the
    /// collector's own and are not checked.
    var definesArbitraryFamilies: Bool { get }
}

extension Collector {
    public var definesArbitraryFamilies: Bool { false }
}

/// Why a collector produced nothing.
public enum CollectorError: Error, CustomStringConvertible {
    /// The source does not exist on this host (no PSI, no hwmon, no cgroups…).
    case noData(String)
    /// The collector failed for the reason given.
    case failed(String)

    public var description: String {
        switch self {
        case .noData(let reason): "no data: \(reason)"
        case .failed(let reason): reason
        }
    }
}

/// Where vigil finds the host's file systems (node_exporter's `--path.*` flags), so that it can run in a
/// container with the host mounted elsewhere and tests can point it at fixture trees.
public struct PathRoots: Sendable, Equatable {
    public var procfs: String
    public var sysfs: String
    public var rootfs: String
    public var udevData: String

    public init(
        procfs: String = "/proc",
        sysfs: String = "/sys",
        rootfs: String = "/",
        udevData: String = "/run/udev/data"
    ) {
        self.procfs = procfs
        self.sysfs = sysfs
        self.rootfs = rootfs
        self.udevData = udevData
    }

    /// A path under the proc file system: `proc("net/dev")`.
    public func proc(_ relative: String) -> String { join(self.procfs, relative) }
    /// A path under the sys file system: `sys("class/net")`.
    public func sys(_ relative: String) -> String { join(self.sysfs, relative) }
    /// A path under the root file system: `root("etc/os-release")`.
    public func root(_ relative: String) -> String { join(self.rootfs, relative) }
    /// A udev database file: `udev("b8:0")`.
    public func udev(_ relative: String) -> String { join(self.udevData, relative) }

    /// Whether `procfs` is `/proc`: the proc file system of vigil's own namespaces, whose `net/` files show
    /// the network namespace vigil's netlink sockets answer for.
    public var procfsIsOwn: Bool { ["/proc", "/proc/"].contains(self.procfs) }
    /// Whether `sysfs` is `/sys`, as mounted in vigil's namespaces (see ``procfsIsOwn``).
    public var sysfsIsOwn: Bool { ["/sys", "/sys/"].contains(self.sysfs) }

    /// A mount point as node_exporter labels it: without the rootfs prefix.
    public func strippingRootfs(_ mountPoint: String) -> String {
        guard self.rootfs != "/", self.rootfs != "" else { return mountPoint }
        let prefix = self.rootfs.hasSuffix("/") ? String(self.rootfs.dropLast()) : self.rootfs
        guard mountPoint.hasPrefix(prefix) else { return mountPoint }
        let stripped = mountPoint.dropFirst(prefix.count)
        return stripped.isEmpty ? "/" : String(stripped)
    }
}

private func join(_ root: String, _ relative: String) -> String {
    if root.hasSuffix("/") { return relative.hasPrefix("/") ? root + relative.dropFirst() : root + relative }
    return relative.hasPrefix("/") ? root + relative : root + "/" + relative
}

/// What one collector invocation gets: the path roots, a file reader owned by the worker thread, the
/// deadline, values shared between the collectors of one scrape, and a place to record partial failures.
public final class ScrapeContext {
    public let paths: PathRoots
    public let reader: FileReader
    /// After this instant the scrape no longer waits for this collector.
    public let deadline: ContinuousClock.Instant
    /// Values computed once per scrape and used by several collectors (e.g. parsed mountinfo).
    public let shared: ScrapeShared
    public let logger: Logger
    public let pool: BlockingPool
    public private(set) var failures: [String] = []

    public init(
        paths: PathRoots,
        reader: FileReader,
        deadline: ContinuousClock.Instant,
        shared: ScrapeShared,
        logger: Logger,
        pool: BlockingPool
    ) {
        self.paths = paths
        self.reader = reader
        self.deadline = deadline
        self.shared = shared
        self.logger = logger
        self.pool = pool
    }

    /// Records a problem that cost some samples; the collector is then reported as failed
    /// (`node_scrape_collector_success 0`) while the samples it did write are served.
    public func recordFailure(_ message: String) {
        self.failures.append(message)
    }
}

/// Values shared by the collectors of one scrape, computed by the first that asks.
public final class ScrapeShared: Sendable {
    private let values = Mutex<[String: any Sendable]>([:])

    public init() {}

    public func value<T: Sendable>(_ key: String, compute: () throws -> T) rethrows -> T {
        if let cached = self.values.withLock({ $0[key] }) as? T { return cached }
        let value = try compute()
        self.values.withLock { $0[key] = value }
        return value
    }
}

/// One entry of the collector catalog: a name, whether it runs by default, its options, and how to
/// build it from the settings.
public struct CollectorDescriptor: Sendable {
    public let name: String
    public let enabledByDefault: Bool
    public let options: [OptionSpec]
    public let help: String
    public let make: @Sendable (CollectorSetup) throws -> any Collector

    public init(
        name: String,
        enabledByDefault: Bool,
        help: String,
        options: [OptionSpec] = [],
        make: @escaping @Sendable (CollectorSetup) throws -> any Collector
    ) {
        self.name = name
        self.enabledByDefault = enabledByDefault
        self.help = help
        self.options = options
        self.make = make
    }

    /// The setting that turns this collector on or off (`--collector.NAME`, `--no-collector.NAME`).
    public var enableOption: OptionSpec {
        OptionSpec(
            "collector.\(self.name)",
            .bool(self.enabledByDefault),
            help:
                "Enable the \(self.name) collector: \(self.help) (default: \(self.enabledByDefault ? "enabled" : "disabled"))."
        )
    }
}

/// What a collector factory gets to build its collector.
public struct CollectorSetup: Sendable {
    public let settings: Settings
    public let paths: PathRoots
    public let logger: Logger

    public init(settings: Settings, paths: PathRoots, logger: Logger) {
        self.settings = settings
        self.paths = paths
        self.logger = logger
    }

    /// A filter from a pair of mutually exclusive include / exclude regex settings.
    public func nameFilter(include: String, exclude: String) throws(ConfigurationError) -> NameFilter {
        let includePattern = self.settings.string(include)
        let excludePattern = self.settings.string(exclude)
        if !includePattern.isEmpty && !excludePattern.isEmpty
            && self.settings.isExplicit(include) && self.settings.isExplicit(exclude)
        {
            throw self.settings.error(include, "cannot be combined with \(exclude); set only one of them")
        }
        if !includePattern.isEmpty && self.settings.isExplicit(include) {
            return try NameFilter(include: self.settings.regex(include), exclude: nil)
        }
        return try NameFilter(
            include: includePattern.isEmpty ? nil : self.settings.regex(include),
            exclude: excludePattern.isEmpty ? nil : self.settings.regex(exclude)
        )
    }
}
