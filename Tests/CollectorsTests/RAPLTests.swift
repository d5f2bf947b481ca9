import Foundation
import Testing
import VigilCore

@testable import Collectors

@Suite struct RAPLTests {
    /// Two packages with core, uncore and DRAM subzones, and a platform (psys) zone. node_exporter ran
    /// with a relative `--path.sysfs`, which its `path` label repeats.
    @Test(arguments: [false, true])
    func matchesNodeExporterOnTheFixtureZones(zoneLabel: Bool) throws {
        let collected = try collect(
            RAPLCollector.descriptor,
            roots: fixtureRoots("rapl"),
            settings: ["collector.rapl.enable-zone-label": .bool(zoneLabel)]
        )
        let relative = collected.families.mappingStrings {
            $0.replacingOccurrences(of: fixturesDirectory + "/", with: "")
        }
        expectSameFamilies(relative, try golden(zoneLabel ? "rapl-zone-label" : "rapl"))
        #expect(collected.failures.isEmpty)
    }

    @Test func aZoneThatCannotBeReadCostsOnlyItsOwnSeries() throws {
        let tree = try TemporaryTree(files: [
            "sys/class/powercap/intel-rapl:0/name": "package-0\n",
            "sys/class/powercap/intel-rapl:0/energy_uj": "2500000\n",
            "sys/class/powercap/intel-rapl:0:0/name": "core\n",
            "sys/class/powercap/intel-rapl:0:0/energy_uj": "n/a\n",
            "sys/class/powercap/intel-rapl/enabled": "1\n",
        ])
        let collected = try collect(RAPLCollector.descriptor, roots: tree.roots)
        #expect(collected.value("node_rapl_package_joules_total", ["index": "0"]) == 2.5)
        #expect(collected[family: "node_rapl_core_joules_total"] == nil)
        #expect(collected.failures.count == 1)
    }

    @Test func noRAPLIsNoData() throws {
        expectNoData(RAPLCollector.descriptor, roots: fixtureRoots("debian12"))
    }
}
