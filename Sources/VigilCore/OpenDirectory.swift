#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A directory opened for opening several files inside it by name (`openat`).
///
/// Opening `/sys/class/net/eth0/mtu` by path makes the kernel resolve every component and the
/// `class/net/eth0` symlink again for each attribute; relative to an open directory it looks up one
/// name. The descriptor is closed when the value goes away.
public struct OpenDirectory: ~Copyable {
    /// The directory's path, for error messages.
    public let path: String
    fileprivate let fd: Int32

    /// Opens a directory by path.
    public init(_ path: String) throws(FileError) {
        self.path = path
        self.fd = try openRetrying(AT_FDCWD, path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC) { path }
    }

    /// Opens the directory `name` inside `parent` (`ENOTDIR` when it is a file).
    public init(_ name: String, in parent: borrowing OpenDirectory) throws(FileError) {
        let path = parent.path + "/" + name
        self.path = path
        self.fd = try openRetrying(parent.fd, name, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC) { path }
    }

    deinit {
        close(self.fd)
    }
}

/// A fixed set of files in one directory (sysfs attributes of a device), opened once and read with
/// `pread` at offset 0, which makes sysfs and procfs generate the value afresh.
///
/// Re-opening costs the kernel about three times the read itself, so a collector that reads the
/// same attributes every scrape can keep them open. The descriptors never change and are closed
/// only when the last reference goes away, so concurrent scrapes may share one instance; after a
/// device is removed its reads fail with `ENODEV` and the owner drops the instance.
public final class KeptOpenAttributes: Sendable {
    /// The directory's path, for error messages.
    public let path: String
    /// The file names, in the order given.
    public let names: [String]
    /// One descriptor per name; -1 for a file that does not exist.
    private let fds: [Int32]

    /// Opens `names` inside `directory`; a name that does not exist (or may not be opened) is
    /// remembered as absent.
    ///
    /// - Throws: any other error opening a file (e.g. `EMFILE`), after closing what it opened.
    public init(_ names: [String], in directory: borrowing OpenDirectory) throws(FileError) {
        let path = directory.path
        self.path = path
        self.names = names
        var fds: [Int32] = []
        fds.reserveCapacity(names.count)
        for name in names {
            do {
                fds.append(try openRetrying(directory.fd, name, flags: O_RDONLY | O_CLOEXEC) { path + "/" + name })
            } catch  where error.isNotFound || error.errno == EACCES || error.errno == EPERM {
                fds.append(-1)
            } catch {
                for fd in fds where fd >= 0 { close(fd) }
                throw error
            }
        }
        self.fds = fds
    }

    deinit {
        for fd in self.fds where fd >= 0 { close(fd) }
    }

    /// Whether the file at `index` exists.
    public func exists(_ index: Int) -> Bool { self.fds[index] >= 0 }

    fileprivate func descriptor(_ index: Int) -> Int32 { self.fds[index] }
}

extension FileReader {
    /// Reads at most `limit` bytes of the file at `index` with one `pread` at offset 0 (one bounded
    /// attempt, as ``readAttribute(_:limit:)``); nil when the file does not exist.
    public func readAttribute(
        _ index: Int,
        of files: KeptOpenAttributes,
        limit: Int = 4096
    ) throws(FileError) -> ArraySlice<UInt8>? {
        let fd = files.descriptor(index)
        guard fd >= 0 else { return nil }
        return try self.readOnce(fd: fd, limit: limit, offset: 0) { files.path + "/" + files.names[index] }
    }
}

/// `openat` retried on EINTR; `path` names the file in the error.
private func openRetrying(
    _ directory: Int32,
    _ name: String,
    flags: Int32,
    path: () -> String
) throws(FileError) -> Int32 {
    while true {
        let fd = openat(directory, name, flags)
        if fd >= 0 { return fd }
        if errno != EINTR { throw FileError(path: path(), errno: errno, operation: "open") }
    }
}
