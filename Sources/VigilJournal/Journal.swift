import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// An open sd-journal handle: the thin layer over libsystemd that the reader drives.
///
/// An sd-journal is not thread-safe: one thread at a time uses it (the reader's lock guarantees it).
final class Journal {
    private let handle: OpaquePointer
    let source: JournalConfiguration.Source

    /// Opens the journal of `source` and raises the data threshold, so that values of any length are
    /// returned whole (libsystemd truncates them at 64 KiB by default).
    init(source: JournalConfiguration.Source) throws(JournalError) {
        var handle: OpaquePointer?
        let result: Int32
        let localOnly = Int32(SD_JOURNAL_LOCAL_ONLY)
        switch source {
        case .local:
            result = sd_journal_open(&handle, localOnly)
        case .directory(let path):
            result = sd_journal_open_directory(&handle, path, 0)
        case .files(let paths):
            result = withCStrings(paths) { sd_journal_open_files(&handle, $0, 0) }
        case .namespace(let name):
            result = sd_journal_open_namespace(&handle, name, localOnly)
        }
        guard result >= 0, let handle else {
            throw JournalError(.open, "cannot open the journal (\(source))", result: result)
        }
        self.handle = handle
        self.source = source
        let threshold = sd_journal_set_data_threshold(handle, 0)
        guard threshold >= 0 else {
            sd_journal_close(handle)
            throw JournalError(.open, "cannot raise the data threshold of the journal (\(source))", result: threshold)
        }
    }

    deinit {
        sd_journal_close(self.handle)
    }

    /// Whether no journal file is open: none exists yet, or none may be read by this process (neither
    /// root nor in the systemd-journal group), which libsystemd does not report as an error.
    var hasNoFiles: Bool {
        var bytes: UInt64 = 0
        return sd_journal_get_usage(self.handle, &bytes) >= 0 && bytes == 0
    }

    /// Adds the matches in one conjunction: libsystemd ORs matches on the same field and ANDs
    /// different fields, as journalctl does.
    func addMatches(_ matches: [String]) throws(JournalError) {
        for match in matches {
            var match = match
            let result = match.withUTF8 { sd_journal_add_match(self.handle, $0.baseAddress, $0.count) }
            guard result >= 0 else {
                throw JournalError(.match, "cannot add the journal match \"\(match)\"", result: result)
            }
        }
    }

    func flushMatches() {
        sd_journal_flush_matches(self.handle)
    }

    func seekHead() throws(JournalError) {
        let result = sd_journal_seek_head(self.handle)
        guard result >= 0 else { throw JournalError(.seek, "cannot seek to the head of the journal", result: result) }
    }

    func seekTail() throws(JournalError) {
        let result = sd_journal_seek_tail(self.handle)
        guard result >= 0 else { throw JournalError(.seek, "cannot seek to the tail of the journal", result: result) }
    }

    /// Positions the reader at the cursor's location; the next ``next()`` returns the cursor's entry if
    /// it still exists (and matches), else the first entry after that location.
    func seek(cursor: String) throws(JournalError) {
        let result = sd_journal_seek_cursor(self.handle, cursor)
        guard result >= 0 else {
            throw JournalError(
                result == -EINVAL ? .cursor : .seek,
                "cannot seek to cursor \"\(cursor)\"",
                result: result
            )
        }
    }

    /// Moves to the next entry: 1 if there is one, 0 at the end, a negative errno on failure.
    func next() -> Int32 { sd_journal_next(self.handle) }

    /// Moves to the previous entry: 1 if there is one, 0 at the start, a negative errno on failure.
    func previous() -> Int32 { sd_journal_previous(self.handle) }

    /// Whether the current entry is the one the cursor names.
    func isCurrent(cursor: String) -> Bool { sd_journal_test_cursor(self.handle, cursor) > 0 }

    /// The current entry's cursor as a C string that the caller frees, or nil.
    func currentCursor() -> UnsafeMutablePointer<CChar>? {
        var cursor: UnsafeMutablePointer<CChar>?
        guard sd_journal_get_cursor(self.handle, &cursor) >= 0 else { return nil }
        return cursor
    }

    /// The current entry's `__REALTIME_TIMESTAMP` in microseconds, or nil.
    func realtime() -> UInt64? {
        var usec: UInt64 = 0
        guard sd_journal_get_realtime_usec(self.handle, &usec) >= 0 else { return nil }
        return usec
    }

    /// Calls `body` with every field (`NAME=value` bytes) of the current entry. Fields libsystemd
    /// cannot return (an unsupported compression) are skipped, the others still delivered.
    func forEachField(_ body: (UnsafeRawBufferPointer) -> Void) {
        sd_journal_restart_data(self.handle)
        var data: UnsafeRawPointer?
        var length = 0
        while sd_journal_enumerate_available_data(self.handle, &data, &length) > 0 {
            if let data { body(UnsafeRawBufferPointer(start: data, count: length)) }
        }
    }

    /// The newest entry's `__REALTIME_TIMESTAMP` across the open files, ignoring matches.
    func newestRealtime() -> UInt64? {
        var from: UInt64 = 0
        var to: UInt64 = 0
        guard sd_journal_get_cutoff_realtime_usec(self.handle, &from, &to) > 0 else { return nil }
        return to
    }

    /// Processes pending changes (new or removed files), so that ``newestRealtime()`` sees them.
    func process() { _ = sd_journal_process(self.handle) }

    /// Waits up to `microseconds` for the journal to change; a negative errno on failure.
    func wait(microseconds: UInt64) -> Int32 { sd_journal_wait(self.handle, microseconds) }
}

/// Calls `body` with a NULL-terminated array of C strings.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { for copy in copies { free(copy) } }
    var pointers: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) }
    pointers.append(nil)
    return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}
