import Testing
import VigilCore

@testable import Collectors

// Helpers shared by the network collector tests.

/// What Debian's node_exporter 1.5.0 serves for a fixture tree, read from `Fixtures/golden/`.
///
/// `node_exporter-1.5.0-debian12-net.prom` was recorded from the `debian12` tree; to record it again
/// (after changing that tree), from `Tests/CollectorsTests/Fixtures`:
///
///     F=$PWD/debian12
///     prometheus-node-exporter --path.procfs=$F/proc --path.sysfs=$F/sys \
///       --web.listen-address=127.0.0.1:21100 --collector.disable-defaults \
///       --collector.netdev --collector.netclass --collector.netstat --collector.sockstat \
///       --collector.conntrack --collector.udp_queues --collector.arp \
///       --no-collector.netdev.netlink --collector.netdev.device-exclude='^$' &
///     curl -s 127.0.0.1:21100/metrics \
///       | grep -vE '^(# (HELP|TYPE) )?(go_|process_|promhttp_|node_exporter_build_info|node_scrape_)' \
///       > golden/node_exporter-1.5.0-debian12-net.prom
///     kill %1
///
/// (`device-exclude='^$'`: Debian's build excludes `lo` from netdev by default, upstream does not.)
func goldenFamilies(_ file: String) throws -> [ParsedFamily] {
    try parseExposition(FileReader().read(fixturesDirectory + "/golden/" + file))
}

/// Families in a comparable order: by name, samples by their labels, labels by name.
func normalized(_ families: [ParsedFamily]) -> [ParsedFamily] {
    families.map { family in
        var family = family
        family.samples = family.samples.map { sample in
            var sample = sample
            sample.labels.sort { $0.name < $1.name }
            return sample
        }
        family.samples.sort {
            "\($0.labels.map { $0.name + "=" + $0.value })" < "\($1.labels.map { $0.name + "=" + $0.value })"
        }
        return family
    }.sorted { $0.name < $1.name }
}

/// Expects vigil's families to equal node_exporter's recorded ones that `belongs` selects: names,
/// HELP, types, label names and values. Differences of the reference version (1.12.1) to the
/// recorded 1.5.0 are applied to vigil's side first by `adjust`.
func expectSameAsNodeExporter(
    _ collected: Collected,
    golden file: String = "node_exporter-1.5.0-debian12-net.prom",
    belongs: (String) -> Bool,
    adjust: (inout [ParsedFamily]) -> Void = { _ in },
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    var ours = collected.families
    adjust(&ours)
    let theirs = try goldenFamilies(file).filter { belongs($0.name) }
    #expect(!theirs.isEmpty, sourceLocation: sourceLocation)
    #expect(normalized(ours).map(\.name) == normalized(theirs).map(\.name), sourceLocation: sourceLocation)
    for (mine, golden) in zip(normalized(ours), normalized(theirs)) {
        #expect(mine == golden, sourceLocation: sourceLocation)
    }
}

/// A fixture file's text, for tests that work out the expected values themselves.
func fixtureText(_ tree: String, _ path: String) throws -> String {
    String(decoding: try FileReader().read(fixturesDirectory + "/" + tree + "/" + path), as: UTF8.self)
}

/// The whitespace-separated fields of a line.
func words(_ line: some StringProtocol) -> [String] {
    String(line).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
}
