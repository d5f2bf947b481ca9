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
    var settings = Settings(specs: [descriptor.enableOption] + descriptor.options)
    for (name, value) in overrides { settings.set(name, value, origin: .commandLine) }
    let setup = CollectorSetup(settings: settings, paths: roots, logger: Logger(label: "test"))
    return try collect(descriptor.make(setup), roots: roots)
}

/// Runs one collection of a collector that is kept across collections (caches, counters).
func collect(_ collector: any Collector, roots: PathRoots) throws -> Collected {
    var writer = MetricWriter(format: .text)
    let context = ScrapeContext(
        paths: roots,
        reader: FileReader(),
        deadline: .now + .seconds(10),
        shared: ScrapeShared(),
        logger: Logger(label: "test"),
        pool: BlockingPool.shared
    )
    try collector.collect(into: &writer, context: context)
    let bytes = writer.takeBytes()
    let families = try parseExposition(bytes[...])
    // The same family twice would make the output invalid.
    #expect(Set(families.map(\.name)).count == families.count)
    return Collected(families: families, failures: context.failures, text: String(decoding: bytes, as: UTF8.self))
}
