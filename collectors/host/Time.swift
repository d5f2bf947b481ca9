import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The system clock, the local time zone's offset, and the kernel's clock sources
/// (`/sys/devices/system/clocksource/clocksource*/{available,current}_clocksource`).
struct TimeCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "time",
        enabledByDefault: true,
        help: "system time, time zone offset and clock sources"
    ) { _ in
        TimeCollector()
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var local = tm()
        localtime_r(&seconds, &local)
        writer.family(secondsFamily)
        writer.sample(Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
        writer.family(zoneOffsetFamily)
        writer.sample(Double(local.tm_gmtoff), ("time_zone", local.tm_zone.map { String(cString: $0) } ?? ""))

        let directory = context.paths.sys("devices/system/clocksource")
        var sources: [ClockSource] = []
        for name in try FileSystem.sortedEntriesIfPresent(of: directory) where hasNumberedPrefix(name, "clocksource") {
            do {
                sources.append(try readClockSource(directory + "/" + name, reader: context.reader))
            } catch {
                context.recordFailure("\(directory)/\(name): \(error)")
            }
        }
        guard !sources.isEmpty else { return }
        // node_exporter's device label is the position among the clocksource directories.
        writer.family(availableFamily)
        for (device, source) in sources.enumerated() {
            for available in source.available {
                writer.sample(1, ("clocksource", available), ("device", device))
            }
        }
        writer.family(currentFamily)
        for (device, source) in sources.enumerated() where !source.current.isEmpty {
            writer.sample(1, ("clocksource", source.current), ("device", device))
        }
    }
}

private let secondsFamily = MetricFamily(
    "node_time_seconds",
    help: "System time in seconds since epoch (1970).",
    type: .gauge
)
private let zoneOffsetFamily = MetricFamily(
    "node_time_zone_offset_seconds",
    help: "System time zone offset in seconds.",
    type: .gauge
)
private let availableFamily = MetricFamily(
    "node_time_clocksource_available_info",
    help: "Available clocksources read from '/sys/devices/system/clocksource'.",
    type: .gauge
)
private let currentFamily = MetricFamily(
    "node_time_clocksource_current_info",
    help: "Current clocksource read from '/sys/devices/system/clocksource'.",
    type: .gauge
)

/// One `clocksourceN` directory.
struct ClockSource: Equatable {
    var available: [String]
    var current: String
}

private func readClockSource(_ path: String, reader: FileReader) throws -> ClockSource {
    let available = try reader.readAttribute(path + "/available_clocksource").fields.map(\.string)
    let current = try reader.readTrimmed(path + "/current_clocksource").string
    return ClockSource(available: available, current: current)
}
