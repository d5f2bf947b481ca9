import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Hardware sensors from `/sys/class/hwmon/hwmon*/[device/]<type><n>_<property>` (sysfs-interface in the
/// kernel's hwmon documentation), named as node_exporter names them: `node_hwmon_temp_celsius`,
/// `node_hwmon_fan_rpm`, `node_hwmon_in_volts`, … with labels chip and sensor.
///
/// Some drivers answer EAGAIN forever or block: every attribute gets one bounded `read(2)`, no retry.
struct HwmonCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "hwmon",
        enabledByDefault: true,
        help: "hardware sensors from /sys/class/hwmon",
        options: [
            OptionSpec(
                "collector.hwmon.chip-include",
                .regex(""),
                help: "Regexp of hwmon chip to include (mutually exclusive to device-exclude)."
            ),
            OptionSpec(
                "collector.hwmon.chip-exclude",
                .regex(""),
                help: "Regexp of hwmon chip to exclude (mutually exclusive to device-include)."
            ),
            OptionSpec(
                "collector.hwmon.sensor-include",
                .regex(""),
                help: "Regexp of hwmon sensor to include (mutually exclusive to sensor-exclude)."
            ),
            OptionSpec(
                "collector.hwmon.sensor-exclude",
                .regex(""),
                help: "Regexp of hwmon sensor to exclude (mutually exclusive to sensor-include)."
            ),
        ]
    ) { setup in
        HwmonCollector(
            chips: try setup.nameFilter(
                include: "collector.hwmon.chip-include",
                exclude: "collector.hwmon.chip-exclude"
            ),
            sensors: try setup.nameFilter(
                include: "collector.hwmon.sensor-include",
                exclude: "collector.hwmon.sensor-exclude"
            )
        )
    }

    let chips: NameFilter
    /// Matched against `<chip>;<sensor>` (`platform_coretemp_0;temp3`).
    let sensors: NameFilter

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let classDirectory = context.paths.sys("class/hwmon")
        guard FileSystem.exists(classDirectory) else { throw CollectorError.noData("no \(classDirectory)") }
        let names = try FileSystem.sortedEntriesIfPresent(of: classDirectory)
        var samples: [HwmonSample] = []
        for name in names {
            let directory = classDirectory + "/" + name
            guard FileSystem.isDirectory(directory) else { continue }
            do {
                try self.collectChip(directory, context: context, into: &samples)
            } catch {
                context.recordFailure("\(directory): \(error)")
            }
        }
        writeHwmonSamples(samples, into: &writer)
    }

    private func collectChip(_ directory: String, context: ScrapeContext, into samples: inout [HwmonSample]) throws {
        guard let chip = hwmonChipName(directory, reader: context.reader) else {
            throw CollectorError.failed("could not derive a monitoring name")
        }
        guard self.chips.allows(chip) else { return }
        var sensors: [String: [String: String]] = [:]
        try readSensorFiles(directory, reader: context.reader, into: &sensors)
        let device = directory + "/device"
        if FileSystem.exists(device) {
            try readSensorFiles(device, reader: context.reader, into: &sensors)
        }
        if let name = try? context.reader.readAttribute(directory + "/name"),
            case let cleaned = cleanMetricName(name.string), !cleaned.isEmpty
        {
            samples.append(
                HwmonSample(
                    family: "node_hwmon_chip_names",
                    help: "Annotation metric for human-readable chip names",
                    labels: .chipName(chip: chip, name: cleaned),
                    value: 1
                )
            )
        }
        for (sensor, properties) in sensors where self.sensors.allows(chip + ";" + sensor) {
            hwmonSamples(chip: chip, sensor: sensor, properties: properties, into: &samples)
        }
    }
}

/// One sample before grouping into families (a family collects samples of every chip).
struct HwmonSample: Equatable {
    enum Labels: Equatable, Comparable {
        case sensor(chip: String, sensor: String)
        case chipName(chip: String, name: String)
        case sensorLabel(chip: String, sensor: String, label: String)
    }

    var family: String
    var help: String
    var type: MetricType = .gauge
    var labels: Labels
    var value: Double
}

/// The sensor types node_exporter reads; other files (`name`, `uevent`, `power/`) are not sensors.
private let sensorTypes: Set<String> = [
    "vrm", "beep_enable", "update_interval", "in", "cpu", "fan", "pwm", "temp", "curr", "power", "energy",
    "humidity", "intrusion", "freq",
]

/// Reads every sensor attribute of a directory into `sensors[<type><n>][<property>]`.
private func readSensorFiles(
    _ directory: String,
    reader: FileReader,
    into sensors: inout [String: [String: String]]
) throws {
    for file in try FileSystem.entries(of: directory) {
        guard let parts = splitSensorFilename(file), sensorTypes.contains(parts.type),
            let value = try? reader.readAttribute(directory + "/" + file)
        else { continue }
        sensors["\(parts.type)\(parts.number)", default: [:]][parts.property] = trimmingNewlines(value).string
    }
}

/// `temp1_input` → (temp, 1, input); `beep_enable` → (beep_enable, 0, ""). Mirrors node_exporter's
/// `^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$`, greedy and leftmost-first: the longest type
/// that lets the rest match wins.
func splitSensorFilename(_ name: String) -> (type: String, number: Int, property: String)? {
    let bytes = Array(name.utf8)
    let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    let firstDigit = bytes.firstIndex(where: isDigit) ?? bytes.count
    // Candidate type ends, longest first: at the first digit, then before each "_" that can start a property.
    var typeEnds = [firstDigit]
    typeEnds += (0..<firstDigit).reversed().filter { bytes[$0] == UInt8(ascii: "_") && $0 + 1 < bytes.count }
    for typeEnd in typeEnds where typeEnd > 0 {
        var idEnd = typeEnd
        while idEnd < bytes.count, isDigit(bytes[idEnd]) { idEnd += 1 }
        let rest = bytes[idEnd...]
        guard rest.isEmpty || (rest.first == UInt8(ascii: "_") && rest.count > 1) else { continue }
        var number = 0
        if idEnd > typeEnd {
            guard let parsed = Int(String(decoding: bytes[typeEnd..<idEnd], as: UTF8.self)) else { return nil }
            number = parsed
        }
        return (
            String(decoding: bytes[..<typeEnd], as: UTF8.self),
            number,
            String(decoding: rest.dropFirst(), as: UTF8.self)
        )
    }
    return nil
}

/// Lower case, every character outside `[a-z0-9:_]` replaced by `_`, leading and trailing `_` removed.
func cleanMetricName(_ name: String) -> String {
    var cleaned = ""
    for scalar in name.unicodeScalars {
        switch scalar {
        case "a"..."z", "0"..."9", ":", "_": cleaned.unicodeScalars.append(scalar)
        case "A"..."Z": cleaned.unicodeScalars.append(Unicode.Scalar(scalar.value + 32)!)
        default: cleaned.append("_")
        }
    }
    return String(cleaned.drop { $0 == "_" }.reversed().drop { $0 == "_" }.reversed())
}

/// The chip label: from the device the chip belongs to (stable across reboots, unlike `hwmonN`), else
/// the `name` attribute, else the `hwmonN` directory name.
func hwmonChipName(_ directory: String, reader: FileReader) -> String? {
    if let device = resolvedPath(directory + "/device") {
        let components = device.split(separator: "/")
        let name = cleanMetricName(String(components.last ?? ""))
        let parent = components.count > 1 ? cleanMetricName(String(components[components.count - 2])) : ""
        if !parent.isEmpty && !name.isEmpty { return parent + "_" + name }
        if !name.isEmpty { return name }
    }
    if let name = try? reader.readAttribute(directory + "/name"), case let cleaned = cleanMetricName(name.string),
        !cleaned.isEmpty
    {
        return cleaned
    }
    guard let real = resolvedPath(directory), let last = real.split(separator: "/").last else { return nil }
    let cleaned = cleanMetricName(String(last))
    return cleaned.isEmpty ? nil : cleaned
}

/// The path with every symbolic link resolved, or nil when it does not exist.
private func resolvedPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

private func trimmingNewlines(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    var trimmed = bytes
    while trimmed.first == UInt8(ascii: "\n") { trimmed = trimmed.dropFirst() }
    while trimmed.last == UInt8(ascii: "\n") { trimmed = trimmed.dropLast() }
    return trimmed
}

/// Turns one sensor's attributes into samples, with node_exporter's names, units and help texts.
func hwmonSamples(chip: String, sensor: String, properties: [String: String], into samples: inout [HwmonSample]) {
    guard let type = splitSensorFilename(sensor)?.type else { return }
    let labels = HwmonSample.Labels.sensor(chip: chip, sensor: sensor)
    if let label = properties["label"] {
        samples.append(
            HwmonSample(
                family: "node_hwmon_sensor_label",
                help: "Label for given chip and sensor",
                labels: .sensorLabel(chip: chip, sensor: sensor, label: label),
                value: 1
            )
        )
    }
    switch type {
    case "beep_enable":
        let value: Double = properties[""] == "1" ? 1 : 0
        samples.append(
            HwmonSample(family: "node_hwmon_beep_enabled", help: "Hardware beep enabled", labels: labels, value: value)
        )
        return
    case "vrm":
        if let value = parseHwmonValue(properties[""]) {
            samples.append(
                HwmonSample(
                    family: "node_hwmon_voltage_regulator_version",
                    help: "Hardware voltage regulator",
                    labels: labels,
                    value: value
                )
            )
        }
        return
    case "update_interval":
        if let value = parseHwmonValue(properties[""]) {
            samples.append(
                HwmonSample(
                    family: "node_hwmon_update_interval_seconds",
                    help: "Hardware monitor update interval",
                    labels: labels,
                    value: value * 0.001
                )
            )
        }
        return
    default: break
    }
    for (element, text) in properties where element != "label" {
        var name = "node_hwmon_" + type
        if element == "input" {
            // `temp1` (no property) and `temp1_input` would otherwise share a name.
            if properties[""] != nil { name += "_input" }
        } else if !element.isEmpty {
            name += "_" + cleanMetricName(element)
        }
        guard let value = parseHwmonValue(text) else { continue }
        if type == "freq" && element == "input" {
            // node_exporter labels GPU clocks by their cleaned label (`sclk`) instead of the sensor.
            if let label = properties["label"] {
                samples.append(
                    HwmonSample(
                        family: name + "_freq_mhz",
                        help: "Hardware monitor for GPU frequency in MHz",
                        labels: .sensor(chip: chip, sensor: cleanMetricName(label)),
                        value: value / 1_000_000
                    )
                )
            }
            continue
        }
        let (suffix, help, scaled, metricType) = hwmonUnit(type: type, element: element, value: value)
        samples.append(HwmonSample(family: name + suffix, help: help, type: metricType, labels: labels, value: scaled))
    }
}

/// The name suffix, help text, scaled value and type of a sensor attribute, by node_exporter's rules in
/// its order: alarms and faults without unit, then by sensor type.
private func hwmonUnit(type: String, element: String, value: Double) -> (String, String, Double, MetricType) {
    switch (type, element) {
    case (_, "fault"), (_, "alarm"):
        return ("", "Hardware sensor \(element) status (\(type))", value, .gauge)
    case (_, "beep"):
        return ("_enabled", "Hardware monitor sensor has beeping enabled", value, .gauge)
    case ("in", _), ("cpu", _):
        return ("_volts", "Hardware monitor for voltage (\(element))", value * 0.001, .gauge)
    case ("temp", _) where element != "type":
        let shown = element.isEmpty ? "input" : element
        return ("_celsius", "Hardware monitor for temperature (\(shown))", value * 0.001, .gauge)
    case ("curr", _):
        return ("_amps", "Hardware monitor for current (\(element))", value * 0.001, .gauge)
    case ("energy", _):
        return ("_joule_total", "Hardware monitor for joules used so far (\(element))", value / 1_000_000, .counter)
    case ("power", "accuracy"):
        return ("", "Hardware monitor power meter accuracy, as a ratio", value / 1_000_000, .gauge)
    case ("power", "average_interval"), ("power", "average_interval_min"), ("power", "average_interval_max"):
        return ("_seconds", "Hardware monitor power usage update interval (\(element))", value * 0.001, .gauge)
    case ("power", _):
        return ("_watt", "Hardware monitor for power usage in watts (\(element))", value / 1_000_000, .gauge)
    case ("humidity", _):
        let help =
            "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) (\(element))"
        return ("", help, value / 1_000_000, .gauge)
    case ("fan", "input"), ("fan", "min"), ("fan", "max"), ("fan", "target"):
        return ("_rpm", "Hardware monitor for fan revolutions per minute (\(element))", value, .gauge)
    default:
        return ("", "Hardware monitor \(type) element \(element)", value, .gauge)
    }
}

/// A sensor value as Go's `strconv.ParseFloat` reads it.
private func parseHwmonValue(_ text: String?) -> Double? {
    guard let text, !text.isEmpty else { return nil }
    return ArraySlice(text.utf8).parseDouble()
}

/// Groups samples into families sorted by name, series sorted by labels, as node_exporter's output.
func writeHwmonSamples(_ samples: [HwmonSample], into writer: inout MetricWriter) {
    let sorted = samples.sorted { ($0.family, $0.labels) < ($1.family, $1.labels) }
    var previous: (family: String, labels: HwmonSample.Labels)? = nil
    for sample in sorted {
        if previous?.family != sample.family {
            writer.family(sample.family, help: sample.help, type: sample.type)
        } else if previous?.labels == sample.labels {
            continue  // the same series twice (a property in both hwmonN/ and device/): keep one
        }
        previous = (sample.family, sample.labels)
        switch sample.labels {
        case .sensor(let chip, let sensor):
            writer.sample(sample.value, ("chip", chip), ("sensor", sensor))
        case .chipName(let chip, let name):
            writer.sample(sample.value, ("chip", chip), ("chip_name", name))
        case .sensorLabel(let chip, let sensor, let label):
            writer.sample(sample.value, ("chip", chip), ("label", label), ("sensor", sensor))
        }
    }
}
