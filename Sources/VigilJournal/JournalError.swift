#if canImport(Glibc)
import Glibc
#endif

/// A failure of a libsystemd journal call: what was being done, on what, and the errno libsystemd
/// returned.
public struct JournalError: Error, CustomStringConvertible, Equatable {
    /// What went wrong, extensible without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case open, match, seek, read, wait, cursor
        }

        private let value: Value

        /// Opening the journal (`sd_journal_open*`).
        public static let open = Code(value: .open)
        /// Adding a match (`sd_journal_add_match`).
        public static let match = Code(value: .match)
        /// Positioning the reader (`sd_journal_seek_*`).
        public static let seek = Code(value: .seek)
        /// Moving to or reading an entry (`sd_journal_next`, `sd_journal_get_*`).
        public static let read = Code(value: .read)
        /// Waiting for new entries (`sd_journal_wait`).
        public static let wait = Code(value: .wait)
        /// A cursor that libsystemd cannot parse.
        public static let cursor = Code(value: .cursor)

        public var description: String {
            switch self.value {
            case .open: "open"
            case .match: "match"
            case .seek: "seek"
            case .read: "read"
            case .wait: "wait"
            case .cursor: "cursor"
            }
        }
    }

    public let code: Code
    /// What was being done, naming the journal, match or cursor concerned.
    public let message: String
    /// The errno (positive) that libsystemd returned as `-errno`.
    public let errno: Int32

    public init(code: Code, message: String, errno: Int32) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// Builds the error from a libsystemd return value (`-errno`).
    init(_ code: Code, _ message: String, result: Int32) {
        self.init(code: code, message: message, errno: -result)
    }

    public var description: String {
        "\(self.message): \(String(cString: strerror(self.errno)))"
    }
}
