import Testing
import VigilCore

/// A fixture file's text: `fixtureText("debian12/proc/stat")`.
func fixtureText(_ relativePath: String) throws -> String {
    try FileReader().read(fixturesDirectory + "/" + relativePath).string
}

/// What node_exporter exposes for a fixture tree with only `collector` enabled, recorded from Debian's
/// node_exporter 1.5.0 by `Fixtures/golden/record-node-exporter.sh` (re-run it after changing a tree).
func nodeExporterGolden(tree: String, collector: String) throws -> [ParsedFamily] {
    try parseExposition(FileReader().read("\(fixturesDirectory)/golden/\(tree)/\(collector).prom"))
}

/// How vigil's output differs from node_exporter's for the same fixture tree, one line per difference:
/// a family only one of them has; a family's type, HELP or label names; and, where the label names
/// agree, a series only one of them has or whose values differ.
func differencesFromNodeExporter(_ collected: Collected, tree: String, collector: String) throws -> [String] {
    let golden = try nodeExporterGolden(tree: tree, collector: collector)
    var differences: [String] = []
    for name in Set(golden.map(\.name)).union(collected.families.map(\.name)).sorted() {
        guard let theirs = golden.first(where: { $0.name == name }) else {
            differences.append("\(name): only in vigil")
            continue
        }
        guard let ours = collected[family: name] else {
            differences.append("\(name): only in node_exporter")
            continue
        }
        if ours.type != theirs.type { differences.append("\(name): type \(ours.type), node_exporter \(theirs.type)") }
        if ours.help != theirs.help {
            differences.append("\(name): help \(ours.help ?? "-"), node_exporter \(theirs.help ?? "-")")
        }
        let (ourLabels, theirLabels) = (labelNames(ours), labelNames(theirs))
        guard ourLabels == theirLabels else {
            differences.append("\(name): labels \(ourLabels), node_exporter \(theirLabels)")
            continue
        }
        let (ourSeries, theirSeries) = (series(ours), series(theirs))
        for key in Set(ourSeries.keys).union(theirSeries.keys).sorted() {
            switch (ourSeries[key], theirSeries[key]) {
            case (nil, _): differences.append("\(name)\(key): only in node_exporter")
            case (_, nil): differences.append("\(name)\(key): only in vigil")
            case (let ours?, let theirs?) where ours != theirs:
                differences.append("\(name)\(key): \(ours), node_exporter \(theirs)")
            default: break
            }
        }
    }
    return differences
}

private func labelNames(_ family: ParsedFamily) -> [String] {
    Set(family.samples.flatMap { $0.labels.map(\.name) }).sorted()
}

/// The family's values by label set, written `{a="1",b="2"}` with the labels sorted.
private func series(_ family: ParsedFamily) -> [String: Double] {
    var result: [String: Double] = [:]
    for sample in family.samples {
        let labels = sample.labels.sorted { $0.name < $1.name }.map { "\($0.name)=\"\($0.value)\"" }
        result["{" + labels.joined(separator: ",") + "}"] = sample.value
    }
    return result
}
