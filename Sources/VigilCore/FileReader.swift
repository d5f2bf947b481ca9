import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error reading a file or directory under /proc, /sys or the root file system.
public struct FileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let errno: Int32
    public let operation: String

    public init(path: String, errno: Int32, operation: String) {
        self.path = path
        self.errno = errno
        self.operation = operation
    }

    /// The file does not exist (the source is absent on this host, or a process or container went away).
    public var isNotFound: Bool { self.errno == ENOENT || self.errno == ESRCH || self.errno == ENOTDIR }

    public var description: String {
        "\(self.operation) \(self.path): \(String(cString: strerror(self.errno)))"
    }
}

/// Reads pseudo-files into one reused buffer.
///
/// Kernel files report a size of 0, so the buffer grows as a read fills it. A reader belongs to one
/// thread at a time (each scrape lane takes one from the scraper's pool); the slices it returns share
/// its buffer, so a slice kept across the next read is copied on write rather than overwritten.
public final class FileReader: @unchecked Sendable {
    // @unchecked: not thread-safe; it is only ever handed from one thread to the next (through the
    // scraper's pool), never used by two at once.
    private var buffer: [UInt8]
    /// Small attribute files get their own buffer: collectors read them while still walking the lines
    /// of a big file, whose slice would otherwise force a copy of the big buffer on every such read.
    private var attributeBuffer: [UInt8] = []

    public init(capacity: Int = 16384) {
        self.buffer = [UInt8](repeating: 0, count: capacity)
    }

    /// Reads a whole file.
    public func read(_ path: String) throws(FileError) -> ArraySlice<UInt8> {
        let fd = try Self.open(path)
        defer { close(fd) }
        return try self.readAll(fd: fd, path: path)
    }

    /// Reads a whole file through a descriptor kept open across scrapes (`pread` at offset 0 makes
    /// the kernel generate /proc files afresh, and saves the open and close).
    public func read(_ file: KeptOpenFile) throws(FileError) -> ArraySlice<UInt8> {
        let fd = try file.descriptor()
        do {
            return try self.readAll(fd: fd, path: file.path, end: file.end)
        } catch {
            file.reset()
            throw error
        }
    }

    /// Reads a kept-open file that may not exist on this host (`/proc/net/snmp6` without IPv6); nil
    /// when it does not.
    public func readIfPresent(_ file: KeptOpenFile) throws(FileError) -> ArraySlice<UInt8>? {
        do {
            return try self.read(file)
        } catch  where error.isNotFound {
            return nil
        }
    }

    /// Reads at most `limit` bytes with one `read(2)`: sysfs attributes whose drivers may answer
    /// EAGAIN forever (hwmon) get one bounded attempt and no retry.
    public func readAttribute(_ path: String, limit: Int = 4096) throws(FileError) -> ArraySlice<UInt8> {
        let fd = try Self.open(path)
        defer { close(fd) }
        return try self.readOnce(fd: fd, limit: limit) { path }
    }

    /// One `read(2)` (or `pread(2)` at `offset`) of at most `limit` bytes from an open file; `path`
    /// names it in the error.
    func readOnce(
        fd: Int32,
        limit: Int,
        offset: off_t? = nil,
        path: () -> String
    ) throws(FileError) -> ArraySlice<UInt8> {
        if self.attributeBuffer.count < limit { self.attributeBuffer = [UInt8](repeating: 0, count: limit) }
        let count = self.attributeBuffer.withUnsafeMutableBytes { raw in
            if let offset { return pread(fd, raw.baseAddress, limit, offset) }
            return Glibc.read(fd, raw.baseAddress, limit)
        }
        guard count >= 0 else { throw FileError(path: path(), errno: Glibc.errno, operation: "read") }
        return self.attributeBuffer[0..<count]
    }

    /// Reads a one-line attribute and returns it without surrounding whitespace.
    public func readTrimmed(_ path: String) throws(FileError) -> ArraySlice<UInt8> {
        try self.readAttribute(path).trimmed()
    }

    /// Reads a one-line attribute that this host may lack, or that only root may read (DMI serials,
    /// `cpuinfo_cur_freq`): nil then.
    public func readTrimmedIfReadable(_ path: String) throws(FileError) -> ArraySlice<UInt8>? {
        do {
            return try self.readTrimmed(path)
        } catch  where error.isNotFound || error.errno == EACCES {
            return nil
        }
    }

    /// Reads an attribute holding one unsigned decimal number, or nil when it holds something else.
    public func readUInt64(_ path: String) throws(FileError) -> UInt64? {
        try self.readTrimmed(path).parseUInt64()
    }

    /// - Parameter end: what shows that a read reached the end of the file (see ``FileEnd``).
    private func readAll(fd: Int32, path: String, end: FileEnd = .emptyRead) throws(FileError) -> ArraySlice<UInt8> {
        var total = 0
        while true {
            // A seq_file of lines is asked for a page at least, so that a short read means what `end`
            // says; any other read needs room for one byte.
            var needed = 1
            if case .roomForLine = end { needed = 4096 }
            while self.buffer.count - total < needed {
                self.buffer.append(contentsOf: repeatElement(0, count: max(self.buffer.count, 64)))
            }
            // A file generated whole is asked for a page at most at first: the kernel allocates (and
            // clears) a buffer of the size asked for a sysctl. A bigger one (/proc/stat of many CPUs)
            // gets the rest of the buffer.
            let room = self.buffer.count - total
            let asked = end == .shortRead && total == 0 ? min(room, 4096) : room
            let count = self.buffer.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + total, asked, off_t(total))
            }
            if count < 0 {
                if Glibc.errno == EINTR { continue }
                throw FileError(path: path, errno: Glibc.errno, operation: "read")
            }
            if count == 0 { break }
            total += count
            switch end {
            case .emptyRead: continue
            case .shortRead: if count < asked { return self.buffer[0..<total] }
            case .roomForLine(let longest): if count <= 4096 - longest { return self.buffer[0..<total] }
            }
        }
        return self.buffer[0..<total]
    }

    static func open(_ path: String) throws(FileError) -> Int32 {
        while true {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd >= 0 { return fd }
            if Glibc.errno != EINTR { throw FileError(path: path, errno: Glibc.errno, operation: "open") }
        }
    }
}

/// What shows that a read of a kernel file reached its end, so that the read that would return
/// nothing is skipped. That read is not free: the kernel starts generating the file again (for
/// `/proc/net/udp` it walks the whole UDP hash table), and a sysctl allocates the buffer asked for.
public enum FileEnd: Sendable, Equatable {
    /// Only a read that returns nothing (regular files; `seq_file`s whose lines have no known bound).
    case emptyRead
    /// A read shorter than asked: the kernel generates the whole text in one go (`single_open` files
    /// such as `/proc/meminfo`, `/proc/stat` or `/proc/net/snmp`; sysctls under `/proc/sys`).
    case shortRead
    /// A read that leaves room in a page for another line of at most this many bytes: a `seq_file`
    /// of lines fills each read with whole lines up to its buffer, a page at least.
    case roomForLine(Int)
}

/// A host-wide file (`/proc/stat`, `/proc/meminfo`, …) whose descriptor stays open between scrapes.
public final class KeptOpenFile: Sendable {
    public let path: String
    let end: FileEnd
    private let fd = Mutex<Int32>(-1)

    public init(_ path: String, end: FileEnd = .emptyRead) {
        self.path = path
        self.end = end
    }

    deinit {
        let fd = self.fd.withLock { $0 }
        if fd >= 0 { close(fd) }
    }

    func descriptor() throws(FileError) -> Int32 {
        try self.fd.withLock { (fd: inout Int32) throws(FileError) -> Int32 in
            if fd < 0 { fd = try FileReader.open(self.path) }
            return fd
        }
    }

    /// The size `fstat` gives for the open file (for `/proc/self/fd`, Linux 6.2 and later: how many
    /// descriptors the process has open); nil when it cannot be opened.
    public func size() -> Int? {
        guard let fd = try? self.descriptor() else { return nil }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return nil }
        return Int(status.st_size)
    }

    /// Whether the file changed since the last call, as far as the kernel tells: mount tables
    /// (`/proc/<pid>/mountinfo`) report a mount or unmount with `POLLPRI` (proc(5)). Files that report
    /// nothing of the kind (regular files) always count as changed, and so does a file not yet open.
    public func hasChanged() -> Bool {
        let fd = self.fd.withLock { $0 }
        guard fd >= 0 else { return true }
        // A regular file is always writable (POLLOUT); a mount table never is.
        var entry = pollfd(fd: fd, events: Int16(POLLPRI | POLLOUT), revents: 0)
        guard poll(&entry, 1, 0) >= 0 else { return true }
        return entry.revents != 0
    }

    /// Drops the descriptor after an error so that the next read opens the file again.
    func reset() {
        self.fd.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }
}

/// Directory and metadata helpers that avoid Foundation.
public enum FileSystem {
    /// The names in a directory, without `.` and `..`, in directory order.
    public static func entries(of path: String) throws(FileError) -> [String] {
        guard let dir = opendir(path) else {
            throw FileError(path: path, errno: Glibc.errno, operation: "opendir")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let bytes = raw.bindMemory(to: CChar.self)
                return String(cString: bytes.baseAddress!)
            }
            if name == "." || name == ".." { continue }
            names.append(name)
        }
        return names
    }

    /// How many entries a directory has (without `.` and `..`), without building their names.
    public static func entryCount(of path: String) throws(FileError) -> Int {
        guard let dir = opendir(path) else {
            throw FileError(path: path, errno: Glibc.errno, operation: "opendir")
        }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let dot = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                raw[0] == UInt8(ascii: ".") && (raw[1] == 0 || (raw[1] == UInt8(ascii: ".") && raw[2] == 0))
            }
            if !dot { count += 1 }
        }
        return count
    }

    /// The names in a directory, sorted, or an empty list when the directory does not exist.
    public static func sortedEntriesIfPresent(of path: String) throws(FileError) -> [String] {
        do {
            return try Self.entries(of: path).sorted()
        } catch  where error.isNotFound {
            return []
        }
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The target of a symbolic link.
    public static func readLink(_ path: String) throws(FileError) -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count >= 0 else { throw FileError(path: path, errno: Glibc.errno, operation: "readlink") }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Modification time in seconds since the epoch.
    public static func modificationTime(_ path: String) throws(FileError) -> Double {
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileError(path: path, errno: Glibc.errno, operation: "stat") }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }
}
