/// What the log pipeline reads from the journal and how it shapes and batches records: the `journal:`
/// section of the configuration file.
///
/// **Filters** combine as journalctl combines its matches: every filter becomes one or more
/// `FIELD=value` matches (`units` → `_SYSTEMD_UNIT=…`, `identifiers` → `SYSLOG_IDENTIFIER=…`,
/// `maxPriority` → `PRIORITY=0` … `PRIORITY=n`, `matches` as given); matches on the **same field are
/// ORed**, matches on **different fields are ANDed**. So `units: [a.service, b.service]` with
/// `maxPriority: 3` reads entries of either unit that are errors or worse; an entry without the field
/// a filter names never matches it (entries without `PRIORITY` are dropped by a priority filter, as
/// with `journalctl -p`). A `matches` entry on `_SYSTEMD_UNIT` joins the `units` alternatives.
public struct JournalConfiguration: Sendable {
    /// Which journal files to read.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// The local system and user journals (`sd_journal_open` with `SD_JOURNAL_LOCAL_ONLY`).
        case local
        /// The journal files in a directory (a container's `/var/log/journal/<machine-id>`, a copy).
        case directory(String)
        /// Explicit journal files.
        case files([String])
        /// A journald namespace (`systemd-journald@NAME`), without the default namespace.
        case namespace(String)

        public var description: String {
            switch self {
            case .local: "local journal"
            case .directory(let path): "directory \(path)"
            case .files(let paths): "files \(paths.joined(separator: ", "))"
            case .namespace(let name): "namespace \(name)"
            }
        }
    }

    /// Where reading starts when there is no saved cursor (or it is unusable).
    public enum StartPosition: String, Sendable {
        /// The oldest entry still in the journal: nothing that is still there is missed.
        case head
        /// Only entries written after vigil started.
        case tail
    }

    /// How journal fields become record keys and values.
    public struct RecordFormat: Sendable, Equatable {
        /// Lowercase the keys (`_SYSTEMD_UNIT` → `_systemd_unit`), as Fluent Bit's `lowercase`.
        public var lowercase: Bool
        /// Drop one leading underscore from keys (`_PID` → `PID`), as Fluent Bit's `strip_underscores`.
        /// Two fields that end up with the same key (`_PID` and `PID`) become one key with an array.
        public var stripUnderscores: Bool
        /// When not empty, only these journal fields (names as in the journal, before lowercasing or
        /// stripping) go into records.
        public var includeFields: [String]
        /// Journal fields left out of records (applied after `includeFields`).
        public var excludeFields: [String]
        /// At most this many fields per record; later fields of an entry are left out and counted.
        public var maxFields: Int

        public init(
            lowercase: Bool = false,
            stripUnderscores: Bool = false,
            includeFields: [String] = [],
            excludeFields: [String] = [],
            maxFields: Int = 1024
        ) {
            self.lowercase = lowercase
            self.stripUnderscores = stripUnderscores
            self.includeFields = includeFields
            self.excludeFields = excludeFields
            self.maxFields = maxFields
        }
    }

    /// When a batch is sent.
    public struct Batching: Sendable, Equatable {
        /// Entries per batch at most.
        public var maxEntries: Int
        /// Bytes of encoded entries per batch at most (also capped by the sink's own limit). An entry
        /// larger than this on its own is dropped and counted, since no receiver would take it.
        public var maxBytes: Int
        /// A batch that is not full is sent this long after its first entry was read, or as soon as the
        /// reader reaches the end of the journal right after full batches (the tail of a backlog).
        public var maxWait: Duration

        public init(maxEntries: Int = 5000, maxBytes: Int = 1_024_000, maxWait: Duration = .seconds(1)) {
            self.maxEntries = maxEntries
            self.maxBytes = maxBytes
            self.maxWait = maxWait
        }
    }

    public var source: Source
    /// `_SYSTEMD_UNIT` values to read (full unit names: `nginx.service`).
    public var units: [String]
    /// `SYSLOG_IDENTIFIER` values to read.
    public var identifiers: [String]
    /// Read only entries at least this severe: 0 (emerg) … 7 (debug); nil reads every entry.
    public var maxPriority: Int?
    /// More `FIELD=value` matches.
    public var matches: [String]
    public var startPosition: StartPosition
    /// Where the cursor of the last acknowledged entry is kept; nil keeps none (the dry run, which
    /// starts at ``startPosition`` and must not move the position of the real forwarder).
    public var cursorFile: String?
    public var record: RecordFormat
    /// The tag of each record: text with `${FIELD}` or `${FIELD:-default}` expansions of journal fields
    /// (names as in the journal). A field that is absent, empty or not UTF-8 expands to its default, or
    /// to ``tagDefault`` without one. Batches carry one tag, so a tag that differs between consecutive
    /// entries ends the batch: `journal.${_SYSTEMD_UNIT}` makes smaller batches on a busy host.
    public var tag: String
    /// The expansion of a `${FIELD}` without its own default whose field is absent.
    public var tagDefault: String
    public var batching: Batching
    /// How many batches may be sent and not yet acknowledged; when that many are, reading pauses
    /// (the journal is the buffer) until acks return. Batches in flight together may reach the receiver
    /// in any order (entries within a batch keep journal order); 1 keeps strict order, at the cost of a
    /// round trip per batch.
    public var window: Int
    /// The cursor is written to disk at most this often (acks in between only move it in memory);
    /// on shutdown the latest acknowledged position is always written.
    public var commitInterval: Duration
    /// On shutdown, how long batches in flight may still be acknowledged before they are abandoned
    /// (they are sent again after the next start).
    public var shutdownGrace: Duration
    /// How many bytes of journal file pages may become resident in vigil before the reader releases
    /// them (`MADV_DONTNEED` on the journal files' mappings). libsystemd maps journal files in 8 MiB
    /// windows and keeps up to 64 of them, and every page read stays resident until its window is
    /// unmapped: without this bound, reading a backlog would grow the resident memory by the size of the
    /// journal files read (up to 512 MiB).
    public var maxMappedBytes: Int

    public init(
        source: Source = .local,
        units: [String] = [],
        identifiers: [String] = [],
        maxPriority: Int? = nil,
        matches: [String] = [],
        startPosition: StartPosition = .head,
        cursorFile: String? = "/var/lib/vigil/journal.cursor",
        record: RecordFormat = RecordFormat(),
        tag: String = "journal",
        tagDefault: String = "unknown",
        batching: Batching = Batching(),
        window: Int = 4,
        commitInterval: Duration = .seconds(1),
        shutdownGrace: Duration = .seconds(5),
        maxMappedBytes: Int = 4 << 20
    ) {
        self.source = source
        self.units = units
        self.identifiers = identifiers
        self.maxPriority = maxPriority
        self.matches = matches
        self.startPosition = startPosition
        self.cursorFile = cursorFile
        self.record = record
        self.tag = tag
        self.tagDefault = tagDefault
        self.batching = batching
        self.window = window
        self.commitInterval = commitInterval
        self.shutdownGrace = shutdownGrace
        self.maxMappedBytes = maxMappedBytes
    }

    /// The journal matches the filters stand for, in the order they are added.
    public var journalMatches: [String] {
        var result = self.units.map { "_SYSTEMD_UNIT=\($0)" }
        result += self.identifiers.map { "SYSLOG_IDENTIFIER=\($0)" }
        if let maxPriority = self.maxPriority {
            result += (0...max(0, min(7, maxPriority))).map { "PRIORITY=\($0)" }
        }
        return result + self.matches
    }

    /// syslog priority names, as journalctl's `-p` takes them, by value.
    public static let priorityNames = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    /// Whether `name` is a journal field name a match may use: uppercase letters, digits and
    /// underscores, not starting with a digit, at most 64 bytes (libsystemd's rule).
    public static func isValidFieldName(_ name: some StringProtocol) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64, let first = name.utf8.first, !(0x30...0x39).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy { (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
    }
}
