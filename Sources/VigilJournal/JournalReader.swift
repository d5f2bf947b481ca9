public import Logging
import Synchronization
import VigilCore
import VigilForward

#if canImport(Glibc)
import Glibc
#endif

/// A batch the reader produced: entries of one tag, encoded back to back, and the cursor of the last
/// entry it covers (committed once the batch and every earlier one were acknowledged).
public struct JournalBatch: Sendable {
    public let tag: String
    /// Concatenated `[EventTime, record]` arrays.
    public let entries: [UInt8]
    public let count: Int
    /// The cursor to save once this batch is acknowledged.
    public let cursor: String
    /// `__REALTIME_TIMESTAMP` of the first entry, in microseconds.
    public let firstRealtime: UInt64
}

/// Asks a blocking reader to return as soon as it can.
public final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func stop() { self.flag.store(true, ordering: .relaxed) }

    public var isStopped: Bool { self.flag.load(ordering: .relaxed) }
}

/// Reads the journal into batches: positions at the saved cursor (or head / tail), follows new entries
/// with `sd_journal_wait`, and cuts a batch on its entry count, its byte size, its age or a change of
/// tag.
///
/// Every call blocks (file reads, `sd_journal_wait`) and must run on a dedicated thread, never on
/// Swift's cooperative pool. Calls are serialised by a lock, since an sd-journal is not thread-safe.
public final class JournalReader: Sendable {
    private let core: Mutex<ReaderCore>

    /// - Parameters:
    ///   - maxBatchBytes: the sink's own batch size limit; the smaller of it and the configuration's
    ///     applies.
    public init(
        configuration: JournalConfiguration,
        maxBatchBytes: Int,
        metrics: JournalMetrics,
        logger: Logger
    ) throws(TagTemplate.ParseError) {
        let template = try TagTemplate(configuration.tag, defaultValue: configuration.tagDefault)
        self.core = Mutex(
            ReaderCore(
                configuration: configuration,
                template: template,
                maxBytes: min(configuration.batching.maxBytes, maxBatchBytes),
                metrics: metrics,
                logger: logger
            )
        )
    }

    /// Opens the journal and positions the reader after `saved` (or at the configured start).
    public func open(saved: CursorStore.Loaded) throws(JournalError) {
        try self.core.withLock { (core) throws(JournalError) in try core.open(saved: saved) }
    }

    /// Reads until a batch is complete and returns it; returns nil once `stop` is set (an unfinished
    /// batch is dropped: its entries were not acknowledged, so they are read again after a restart).
    public func nextBatch(stop: StopSignal) -> JournalBatch? {
        self.core.withLock { $0.nextBatch(stop: stop) }
    }

    /// Updates the lag metric from the journal's newest entry, unless a read is in progress (which keeps
    /// it current itself). For while reading is paused.
    public func refreshLag() {
        _ = self.core.withLockIfAvailable { $0.refreshLag() }
    }

    /// Closes the journal.
    public func close() {
        self.core.withLock { $0.close() }
    }
}

/// An unfinished batch.
private struct BatchBuilder {
    var writer: MessagePackWriter
    let tag: [UInt8]
    let started = ContinuousClock.now
    var count = 0
    var firstRealtime: UInt64 = 0

    init(tag: [UInt8], capacity: Int) {
        self.writer = MessagePackWriter(capacity: capacity)
        self.tag = tag
    }

    func finish(cursor: UnsafeMutablePointer<CChar>?) -> JournalBatch {
        JournalBatch(
            tag: String(decoding: self.tag, as: UTF8.self),
            entries: self.writer.bytes,
            count: self.count,
            cursor: cursor.map { String(cString: $0) } ?? "",
            firstRealtime: self.firstRealtime
        )
    }
}

/// The reader's state; only touched under ``JournalReader``'s lock.
private final class ReaderCore {
    private let configuration: JournalConfiguration
    private let matches: [String]
    private let template: TagTemplate
    private let constantTag: [UInt8]?
    private let maxBytes: Int
    private let metrics: JournalMetrics
    private let logger: Logger
    private var journal: Journal?
    private var encoder: EntryEncoder
    private var builder: BatchBuilder?
    private var ready: [JournalBatch] = []
    private var tag: [UInt8] = []
    /// Cursors (malloc'd by libsystemd) of the entry before the last one read, and of the last one.
    private var previousCursor: UnsafeMutablePointer<CChar>?
    private var currentCursor: UnsafeMutablePointer<CChar>?
    /// The saved cursor the reader started after, until an entry has been read.
    private var startCursor: String?
    /// The reader stands on an entry that has not been read yet (found after a seek to a cursor).
    private var standingOnUnread = false
    /// The last batch ended full (by count or bytes): the reader is working through a backlog, and the
    /// partial batch it holds when it reaches the end of the journal is that backlog's tail, sent at
    /// once rather than after `maxWait` (which is for gathering a trickle of new entries).
    private var drainingBacklog = false
    /// Resident file-backed memory right after the journal was opened, and entries read since the
    /// last look at it (see ``JournalConfiguration/maxMappedBytes``).
    private let mappedMemory = MappedMemory()
    private var mappedBaseline = 0
    private var entriesSinceMappedCheck = 0
    /// A batch's buffer is allocated whole, room for one more entry included, so that it never grows
    /// (each growth copies it); at this size glibc maps it, and the pages never written cost nothing.
    private var builderCapacity: Int { self.maxBytes + 65536 }
    /// How often (in entries) the resident file-backed memory is looked at: a read of
    /// `/proc/self/statm` costs about a microsecond.
    private static let mappedCheckInterval = 512

    init(
        configuration: JournalConfiguration,
        template: TagTemplate,
        maxBytes: Int,
        metrics: JournalMetrics,
        logger: Logger
    ) {
        self.configuration = configuration
        self.matches = configuration.journalMatches
        self.template = template
        self.constantTag = template.constant.map { Array($0.utf8) }
        self.maxBytes = max(1, maxBytes)
        self.metrics = metrics
        self.logger = logger
        self.encoder = EntryEncoder(format: configuration.record, tagFields: template.fields)
    }

    deinit {
        free(self.previousCursor)
        free(self.currentCursor)
    }

    func open(saved: CursorStore.Loaded) throws(JournalError) {
        let journal = try Journal(source: self.configuration.source)
        if journal.hasNoFiles {
            self.logger.warning(
                "no journal file could be opened: none exists yet, or this user may read none (run vigil as root or in the systemd-journal group); entries are read once there is one",
                metadata: ["source": "\(self.configuration.source)"]
            )
        }
        try journal.addMatches(self.matches)
        let start = self.configuration.startPosition.rawValue
        switch saved {
        case .missing:
            self.logger.info(
                "no saved journal cursor; reading from the configured position",
                metadata: ["position": "\(start)", "cursor_file": "\(self.configuration.cursorFile ?? "none")"]
            )
            try self.seekStart(journal)
        case .corrupt(let reason):
            self.logger.error(
                "the journal cursor file is corrupt; reading from the configured position instead",
                metadata: [
                    "cursor_file": "\(self.configuration.cursorFile ?? "none")", "reason": "\(reason)",
                    "position": "\(start)",
                ]
            )
            try self.seekStart(journal)
        case .cursor(let cursor):
            do throws(JournalError) {
                try self.position(journal, after: cursor)
                self.startCursor = cursor
                self.logger.info("resuming the journal after the saved cursor", metadata: ["cursor": "\(cursor)"])
            } catch  where error.code == .cursor {
                self.logger.error(
                    "the saved journal cursor is not usable; reading from the configured position instead",
                    metadata: [
                        "cursor_file": "\(self.configuration.cursorFile ?? "none")", "err": "\(error)",
                        "position": "\(start)",
                    ]
                )
                try self.seekStart(journal)
            }
        }
        self.journal = journal
        self.mappedBaseline = self.mappedMemory.residentBytes()
        self.updateNewest(journal)
    }

    private func seekStart(_ journal: Journal) throws(JournalError) {
        switch self.configuration.startPosition {
        case .head:
            try journal.seekHead()
        case .tail:
            guard journal.newestRealtime() != nil else {
                // No journal file yet (journald or a namespace starting after vigil): whatever appears is
                // new, and is read from its start.
                try journal.seekHead()
                return
            }
            // Stand on the newest entry: it counts as read, and the next entry is the first new one.
            try journal.seekTail()
            _ = journal.previous()
        }
    }

    /// Positions the reader right after `cursor`: seek, step, and skip the entry only if it is the
    /// cursor's own. If the cursor's entry no longer exists (vacuumed, rotated away), the entry found
    /// instead is unread and is delivered, and the gap is reported.
    private func position(_ journal: Journal, after cursor: String) throws(JournalError) {
        // Whether the entry exists at all, whatever the filters (which may have changed since).
        journal.flushMatches()
        let exists: Bool
        do {
            try journal.seek(cursor: cursor)
            exists = journal.next() > 0 && journal.isCurrent(cursor: cursor)
        } catch {
            journal.flushMatches()
            try journal.addMatches(self.matches)
            throw error
        }
        journal.flushMatches()
        try journal.addMatches(self.matches)
        try journal.seek(cursor: cursor)
        let result = journal.next()
        guard result >= 0 else {
            throw JournalError(.read, "cannot read the entry after cursor \"\(cursor)\"", result: result)
        }
        self.standingOnUnread = result > 0 && !journal.isCurrent(cursor: cursor)
        if !exists {
            self.metrics.gaps.add(1, ordering: .relaxed)
            var metadata: Logger.Metadata = ["cursor": "\(cursor)"]
            if self.standingOnUnread, let next = journal.realtime() { metadata["next_entry_usec"] = "\(next)" }
            self.logger.warning(
                "the saved cursor's journal entry no longer exists (vacuumed or rotated away); entries between it and the next available entry may have been lost; continuing with the next available entry",
                metadata: metadata
            )
        }
    }

    func nextBatch(stop: StopSignal) -> JournalBatch? {
        if !self.ready.isEmpty { return self.ready.removeFirst() }
        while !stop.isStopped {
            if let builder = self.builder, builder.count > 0,
                builder.started.duration(to: .now) >= self.configuration.batching.maxWait
            {
                self.builder = nil
                self.drainingBacklog = false
                return self.finish(builder, cursor: self.currentCursor)
            }
            if self.entriesSinceMappedCheck >= Self.mappedCheckInterval {
                self.entriesSinceMappedCheck = 0
                if self.journal != nil,
                    self.mappedMemory.residentBytes() - self.mappedBaseline > self.configuration.maxMappedBytes
                {
                    self.mappedMemory.releaseJournalPages()
                    self.mappedBaseline = self.mappedMemory.residentBytes()
                    self.metrics.unmaps.add(1, ordering: .relaxed)
                }
            }
            guard let journal = self.journal else {
                self.reopen(stop: stop)
                continue
            }
            let result: Int32
            if self.standingOnUnread {
                self.standingOnUnread = false
                result = 1
            } else {
                result = journal.next()
            }
            if result < 0 {
                self.readFailed(JournalError(.read, "cannot move to the next journal entry", result: result))
                continue
            }
            if result == 0 {
                self.metrics.caughtUp.store(true, ordering: .relaxed)
                if self.drainingBacklog, let builder = self.builder, builder.count > 0 {
                    self.builder = nil
                    self.drainingBacklog = false
                    return self.finish(builder, cursor: self.currentCursor)
                }
                var timeout = Duration.milliseconds(250)  // how soon a stop is noticed
                if let builder = self.builder, builder.count > 0 {
                    timeout = min(timeout, self.configuration.batching.maxWait - builder.started.duration(to: .now))
                }
                guard timeout > .zero else { continue }
                let waited = journal.wait(microseconds: UInt64(timeout.seconds * 1e6))
                if waited < 0 {
                    self.readFailed(JournalError(.wait, "cannot wait for new journal entries", result: waited))
                }
                continue
            }
            self.metrics.caughtUp.store(false, ordering: .relaxed)
            self.read(journal)
            if !self.ready.isEmpty {
                self.updateNewest(journal)
                return self.ready.removeFirst()
            }
        }
        return nil
    }

    /// Reads the current entry into the batch under construction, finishing batches as limits demand.
    private func read(_ journal: Journal) {
        self.encoder.begin()
        journal.forEachField { self.encoder.add(field: $0) }
        let realtime = journal.realtime() ?? 0
        self.metrics.entriesRead.add(1, ordering: .relaxed)
        self.entriesSinceMappedCheck += 1
        self.metrics.bytesRead.add(self.encoder.fieldBytes, ordering: .relaxed)
        if self.encoder.droppedFields > 0 {
            self.metrics.fieldsDropped.add(self.encoder.droppedFields, ordering: .relaxed)
        }
        self.metrics.lastReadRealtime.store(realtime, ordering: .relaxed)
        free(self.previousCursor)
        self.previousCursor = self.currentCursor
        self.currentCursor = journal.currentCursor()
        self.startCursor = nil

        self.tag.removeAll(keepingCapacity: true)
        if let constantTag = self.constantTag {
            self.tag.append(contentsOf: constantTag)
        } else {
            self.encoder.renderTag(self.template, into: &self.tag)
        }
        if let builder = self.builder, builder.count > 0, builder.tag != self.tag {
            self.ready.append(self.finish(builder, cursor: self.previousCursor))
            self.builder = nil
        }
        var builder = self.builder ?? BatchBuilder(tag: self.tag, capacity: self.builderCapacity)
        self.builder = nil
        let start = builder.writer.bytes.count
        self.encoder.write(realtime: realtime, into: &builder.writer)
        let size = builder.writer.bytes.count - start
        if size > self.maxBytes {
            // No receiver would take it: sending it would only fail forever.
            builder.writer.bytes.removeSubrange(start...)
            self.metrics.entriesTooLarge.add(1, ordering: .relaxed)
            self.logger.warning(
                "journal entry dropped: its encoding is larger than the maximum batch size",
                metadata: [
                    "bytes": "\(size)", "max_bytes": "\(self.maxBytes)",
                    "cursor": "\(self.currentCursor.map { String(cString: $0) } ?? "")",
                ]
            )
            self.builder = builder
            return
        }
        if builder.writer.bytes.count > self.maxBytes {
            // The entry does not fit: the batch ends before it and the entry starts the next one.
            let entry = builder.writer.bytes[start...]
            var next = BatchBuilder(tag: self.tag, capacity: self.builderCapacity)
            next.writer.bytes.append(contentsOf: entry)
            builder.writer.bytes.removeSubrange(start...)
            self.ready.append(self.finish(builder, cursor: self.previousCursor))
            self.drainingBacklog = true
            builder = next
        }
        if builder.count == 0 { builder.firstRealtime = realtime }
        builder.count += 1
        if builder.count >= self.configuration.batching.maxEntries || builder.writer.bytes.count >= self.maxBytes {
            self.ready.append(self.finish(builder, cursor: self.currentCursor))
            self.drainingBacklog = true
        } else {
            self.builder = builder
        }
    }

    private func finish(_ builder: BatchBuilder, cursor: UnsafeMutablePointer<CChar>?) -> JournalBatch {
        builder.finish(cursor: cursor)
    }

    /// A read or wait failed: close the journal; the next round re-opens it after the last entry read
    /// (never at the head, which would send everything again).
    private func readFailed(_ error: JournalError) {
        self.metrics.readErrors.add(1, ordering: .relaxed)
        self.logger.error(
            "reading the journal failed; re-opening it and resuming after the last entry read",
            metadata: ["err": "\(error)"]
        )
        self.journal = nil
    }

    /// Opens the journal again and positions it after the last entry read (or where the first open did).
    private func reopen(stop: StopSignal) {
        do {
            let journal = try Journal(source: self.configuration.source)
            try journal.addMatches(self.matches)
            if let cursor = self.currentCursor.map({ String(cString: $0) }) ?? self.startCursor {
                try self.position(journal, after: cursor)
            } else {
                try self.seekStart(journal)
            }
            self.journal = journal
            self.mappedBaseline = self.mappedMemory.residentBytes()
            self.logger.info("journal re-opened")
        } catch {
            self.metrics.readErrors.add(1, ordering: .relaxed)
            self.logger.error("cannot re-open the journal; trying again in a second", metadata: ["err": "\(error)"])
            for _ in 0..<4 where !stop.isStopped { usleep(250_000) }
        }
    }

    func refreshLag() {
        guard let journal = self.journal else { return }
        journal.process()
        self.updateNewest(journal)
        if self.metrics.newestRealtime.load(ordering: .relaxed) > self.metrics.lastReadRealtime.load(ordering: .relaxed)
        {
            self.metrics.caughtUp.store(false, ordering: .relaxed)
        }
    }

    private func updateNewest(_ journal: Journal) {
        if let newest = journal.newestRealtime() { self.metrics.newestRealtime.store(newest, ordering: .relaxed) }
    }

    func close() {
        self.journal = nil
    }
}

/// The process' resident file-backed and shared memory (`/proc/self/statm`, third field): where the
/// journal file pages libsystemd maps show up (journal files on tmpfs, as in `/run/log/journal`, count
/// as shared memory).
private final class MappedMemory {
    private let file = KeptOpenFile("/proc/self/statm", end: .shortRead)
    private let reader = FileReader(capacity: 256)
    private let mapsReader = FileReader(capacity: 16384)
    private let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Bytes, or 0 when the file cannot be read (then journal pages are never released).
    func residentBytes() -> Int {
        guard let text = try? self.reader.read(self.file) else { return 0 }
        var fields = text.fields.makeIterator()
        _ = fields.next()
        _ = fields.next()
        guard let pages = fields.next()?.parseUInt64() else { return 0 }
        return Int(pages) * self.pageSize
    }

    /// Takes the pages of every mapped journal file (`*.journal`, `*.journal~`) out of the resident
    /// memory with `MADV_DONTNEED`. On a shared file mapping this only unmaps the pages
    /// from vigil: they stay in the page cache, libsystemd's mappings and pointers stay valid, and a page
    /// read again is mapped again. Closing the journal would release them too, but a re-open and seek
    /// touches pages of every journal file (about a megabyte each).
    func releaseJournalPages() {
        MappedFiles.dropResidentPages(reader: self.mapsReader) { _, path in isJournalFile(path) }
    }
}

private func isJournalFile(_ path: ArraySlice<UInt8>) -> Bool {
    for suffix in [".journal", ".journal~"] where path.count >= suffix.utf8.count {
        if path.suffix(suffix.utf8.count).elementsEqual(suffix.utf8) { return true }
    }
    return false
}
