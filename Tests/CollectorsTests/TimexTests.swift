import CClock
import Testing
import VigilCore

@testable import Collectors

@Suite struct TimexTests {
    @Test func namesHelpAndTypesAreNodeExportersOnThisHost() throws {
        let collected = try collect(TimexCollector.descriptor, roots: PathRoots())
        let reference = try golden("live-timex")
        expectSameFamilies(collected.families, reference, ignoringValuesOf: Set(reference.map(\.name)))
        #expect(collected.failures.isEmpty)
    }

    @Test func nanosecondReadingOfASynchronisedClock() throws {
        var reading = timex()
        reading.status = STA_PLL | STA_NANO
        reading.offset = -1_500_000  // ns
        reading.jitter = 2_500  // ns
        reading.freq = 12 * 65536  // 12 ppm
        reading.ppsfreq = -3 * 65536
        reading.stabil = 65536 / 2
        reading.maxerror = 16_000  // µs, whatever the resolution
        reading.esterror = 250
        reading.tick = 10_000
        reading.constant = 6
        reading.shift = 4
        reading.jitcnt = 11
        reading.calcnt = 2
        reading.errcnt = 3
        reading.stbcnt = 5
        reading.tai = 37
        let values = try samples(reading, state: TIME_OK)
        #expect(values["node_timex_sync_status"] == 1)
        #expect(values["node_timex_offset_seconds"] == -0.0015)
        #expect(values["node_timex_pps_jitter_seconds"] == 2.5e-6)
        #expect(values["node_timex_frequency_adjustment_ratio"] == 1.000012)
        #expect(values["node_timex_pps_frequency_hertz"] == -3e-6)
        #expect(values["node_timex_pps_stability_hertz"] == 0.5e-6)
        #expect(values["node_timex_maxerror_seconds"] == 0.016)
        #expect(values["node_timex_estimated_error_seconds"] == 0.00025)
        #expect(values["node_timex_tick_seconds"] == 0.01)
        #expect(values["node_timex_status"] == Double(STA_PLL | STA_NANO))
        #expect(values["node_timex_loop_time_constant"] == 6)
        #expect(values["node_timex_pps_shift_seconds"] == 4)
        #expect(values["node_timex_pps_jitter_total"] == 11)
        #expect(values["node_timex_pps_calibration_total"] == 2)
        #expect(values["node_timex_pps_error_total"] == 3)
        #expect(values["node_timex_pps_stability_exceeded_total"] == 5)
        #expect(values["node_timex_tai_offset_seconds"] == 37)
    }

    @Test func microsecondReadingOfAnUnsynchronisedClock() throws {
        var reading = timex()
        reading.status = STA_UNSYNC
        reading.offset = 1_500  // µs
        reading.jitter = 20
        reading.maxerror = 16_000_000
        let values = try samples(reading, state: TIME_ERROR)
        #expect(values["node_timex_sync_status"] == 0)
        #expect(values["node_timex_offset_seconds"] == 0.0015)
        #expect(values["node_timex_pps_jitter_seconds"] == 2e-5)
        #expect(values["node_timex_maxerror_seconds"] == 16)
        #expect(values["node_timex_frequency_adjustment_ratio"] == 1)
    }

    /// Every family's one value, by name.
    private func samples(_ reading: timex, state: Int32) throws -> [String: Double] {
        var writer = MetricWriter(format: .text)
        writeClockDiscipline(reading, state: state, into: &writer)
        let families = try parseExposition(writer.takeBytes()[...])
        #expect(families.allSatisfy { $0.samples.count == 1 })
        return Dictionary(uniqueKeysWithValues: families.map { ($0.name, $0.samples[0].value) })
    }
}
