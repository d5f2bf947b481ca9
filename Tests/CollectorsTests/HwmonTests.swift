import Testing
import VigilCore

@testable import Collectors

@Suite struct HwmonTests {
    @Test func matchesNodeExporterOnADesktopWithTenChips() throws {
        let collected = try collect(HwmonCollector.descriptor, roots: fixtureRoots("hwmon-desktop"))
        #expect(collected.failures.isEmpty)
        // node_exporter 1.12 also reads GPU clocks (freq*: a family and their labels), 1.5.0 did not.
        let withoutClocks = collected.families.dropping(["node_hwmon_freq_freq_mhz"]).map { family in
            var family = family
            family.samples.removeAll { $0[label: "sensor"]?.hasPrefix("freq") == true }
            return family
        }
        expectSameFamilies(withoutClocks, try golden("hwmon-desktop"))
        #expect(collected.value("node_hwmon_sensor_label", ["sensor": "freq1", "label": "sclk"]) == 1)
        let gpu = "0000:00:03_1_0000:09:00_0"
        #expect(collected.value("node_hwmon_freq_freq_mhz", ["chip": gpu, "sensor": "sclk"]) == 1800)
        #expect(collected.value("node_hwmon_freq_freq_mhz", ["chip": gpu, "sensor": "mclk"]) == 96)
        #expect(collected[family: "node_hwmon_freq_freq_mhz"]?.help == "Hardware monitor for GPU frequency in MHz")
    }

    @Test func unitsAndNames() throws {
        let collected = try collect(HwmonCollector.descriptor, roots: fixtureRoots("hwmon-desktop"))
        #expect(collected.value("node_hwmon_temp_celsius", ["chip": "platform_coretemp_0", "sensor": "temp1"]) == 45)
        #expect(
            collected.value("node_hwmon_temp_max_celsius", ["chip": "platform_coretemp_0", "sensor": "temp1"]) == 80
        )
        #expect(
            collected.value("node_hwmon_temp_crit_celsius", ["chip": "platform_coretemp_0", "sensor": "temp1"]) == 100
        )
        #expect(collected.value("node_hwmon_in_volts", ["chip": "platform_nct6775_656", "sensor": "in0"]) == 1.048)
        #expect(collected.value("node_hwmon_fan_rpm", ["chip": "platform_nct6775_656", "sensor": "fan1"]) == 1205)
        #expect(collected.value("node_hwmon_fan_alarm", ["chip": "platform_nct6775_656", "sensor": "fan1"]) == 0)
        #expect(collected.value("node_hwmon_in_beep_enabled", ["chip": "platform_nct6775_656", "sensor": "in0"]) == 0)
        #expect(collected.value("node_hwmon_beep_enabled", ["chip": "platform_nct6775_656"]) == 0)
        #expect(collected.value("node_hwmon_power_average_watt", ["chip": "lnxsybus:00_acpi000d:00"]) == 354)
        #expect(collected.value("node_hwmon_curr_amps", ["chip": "i2c_0_0_0040", "sensor": "curr1"]) == 1.2)
        #expect(collected.value("node_hwmon_energy_joule_total", ["sensor": "energy1"]) == 123_456.789012)
        #expect(collected[family: "node_hwmon_energy_joule_total"]?.type == "counter")
        #expect(collected.value("node_hwmon_chip_names", ["chip": "nvme_nvme0", "chip_name": "nvme"]) == 1)
        #expect(
            collected.value(
                "node_hwmon_sensor_label",
                ["chip": "platform_coretemp_0", "sensor": "temp1", "label": "Package id 0"]
            )
                == 1
        )
        // Sensors under device/ (older kernels), a chip named by its name file, one by its directory.
        #expect(collected.value("node_hwmon_fan_rpm", ["chip": "platform_it87_2608", "sensor": "fan1"]) == 2250)
        #expect(collected.value("node_hwmon_fan_rpm", ["chip": "acpi_fan"]) == 0)
        #expect(collected.value("node_hwmon_temp_celsius", ["chip": "hwmon11"]) == 51)
        // "N/A" and an empty value cost their sample only.
        #expect(collected.value("node_hwmon_temp_celsius", ["sensor": "temp9"]) == nil)
        #expect(collected[family: "node_hwmon_fan_div"] == nil)
    }

    @Test func chipAndSensorFilters() throws {
        let roots = fixtureRoots("hwmon-desktop")
        let onlyCoretemp = try collect(
            HwmonCollector.descriptor,
            roots: roots,
            settings: ["collector.hwmon.chip-include": .regex("^platform_coretemp")]
        )
        #expect(Set(onlyCoretemp.families.flatMap(\.samples).map { $0[label: "chip"] }) == ["platform_coretemp_0"])
        let noNVMeTemp2 = try collect(
            HwmonCollector.descriptor,
            roots: roots,
            settings: [
                "collector.hwmon.chip-exclude": .regex("^(platform|i2c)"),
                "collector.hwmon.sensor-exclude": .regex("^nvme_nvme0;temp2$"),
            ]
        )
        let chips = Set(noNVMeTemp2.families.flatMap(\.samples).compactMap { $0[label: "chip"] })
        #expect(
            !chips.contains("platform_coretemp_0") && !chips.contains("i2c_0_0_0040") && chips.contains("nvme_nvme0")
        )
        #expect(noNVMeTemp2.value("node_hwmon_temp_celsius", ["chip": "nvme_nvme0", "sensor": "temp1"]) == 38.85)
        #expect(noNVMeTemp2.value("node_hwmon_temp_celsius", ["chip": "nvme_nvme0", "sensor": "temp2"]) == nil)
    }

    @Test func noHwmonIsNoDataQuietly() throws {
        expectNoData(HwmonCollector.descriptor, roots: fixtureRoots("debian12"))
    }

    @Test func splitsSensorFileNamesAsNodeExportersRegex() {
        #expect(splitSensorFilename("temp1_input")! == ("temp", 1, "input"))
        #expect(splitSensorFilename("temp12_crit_alarm")! == ("temp", 12, "crit_alarm"))
        #expect(splitSensorFilename("in0_input")! == ("in", 0, "input"))
        #expect(splitSensorFilename("pwm1")! == ("pwm", 1, ""))
        #expect(splitSensorFilename("beep_enable")! == ("beep_enable", 0, ""))
        #expect(splitSensorFilename("update_interval")! == ("update_interval", 0, ""))
        #expect(splitSensorFilename("fan_x1y")! == ("fan", 0, "x1y"))
        #expect(splitSensorFilename("temp1x") == nil)
        #expect(splitSensorFilename("1temp") == nil)
        #expect(splitSensorFilename("temp1_") == nil)
        #expect(splitSensorFilename("") == nil)
        #expect(splitSensorFilename("temp99999999999999999999_input") == nil)
    }

    @Test func cleansNamesAsNodeExporter() {
        #expect(cleanMetricName("Package id 0") == "package_id_0")
        #expect(cleanMetricName("coretemp\n") == "coretemp")
        #expect(cleanMetricName("0000:09:00.0") == "0000:09:00_0")
        #expect(cleanMetricName("__Tctl__") == "tctl")
        #expect(cleanMetricName("Température") == "temp_rature")
        #expect(cleanMetricName("---") == "")
    }
}
