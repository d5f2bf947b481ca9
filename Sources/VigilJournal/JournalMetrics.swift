import Synchronization
public import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// The log pipeline's own metrics (`vigil_journal_*`): what was read, what is in flight, where the
/// saved cursor stands, and what went wrong. Updated lock-free by the reader and the pipeline,
/// written on every scrape.
public final class JournalMetrics: MetricSource {
    let entriesRead = Atomic<Int>(0)
    let bytesRead = Atomic<Int>(0)
    let gaps = Atomic<Int>(0)
    let readErrors = Atomic<Int>(0)
    let unmaps = Atomic<Int>(0)
    let entriesTooLarge = Atomic<Int>(0)
    let fieldsDropped = Atomic<Int>(0)
    let batchesSent = Atomic<Int>(0)
    let batchesAcked = Atomic<Int>(0)
    let entriesAcked = Atomic<Int>(0)
    let deliveryErrors = Atomic<Int>(0)
    let cursorCommits = Atomic<Int>(0)
    let cursorCommitErrors = Atomic<Int>(0)
    let batchesInFlight = Atomic<Int>(0)
    let readingPaused = Atomic<Int>(0)
    /// Microseconds since the epoch; 0 while unknown.
    let newestRealtime = Atomic<UInt64>(0)
    let lastReadRealtime = Atomic<UInt64>(0)
    let caughtUp = Atomic<Bool>(false)
    /// `__REALTIME_TIMESTAMP` of the oldest entry read and not yet acknowledged; 0 when there is none.
    let oldestPendingRealtime = Atomic<UInt64>(0)
    /// Wall-clock microseconds of the last successful cursor write; 0 before the first.
    let lastCommitTime = Atomic<UInt64>(0)
    let window: Int

    public init(window: Int) {
        self.window = window
    }

    /// Seconds the reader is behind the journal's newest entry: 0 when it has read everything that
    /// matches. While reading is paused, an upper bound (the newest entry may not match the filters).
    public var lagSeconds: Double {
        if self.caughtUp.load(ordering: .relaxed) { return 0 }
        let newest = self.newestRealtime.load(ordering: .relaxed)
        let read = self.lastReadRealtime.load(ordering: .relaxed)
        guard newest > read, read > 0 else { return 0 }
        return Double(newest - read) / 1e6
    }

    /// Seconds since the oldest entry read but not yet acknowledged was written to the journal; 0 when
    /// every entry read has been acknowledged.
    public var cursorAgeSeconds: Double {
        let oldest = self.oldestPendingRealtime.load(ordering: .relaxed)
        guard oldest > 0 else { return 0 }
        let now = realtimeMicroseconds()
        return now > oldest ? Double(now - oldest) / 1e6 : 0
    }

    public func write(into writer: inout MetricWriter) {
        func counter(_ name: String, _ help: String, _ value: Int) {
            writer.family(name, help: help, type: .counter)
            writer.sample(Double(value))
        }
        func gauge(_ name: String, _ help: String, _ value: Double) {
            writer.family(name, help: help, type: .gauge)
            writer.sample(value)
        }
        counter("vigil_journal_entries_read_total", "Journal entries read.", self.entriesRead.load(ordering: .relaxed))
        counter(
            "vigil_journal_bytes_read_total",
            "Bytes of journal field data read (NAME=value, as stored in the journal).",
            self.bytesRead.load(ordering: .relaxed)
        )
        gauge(
            "vigil_journal_lag_seconds",
            "Seconds the reader is behind the journal's newest entry (0 when everything matching was read).",
            self.lagSeconds
        )
        gauge(
            "vigil_journal_cursor_age_seconds",
            "Seconds since the oldest entry read but not yet acknowledged was written to the journal (0 when all read entries are acknowledged).",
            self.cursorAgeSeconds
        )
        counter(
            "vigil_journal_gaps_total",
            "Times the saved cursor's entry no longer existed (vacuumed or rotated away): entries between it and the next one may be lost.",
            self.gaps.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_read_errors_total",
            "Journal read or wait errors; after each the journal is re-opened at the last entry read.",
            self.readErrors.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_unmaps_total",
            "Times the journal file pages libsystemd mapped were taken out of the resident memory (MADV_DONTNEED).",
            self.unmaps.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_entries_too_large_total",
            "Entries dropped because their encoding alone exceeds the maximum batch size.",
            self.entriesTooLarge.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_fields_dropped_total",
            "Fields left out of records because an entry had more than the maximum field count.",
            self.fieldsDropped.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_batches_sent_total",
            "Batches handed to the forward output.",
            self.batchesSent.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_batches_acked_total",
            "Batches acknowledged by a receiver.",
            self.batchesAcked.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_entries_acked_total",
            "Entries in batches acknowledged by a receiver.",
            self.entriesAcked.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_delivery_errors_total",
            "Unexpected failures of the forward output; the batch is sent again after a pause.",
            self.deliveryErrors.load(ordering: .relaxed)
        )
        gauge(
            "vigil_journal_batches_in_flight",
            "Batches sent or acknowledged whose cursor is not yet committed (at most the window).",
            Double(self.batchesInFlight.load(ordering: .relaxed))
        )
        gauge(
            "vigil_journal_window_batches",
            "How many batches may be in flight before reading pauses.",
            Double(self.window)
        )
        gauge(
            "vigil_journal_reading_paused",
            "1 while reading is paused because the window of unacknowledged batches is full (receivers down or slow).",
            Double(self.readingPaused.load(ordering: .relaxed))
        )
        counter(
            "vigil_journal_cursor_commits_total",
            "Times the cursor of acknowledged entries was written to disk.",
            self.cursorCommits.load(ordering: .relaxed)
        )
        counter(
            "vigil_journal_cursor_commit_errors_total",
            "Failed writes of the cursor file (acknowledged entries would be sent again after a restart).",
            self.cursorCommitErrors.load(ordering: .relaxed)
        )
        let lastCommit = self.lastCommitTime.load(ordering: .relaxed)
        gauge(
            "vigil_journal_cursor_commit_timestamp_seconds",
            "Time of the last successful cursor write, seconds since the epoch (0 before the first).",
            Double(lastCommit) / 1e6
        )
    }
}

/// Wall-clock time in microseconds since the epoch.
func realtimeMicroseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
}
