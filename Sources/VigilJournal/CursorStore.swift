public import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// The journal cursor of the last acknowledged entry, kept in one file so that a restart, a crash or a
/// reboot resumes right after it.
///
/// The file holds the cursor text alone, as `journalctl --cursor-file` writes it, so that
/// `journalctl --after-cursor="$(cat FILE)"` shows what vigil has not delivered yet. A write goes to a
/// temporary file that is fsynced, renamed over the old one, and the directory fsynced: after a crash
/// the file holds either the old or the new cursor, never a torn one.
public struct CursorStore: Sendable {
    /// What the file held at start-up.
    public enum Loaded: Sendable, Equatable {
        /// No file: a first start.
        case missing
        case cursor(String)
        /// The file exists but does not hold a cursor; the reason says why.
        case corrupt(String)
    }

    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Reads the saved cursor.
    public func load() -> Loaded {
        let bytes: ArraySlice<UInt8>
        do {
            bytes = try FileReader(capacity: 1024).read(self.path)
        } catch {
            if error.isNotFound { return .missing }
            return .corrupt("cannot read it: \(error)")
        }
        let text = bytes.trimmed()
        guard !text.isEmpty else { return .corrupt("it is empty") }
        guard text.count <= 512 else { return .corrupt("it holds \(bytes.count) bytes, more than any cursor") }
        guard text.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .corrupt("it holds bytes that no cursor contains")
        }
        let cursor = String(decoding: text, as: UTF8.self)
        // Every cursor libsystemd writes has these parts; sd_journal_seek_cursor checks the rest.
        let keys = Set(cursor.split(separator: ";").compactMap { $0.split(separator: "=", maxSplits: 1).first })
        guard keys.isSuperset(of: ["s", "i", "b", "m", "t", "x"]) else {
            return .corrupt("\"\(cursor.prefix(80))\" is not a journal cursor")
        }
        return .cursor(cursor)
    }

    /// Writes `cursor` durably (temporary file, fsync, rename, fsync of the directory).
    public func save(_ cursor: String) throws(FileError) {
        let temporary = self.path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: temporary, errno: errno, operation: "open") }
        var text = cursor + "\n"
        let written = text.withUTF8 { utf8 -> Int32 in
            var offset = 0
            while offset < utf8.count {
                let result = write(fd, utf8.baseAddress! + offset, utf8.count - offset)
                if result < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += result
            }
            return 0
        }
        if written != 0 {
            close(fd)
            throw FileError(path: temporary, errno: written, operation: "write")
        }
        if fsync(fd) != 0 {
            let error = errno
            close(fd)
            throw FileError(path: temporary, errno: error, operation: "fsync")
        }
        close(fd)
        guard rename(temporary, self.path) == 0 else {
            throw FileError(path: self.path, errno: errno, operation: "rename")
        }
        let directory = self.directory
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw FileError(path: directory, errno: errno, operation: "open") }
        defer { close(directoryFD) }
        guard fsync(directoryFD) == 0 else { throw FileError(path: directory, errno: errno, operation: "fsync") }
    }

    /// Creates the directory of the file (and its parents) if it is missing.
    public func prepareDirectory() throws(FileError) {
        var path = self.directory.hasPrefix("/") ? "" : "."
        for component in self.directory.split(separator: "/", omittingEmptySubsequences: true) {
            path += "/" + component
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw FileError(path: path, errno: errno, operation: "mkdir")
            }
        }
        guard access(self.directory, W_OK) == 0 else {
            throw FileError(path: self.directory, errno: errno, operation: "access")
        }
    }

    private var directory: String {
        guard let slash = self.path.lastIndex(of: "/") else { return "." }
        return slash == self.path.startIndex ? "/" : String(self.path[..<slash])
    }
}
