import Logging
import Testing
import VigilCore

@testable import Collectors

/// The directory holding fixture trees: `Fixtures/<tree>/proc`, `…/sys`, `…/root`, `…/udev`.
let fixturesDirectory: String = {
    let file = #filePath
    return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures"
}()

/// Path roots pointing into one fixture tree, as node_exporter's `--path.*` flags would.
func fixtureRoots(_ tree: String) -> PathRoots {
    let base = fixturesDirectory + "/" + tree
    return PathRoots(procfs: base + "/proc", sysfs: base + "/sys", rootfs: base + "/root", udevData: base + "/udev")
}

/// A fixture file's text: `fixtureText("debian12/proc/stat")`.
func fixtureText(_ relativePath: String) throws -> String {
    try FileReader().read(fixturesDirectory + "/" + relativePath).string
}

extension TemporaryTree {
    /// Path roots into the tree, laid out as a fixture tree (`proc`, `sys`, `root`, `udev`).
    var roots: PathRoots {
        PathRoots(
            procfs: self.path + "/proc",
            sysfs: self.path + "/sys",
            rootfs: self.path + "/root",
            udevData: self.path + "/udev"
        )
    }
}

/// What one collection produced, read back through the exposition parser.
struct Collected {
    let families: [ParsedFamily]
    let failures: [String]
    let text: String

    subscript(family name: String) -> ParsedFamily? {
        self.families.first { $0.name == name }
    }

    /// The value of the one sample of `family` whose labels include `labels`.
    func value(_ family: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = self[family: family]?.samples.filter { sample in
            labels.allSatisfy { sample[label: $0.key] == $0.value }
        }
        guard let matching, matching.count == 1 else { return nil }
        return matching[0].value
    }
}

/// Runs a collector once against a fixture tree (or real roots) and parses what it wrote.
///
/// - Parameter settings: overrides of the collector's options, by name.
func collect(
    _ descriptor: CollectorDescriptor,
    roots: PathRoots,
    settings overrides: [String: OptionValue] = [:]
) throws -> Collected {
    try collect(makeCollector(descriptor, roots: roots, settings: overrides), roots: roots)
}

/// Expects a collector to report no data (its source missing on this host), as node_exporter's ErrNoData.
func expectNoData(
    _ descriptor: CollectorDescriptor,
    roots: PathRoots,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(sourceLocation: sourceLocation) {
        try collect(descriptor, roots: roots)
    } throws: { error in
        if case CollectorError.noData = error { return true }
        return false
    }
}

/// Builds a collector from its descriptor with some options set, as the agent would.
func makeCollector(
    _ descriptor: CollectorDescriptor,
    roots: PathRoots,
    settings overrides: [String: OptionValue] = [:]
) throws -> any Collector {
    var settings = Settings(specs: [descriptor.enableOption] + descriptor.options)
    for (name, value) in overrides { settings.set(name, value, origin: .commandLine) }
    return try descriptor.make(CollectorSetup(settings: settings, paths: roots, logger: Logger(label: "test")))
}

/// Runs a collector once and parses what it wrote.
///
/// - Parameters:
///   - timeout: the scrape deadline the collector gets.
///   - shared: the scrape's shared values, as another collector of the same scrape left them.
func collect(
    _ collector: any Collector,
    roots: PathRoots,
    timeout: Duration = .seconds(10),
    shared: ScrapeShared = ScrapeShared()
) throws -> Collected {
    var writer = MetricWriter(format: .text)
    let context = scrapeContext(roots, timeout: timeout, shared: shared)
    try collector.collect(into: &writer, context: context)
    // Families left to be written while sending come after the collector's bytes.
    writer.takeStreamed()?.writeAll(into: &writer)
    let bytes = writer.takeBytes()
    let families = try parseExposition(bytes[...])
    // The same family twice would make the output invalid.
    #expect(Set(families.map(\.name)).count == families.count)
    return Collected(families: families, failures: context.failures, text: String(decoding: bytes, as: UTF8.self))
}

/// The context a collector gets in a scrape with the given deadline, logging to nowhere in particular.
func scrapeContext(
    _ roots: PathRoots,
    timeout: Duration = .seconds(10),
    shared: ScrapeShared = ScrapeShared()
) -> ScrapeContext {
    ScrapeContext(
        paths: roots,
        reader: FileReader(),
        deadline: .now + timeout,
        shared: shared,
        logger: Logger(label: "test"),
        pool: BlockingPool.shared
    )
}
