import Testing
import VigilCore

@testable import Collectors

@Suite struct ThermalZoneTests {
    @Test func matchesNodeExporterOnALaptop() throws {
        let collected = try collect(ThermalZoneCollector.descriptor, roots: fixtureRoots("thermal-laptop"))
        #expect(collected.failures.isEmpty)
        expectSameFamilies(collected.families, try golden("thermal-laptop"))
        #expect(collected.value("node_thermal_zone_temp", ["zone": "10", "type": "x86_pkg_temp"]) == 52)
        #expect(collected.value("node_thermal_zone_temp", ["zone": "2"]) == -5.5)
        #expect(collected.value("node_cooling_device_cur_state", ["name": "1", "type": "intel_powerclamp"]) == -1)
        #expect(collected.value("node_cooling_device_max_state", ["name": "2", "type": "TCC Offset"]) == 63)
    }

    @Test func aBrokenZoneOrDeviceCostsItsOwnSeriesOnly() throws {
        let collected = try collect(ThermalZoneCollector.descriptor, roots: fixtureRoots("thermal-odd"))
        // A zone without a number is no zone; one whose temp is unreadable or that has no policy is
        // skipped quietly, as node_exporter 1.12 (procfs) does.
        #expect(collected[family: "node_thermal_zone_temp"]?.samples.map { $0[label: "zone"] } == ["5"])
        #expect(collected.value("node_thermal_zone_temp", ["zone": "5", "type": "B0D4"]) == 48)
        // A cooling device with garbage in cur_state is left out and reported.
        #expect(collected[family: "node_cooling_device_cur_state"]?.samples.map { $0[label: "name"] } == ["1"])
        #expect(collected.failures.count == 1)
    }

    @Test func noThermalClassMeansNoSeries() throws {
        let collected = try collect(ThermalZoneCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.families.isEmpty)
        #expect(collected.failures.isEmpty)
    }

    @Test func numberedPrefix() {
        #expect(hasNumberedPrefix("thermal_zone0", "thermal_zone"))
        #expect(hasNumberedPrefix("cooling_device12", "cooling_device"))
        #expect(!hasNumberedPrefix("thermal_zone", "thermal_zone"))
        #expect(!hasNumberedPrefix("thermal_zone_extra", "thermal_zone"))
        #expect(!hasNumberedPrefix("power", "thermal_zone"))
    }
}
