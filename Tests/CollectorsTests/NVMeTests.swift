import Testing
import VigilCore

@testable import Collectors

@Suite struct NVMeTests {
    /// Two controllers, one resetting; sysfs pads models and serials with spaces.
    @Test func matchesNodeExporterOnTheFixtureControllers() throws {
        let collected = try collect(NVMeCollector.descriptor, roots: fixtureRoots("nvme"))
        expectSameFamilies(collected.families, try golden("nvme"))
        #expect(collected.failures.isEmpty)
    }

    @Test func aControllerThatCannotBeReadCostsOnlyItsOwnSeries() throws {
        var files: [String: String] = [:]
        for device in ["nvme0", "nvme1"] {
            for name in ["firmware_rev", "model", "serial"] { files["sys/class/nvme/\(device)/\(name)"] = "x\n" }
        }
        files["sys/class/nvme/nvme1/state"] = "live\n"
        let tree = try TemporaryTree(files: files)
        let collected = try collect(NVMeCollector.descriptor, roots: tree.roots)
        #expect(collected[family: "node_nvme_info"]?.samples.map { $0[label: "device"]! } == ["nvme1"])
        #expect(collected.failures.count == 1)
        #expect(collected.failures.first?.contains("nvme0/state") == true)
    }

    @Test func noNVMeIsNoData() throws {
        expectNoData(NVMeCollector.descriptor, roots: fixtureRoots("debian12"))
    }
}
