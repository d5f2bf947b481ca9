import CClock
import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kernel clock's discipline, as an NTP daemon (chrony, ntpd, systemd-timesyncd) steers it: offset,
/// error bounds, frequency and synchronisation state from `adjtimex(2)`, asked to change nothing (which
/// needs no privilege). node-mixin's clock alerts (NodeClockNotSynchronising, NodeClockSkewDetected)
/// query these families.
struct TimexCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "timex",
        enabledByDefault: true,
        help: "clock offset, error bounds and synchronisation from adjtimex(2)"
    ) { _ in
        TimexCollector()
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var reading = timex()  // modes 0: read only
        let state = adjtimex(&reading)
        guard state >= 0 else {
            let code = errno
            let reason = "adjtimex: \(String(cString: strerror(code)))"
            // A sandbox that forbids the call leaves no data, as node_exporter reports it.
            throw code == EPERM ? CollectorError.noData(reason) : CollectorError.failed(reason)
        }
        writeClockDiscipline(reading, state: state, into: &writer)
    }
}

/// node_exporter's samples of one `adjtimex` reading; `state` is the call's result, the clock state.
func writeClockDiscipline(_ reading: timex, state: Int32, into writer: inout MetricWriter) {
    // The offset and the PPS jitter are in nanoseconds when STA_NANO is set, in microseconds otherwise;
    // the error bounds and the tick are always in microseconds; frequencies are ppm scaled by 2^16.
    let phaseUnit = reading.status & STA_NANO != 0 ? 1e9 : 1e6
    let microseconds = 1e6
    let scaledPPM = 65536e6
    // In the order of `timexFamilies`.
    let values = [
        state == TIME_ERROR ? 0 : 1,
        Double(reading.offset) / phaseUnit,
        1 + Double(reading.freq) / scaledPPM,
        Double(reading.maxerror) / microseconds,
        Double(reading.esterror) / microseconds,
        Double(reading.status),
        Double(reading.constant),
        Double(reading.tick) / microseconds,
        Double(reading.ppsfreq) / scaledPPM,
        Double(reading.jitter) / phaseUnit,
        Double(reading.shift),
        Double(reading.stabil) / scaledPPM,
        Double(reading.jitcnt),
        Double(reading.calcnt),
        Double(reading.errcnt),
        Double(reading.stbcnt),
        Double(reading.tai),
    ]
    for (family, value) in zip(timexFamilies, values) { writer.family(family, onlySample: value) }
}

private let timexFamilies = [
    gauge("sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no)."),
    gauge("offset_seconds", "Time offset in between local system and reference clock."),
    gauge("frequency_adjustment_ratio", "Local clock frequency adjustment."),
    gauge("maxerror_seconds", "Maximum error in seconds."),
    gauge("estimated_error_seconds", "Estimated error in seconds."),
    gauge("status", "Value of the status array bits."),
    gauge("loop_time_constant", "Phase-locked loop time constant."),
    gauge("tick_seconds", "Seconds between clock ticks."),
    gauge("pps_frequency_hertz", "Pulse per second frequency."),
    gauge("pps_jitter_seconds", "Pulse per second jitter."),
    gauge("pps_shift_seconds", "Pulse per second interval duration."),
    gauge("pps_stability_hertz", "Pulse per second stability, average of recent frequency changes."),
    counter("pps_jitter_total", "Pulse per second count of jitter limit exceeded events."),
    counter("pps_calibration_total", "Pulse per second count of calibration intervals."),
    counter("pps_error_total", "Pulse per second count of calibration errors."),
    counter("pps_stability_exceeded_total", "Pulse per second count of stability limit exceeded events."),
    gauge("tai_offset_seconds", "International Atomic Time (TAI) offset."),
]

private func gauge(_ name: String, _ help: String) -> MetricFamily {
    MetricFamily("node_timex_" + name, help: help, type: .gauge)
}

private func counter(_ name: String, _ help: String) -> MetricFamily {
    MetricFamily("node_timex_" + name, help: help, type: .counter)
}
