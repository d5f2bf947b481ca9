import Testing
import VigilCore

@testable import Collectors

@Suite struct EdacTests {
    /// Two controllers: mc0 with corrected errors on a row and one it could not place, mc1 with
    /// uncorrected ones.
    @Test func matchesNodeExporterOnTheFixtureControllers() throws {
        let collected = try collect(EdacCollector.descriptor, roots: fixtureRoots("edac"))
        expectSameFamilies(collected.families, try golden("edac"))
        #expect(collected.failures.isEmpty)
    }

    @Test func aControllerThatCannotBeReadCostsOnlyItsOwnSeries() throws {
        var files: [String: String] = [:]
        for (controller, corrected) in [("mc0", "5"), ("mc1", "many")] {
            let path = "sys/devices/system/edac/mc/" + controller
            files[path + "/ce_count"] = corrected + "\n"
            for name in ["ce_noinfo_count", "ue_count", "ue_noinfo_count"] { files[path + "/" + name] = "0\n" }
        }
        let tree = try TemporaryTree(files: files)
        let collected = try collect(EdacCollector.descriptor, roots: tree.roots)
        #expect(collected.value("node_edac_correctable_errors_total", ["controller": "0"]) == 5)
        #expect(collected[family: "node_edac_correctable_errors_total"]?.samples.count == 1)
        #expect(collected.failures.count == 1)
        #expect(collected.failures.first?.contains("mc1/ce_count") == true)
    }

    @Test func noEDACGivesNoSeries() throws {
        let collected = try collect(EdacCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.families.isEmpty)
        #expect(collected.failures.isEmpty)
    }
}
