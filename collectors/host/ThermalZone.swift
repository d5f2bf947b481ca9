import VigilCore

/// Thermal zone temperatures and cooling device states from `/sys/class/thermal`
/// (`node_thermal_zone_temp`, `node_cooling_device_cur_state`, `node_cooling_device_max_state`).
///
/// A zone that cannot be read (disabled zones answer EINVAL or ENODATA) is left out, as node_exporter
/// does; a cooling device that cannot be read is left out and the collection reported failed.
struct ThermalZoneCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "thermal_zone",
        enabledByDefault: true,
        help: "thermal zone temperatures and cooling device states from /sys/class/thermal"
    ) { _ in
        ThermalZoneCollector()
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let directory = context.paths.sys("class/thermal")
        let names = try FileSystem.sortedEntriesIfPresent(of: directory)
        var devices: [CoolingDevice] = []
        for name in names where hasNumberedPrefix(name, "cooling_device") {
            do {
                devices.append(try readCoolingDevice(directory + "/" + name, reader: context.reader))
            } catch {
                context.recordFailure("\(directory)/\(name): \(error)")
            }
        }
        if !devices.isEmpty {
            writer.family(curStateFamily)
            for device in devices {
                writer.sample(Double(device.current), ("name", device.name), ("type", device.type))
            }
            writer.family(maxStateFamily)
            for device in devices {
                writer.sample(Double(device.maximum), ("name", device.name), ("type", device.type))
            }
        }
        var zones: [(zone: Substring, type: String, celsius: Double)] = []
        for name in names where hasNumberedPrefix(name, "thermal_zone") {
            let path = directory + "/" + name
            guard let type = try? context.reader.readTrimmed(path + "/type").string,
                // node_exporter (procfs) requires a policy; a zone without one is skipped.
                (try? context.reader.readAttribute(path + "/policy")) != nil,
                let temp = try? context.reader.readTrimmed(path + "/temp").parseInt64()
            else { continue }
            zones.append((name.dropFirst("thermal_zone".count), type, Double(temp) / 1000))
        }
        if !zones.isEmpty {
            writer.family(zoneTempFamily)
            for zone in zones {
                writer.sample(zone.celsius, ("type", zone.type), ("zone", zone.zone))
            }
        }
    }
}

private let curStateFamily = MetricFamily(
    "node_cooling_device_cur_state",
    help: "Current throttle state of the cooling device",
    type: .gauge
)
private let maxStateFamily = MetricFamily(
    "node_cooling_device_max_state",
    help: "Maximum throttle state of the cooling device",
    type: .gauge
)
private let zoneTempFamily = MetricFamily("node_thermal_zone_temp", help: "Zone temperature in Celsius", type: .gauge)

/// One `/sys/class/thermal/cooling_deviceN`.
struct CoolingDevice: Equatable {
    var name: Substring
    var type: String
    var current: Int64
    var maximum: Int64
}

private func readCoolingDevice(_ path: String, reader: FileReader) throws -> CoolingDevice {
    let type = try reader.readTrimmed(path + "/type").string
    guard let maximum = try reader.readTrimmed(path + "/max_state").parseInt64() else {
        throw CollectorError.failed("max_state is not a number")
    }
    // intel_powerclamp reports -1 while idle.
    guard let current = try reader.readTrimmed(path + "/cur_state").parseInt64() else {
        throw CollectorError.failed("cur_state is not a number")
    }
    let name = path[path.index(after: path.lastIndex(of: "/")!)...].dropFirst("cooling_device".count)
    return CoolingDevice(name: name, type: type, current: current, maximum: maximum)
}

/// `thermal_zone12` for prefix `thermal_zone`: the prefix followed by a digit (the `prefix[0-9]*` glob).
func hasNumberedPrefix(_ name: String, _ prefix: String) -> Bool {
    guard name.hasPrefix(prefix), let next = name.utf8.dropFirst(prefix.utf8.count).first else { return false }
    return next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9")
}
