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
    func write(_ name: String, _ help: String, _ value: Double, _ type: MetricType = .gauge) {
        writer.family(name, help: help, type: type)
        writer.sample(value)
    }
    write(
        "node_timex_sync_status",
        "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
        state == TIME_ERROR ? 0 : 1
    )
    write(
        "node_timex_offset_seconds",
        "Time offset in between local system and reference clock.",
        Double(reading.offset) / phaseUnit
    )
    write(
        "node_timex_frequency_adjustment_ratio",
        "Local clock frequency adjustment.",
        1 + Double(reading.freq) / scaledPPM
    )
    write("node_timex_maxerror_seconds", "Maximum error in seconds.", Double(reading.maxerror) / microseconds)
    write("node_timex_estimated_error_seconds", "Estimated error in seconds.", Double(reading.esterror) / microseconds)
    write("node_timex_status", "Value of the status array bits.", Double(reading.status))
    write("node_timex_loop_time_constant", "Phase-locked loop time constant.", Double(reading.constant))
    write("node_timex_tick_seconds", "Seconds between clock ticks.", Double(reading.tick) / microseconds)
    write("node_timex_pps_frequency_hertz", "Pulse per second frequency.", Double(reading.ppsfreq) / scaledPPM)
    write("node_timex_pps_jitter_seconds", "Pulse per second jitter.", Double(reading.jitter) / phaseUnit)
    write("node_timex_pps_shift_seconds", "Pulse per second interval duration.", Double(reading.shift))
    write(
        "node_timex_pps_stability_hertz",
        "Pulse per second stability, average of recent frequency changes.",
        Double(reading.stabil) / scaledPPM
    )
    write(
        "node_timex_pps_jitter_total",
        "Pulse per second count of jitter limit exceeded events.",
        Double(reading.jitcnt),
        .counter
    )
    write(
        "node_timex_pps_calibration_total",
        "Pulse per second count of calibration intervals.",
        Double(reading.calcnt),
        .counter
    )
    write(
        "node_timex_pps_error_total",
        "Pulse per second count of calibration errors.",
        Double(reading.errcnt),
        .counter
    )
    write(
        "node_timex_pps_stability_exceeded_total",
        "Pulse per second count of stability limit exceeded events.",
        Double(reading.stbcnt),
        .counter
    )
    write("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", Double(reading.tai))
}
