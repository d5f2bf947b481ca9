import Testing
import VigilCore

/// The families node_exporter wrote for a fixture tree: `Fixtures/golden/<name>.prom`, recorded with
/// Debian's node_exporter 1.5.0 by `sh Tests/CollectorsTests/Fixtures/golden/record.sh` (which says
/// how; paths in it are relative to `Fixtures/`).
func golden(_ name: String) throws -> [ParsedFamily] {
    try parseExposition(FileReader().read(fixturesDirectory + "/golden/" + name + ".prom"))
}

/// One sample as a line: name, labels sorted by name, value (or `_` when values are not compared).
private func sampleLine(_ sample: ParsedSample, withValue: Bool) -> String {
    let labels = sample.labels.sorted { $0.name < $1.name }.map { "\($0.name)=\"\($0.value)\"" }
    var value: [UInt8] = []
    appendFloat(sample.value, to: &value)
    return sample.name + "{" + labels.joined(separator: ",") + "} "
        + (withValue ? String(decoding: value, as: UTF8.self) : "_")
}

/// Expects the same families (names, HELP, TYPE) with the same series as node_exporter's; values are
/// compared except in `ignoringValuesOf` (free space, clocks: they change between the runs).
func expectSameFamilies(
    _ ours: [ParsedFamily],
    _ theirs: [ParsedFamily],
    ignoringValuesOf volatile: Set<String> = [],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(ours.map(\.name).sorted() == theirs.map(\.name).sorted(), sourceLocation: sourceLocation)
    for expected in theirs {
        guard let family = ours.first(where: { $0.name == expected.name }) else { continue }
        #expect(family.help == expected.help, "HELP of \(expected.name)", sourceLocation: sourceLocation)
        #expect(family.type == expected.type, "TYPE of \(expected.name)", sourceLocation: sourceLocation)
        let withValue = !volatile.contains(expected.name)
        let ourLines = family.samples.map { sampleLine($0, withValue: withValue) }.sorted()
        let theirLines = expected.samples.map { sampleLine($0, withValue: withValue) }.sorted()
        #expect(ourLines == theirLines, "samples of \(expected.name)", sourceLocation: sourceLocation)
    }
}

extension [ParsedFamily] {
    /// Without the named families.
    func dropping(_ names: Set<String>) -> [ParsedFamily] {
        self.filter { !names.contains($0.name) }
    }

    /// Without the samples `drop` picks (series an older node_exporter wrote that newer ones do not);
    /// a family left without samples goes too.
    func droppingSamples(where drop: (ParsedSample) -> Bool) -> [ParsedFamily] {
        self.compactMap { family in
            var family = family
            family.samples.removeAll(where: drop)
            return family.samples.isEmpty ? nil : family
        }
    }

    /// With a label removed from every sample (to compare with an older node_exporter without it).
    func removingLabel(_ label: String) -> [ParsedFamily] {
        self.map { family in
            var family = family
            family.samples = family.samples.map { sample in
                var sample = sample
                sample.labels.removeAll { $0.name == label }
                return sample
            }
            return family
        }
    }

    /// With every label value and HELP text passed through `transform`.
    func mappingStrings(_ transform: (String) -> String) -> [ParsedFamily] {
        self.map { family in
            var family = family
            family.help = family.help.map(transform)
            family.samples = family.samples.map { sample in
                var sample = sample
                sample.labels = sample.labels.map { ParsedSample.Label(name: $0.name, value: transform($0.value)) }
                return sample
            }
            return family
        }
    }
}
