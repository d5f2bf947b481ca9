import Testing
import VigilCore

@testable import Collectors

#if canImport(Glibc)
import Glibc
#endif

@Suite struct TimeTests {
    @Test func clockAndZoneAreTheSystems() throws {
        let before = Double(time(nil))
        let collected = try collect(TimeCollector.descriptor, roots: fixtureRoots("debian12"))
        let after = Double(time(nil)) + 1
        let now = try #require(collected.value("node_time_seconds"))
        #expect(now >= before && now <= after)
        var seconds = time_t(now)
        var local = tm()
        localtime_r(&seconds, &local)
        let zone = String(cString: local.tm_zone)
        #expect(collected.value("node_time_zone_offset_seconds", ["time_zone": zone]) == Double(local.tm_gmtoff))
        #expect(collected.failures.isEmpty)
    }

    @Test func matchesNodeExporterOnARecordedHost() throws {
        let collected = try collect(TimeCollector.descriptor, roots: fixtureRoots("debian12"))
        expectSameFamilies(
            collected.families,
            try golden("debian12-time"),
            ignoringValuesOf: ["node_time_seconds"]
        )
    }

    @Test func clockSourcesAreNumberedByPosition() throws {
        let tree = try TemporaryTree(files: [
            "devices/system/clocksource/clocksource0/available_clocksource": "tsc hpet acpi_pm \n",
            "devices/system/clocksource/clocksource0/current_clocksource": "tsc\n",
            "devices/system/clocksource/clocksource2/available_clocksource": "arch_sys_counter\n",
            "devices/system/clocksource/clocksource2/current_clocksource": "arch_sys_counter\n",
            "devices/system/clocksource/clocksource3/available_clocksource": "broken\n",
        ])
        let collected = try collect(TimeCollector.descriptor, roots: PathRoots(sysfs: tree.path))
        let available = try #require(collected[family: "node_time_clocksource_available_info"]).samples
        #expect(available.map { $0[label: "clocksource"]! } == ["tsc", "hpet", "acpi_pm", "arch_sys_counter"])
        #expect(available.map { $0[label: "device"]! } == ["0", "0", "0", "1"])
        #expect(
            collected.value("node_time_clocksource_current_info", ["device": "1", "clocksource": "arch_sys_counter"])
                == 1
        )
        // clocksource3 lacks current_clocksource: it is left out and reported.
        #expect(collected.failures.count == 1)
    }

    @Test func keepsTheClockSourceFilesOpenOnceAllCouldBeRead() throws {
        let tree = try TemporaryTree(files: [
            "devices/system/clocksource/clocksource0/available_clocksource": "tsc hpet \n",
            "devices/system/clocksource/clocksource0/current_clocksource": "tsc\n",
            "devices/system/clocksource/clocksource1/available_clocksource": "broken\n",
        ])
        let collector = try makeCollector(TimeCollector.descriptor, roots: PathRoots(sysfs: tree.path))
        func current() throws -> (clocksource: String?, failures: Int) {
            let collected = try collect(collector, roots: PathRoots(sysfs: tree.path))
            let sample = collected[family: "node_time_clocksource_current_info"]?.samples.first
            return (sample?[label: "clocksource"], collected.failures.count)
        }
        // A directory that cannot be read is reported on every scrape, not remembered as fine.
        #expect(try current() == ("tsc", 1))
        #expect(try current() == ("tsc", 1))
        try tree.write("devices/system/clocksource/clocksource1/current_clocksource", "broken\n")
        #expect(try current() == ("tsc", 0))
        // Now read through the files kept open: a changed clock source shows, even once the path is gone.
        try tree.write("devices/system/clocksource/clocksource0/current_clocksource", "hpet\n")
        #expect(rename(tree.path + "/devices/system/clocksource", tree.path + "/devices/system/old") == 0)
        #expect(try current() == ("hpet", 0))
    }

    @Test func noClockSourcesStillGivesTheTime() throws {
        let collected = try collect(TimeCollector.descriptor, roots: fixtureRoots("hwmon-desktop"))
        #expect(collected.families.map(\.name) == ["node_time_seconds", "node_time_zone_offset_seconds"])
    }
}
