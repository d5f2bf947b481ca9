import Synchronization
import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The system clock, the local time zone's offset, and the kernel's clock sources
/// (`/sys/devices/system/clocksource/clocksource*/{available,current}_clocksource`).
///
/// The clock source directories are registered at boot and do not come and go: once all of them have
/// been read, their files stay open and later scrapes only read them again. A read that fails lists
/// and opens them afresh.
struct TimeCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "time",
        enabledByDefault: true,
        help: "system time, time zone offset and clock sources"
    ) { _ in
        TimeCollector()
    }

    private let kept = CollectorState<[KeptOpenAttributes]?>(nil)

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

        let sources = try self.readClockSources(context: context)
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

    private func readClockSources(context: ScrapeContext) throws -> [ClockSource] {
        if let kept = self.kept.value.withLock({ $0 }),
            let sources = try? kept.map({ files in try readClockSource(files, reader: context.reader) })
        {
            return sources
        }
        let directory = context.paths.sys("devices/system/clocksource")
        var sources: [ClockSource] = []
        var opened: [KeptOpenAttributes] = []
        var complete = true
        for name in try FileSystem.sortedEntriesIfPresent(of: directory) where hasNumberedPrefix(name, "clocksource") {
            do {
                let files = try KeptOpenAttributes(clockSourceFiles, in: OpenDirectory(directory + "/" + name))
                sources.append(try readClockSource(files, reader: context.reader))
                opened.append(files)
            } catch {
                complete = false
                context.recordFailure("\(directory)/\(name): \(error)")
            }
        }
        // Kept only when every directory could be read, so that a failure is reported on every scrape.
        self.kept.value.withLock { $0 = complete && !opened.isEmpty ? opened : nil }
        return sources
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

private let clockSourceFiles = ["available_clocksource", "current_clocksource"]

private func readClockSource(_ files: KeptOpenAttributes, reader: FileReader) throws -> ClockSource {
    func read(_ index: Int) throws -> ArraySlice<UInt8> {
        guard let bytes = try reader.readAttribute(index, of: files) else {
            throw FileError(path: files.path + "/" + files.names[index], errno: ENOENT, operation: "open")
        }
        return bytes
    }
    let available = try read(0).fields.map(\.string)
    let current = try read(1).trimmed().string
    return ClockSource(available: available, current: current)
}
