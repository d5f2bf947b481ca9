import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A cgroup's directory in one hierarchy: the hierarchy's mount point, opened once per scrape, and
/// the cgroup's path below it.
struct CgroupDirectory {
    fileprivate let root: Int32
    fileprivate let mountPath: String
    /// The cgroup's path without its leading `/`; empty for the root cgroup.
    fileprivate let relative: String
}

/// Reads cgroup files with one `openat`, one `read` and one `close` each, relative to their
/// hierarchy's mount point so that the kernel walks only the cgroup's own path, with the path built
/// in a reused buffer rather than a String per file.
///
/// The bytes returned are a slice of the reader's buffer, valid until the next read. A reader
/// belongs to one scrape.
final class CgroupFileReader {
    private var buffer = [UInt8](repeating: 0, count: 65536)
    private var path = [CChar](repeating: 0, count: 4096)
    private var roots: [String: Int32] = [:]

    init() {}

    deinit {
        for fd in self.roots.values where fd >= 0 { close(fd) }
    }

    /// The directory of a cgroup in the hierarchy mounted at `mount`, from its path without the
    /// leading `/` (`docker/<id>`, empty for the root); nil when the hierarchy cannot be opened.
    func directory(_ mount: CgroupMount?, _ relative: String) -> CgroupDirectory? {
        guard let mount else { return nil }
        let root: Int32
        if let known = self.roots[mount.path] {
            root = known
        } else {
            root = open(mount.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            self.roots[mount.path] = root
        }
        guard root >= 0 else { return nil }
        return CgroupDirectory(root: root, mountPath: mount.path, relative: relative)
    }

    /// Reads a file of a cgroup directory (`name` may hold a sub-directory: `container/cgroup.procs`).
    func read(_ directory: CgroupDirectory, _ name: String) throws(FileError) -> ArraySlice<UInt8> {
        self.setPath(directory, name)
        let fd = self.path.withUnsafeBufferPointer { openat(directory.root, $0.baseAddress!, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw self.error(directory, name, operation: "open") }
        defer { close(fd) }
        var total = 0
        while true {
            let count = self.buffer.withUnsafeMutableBytes { raw in
                Glibc.read(fd, raw.baseAddress! + total, raw.count - total)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw self.error(directory, name, operation: "read")
            }
            total += count
            // Pseudo-files hand over all they hold in one read when it fits: a short read is the end.
            if count == 0 || total < self.buffer.count { break }
            self.buffer.append(contentsOf: repeatElement(0, count: self.buffer.count))
        }
        return self.buffer[0..<total]
    }

    /// Whether the cgroup's directory still exists.
    func exists(_ directory: CgroupDirectory) -> Bool {
        guard !directory.relative.isEmpty else { return true }
        self.setPath(directory, nil)
        return self.path.withUnsafeBufferPointer { faccessat(directory.root, $0.baseAddress!, F_OK, 0) } == 0
    }

    /// Writes `relative/name` (or `.` for the root's own directory) and a NUL into the path buffer.
    private func setPath(_ directory: CgroupDirectory, _ name: String?) {
        var relative = directory.relative
        var name = name ?? (relative.isEmpty ? "." : "")
        let needed = relative.utf8.count + name.utf8.count + 2
        if needed > self.path.count { self.path = [CChar](repeating: 0, count: needed) }
        self.path.withUnsafeMutableBytes { path in
            var index = relative.withUTF8 { bytes in
                path.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                return bytes.count
            }
            if index > 0 && !name.isEmpty {
                path[index] = UInt8(ascii: "/")
                index += 1
            }
            index += name.withUTF8 { bytes in
                (path.baseAddress! + index).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                return bytes.count
            }
            path[index] = 0
        }
    }

    private func error(_ directory: CgroupDirectory, _ name: String, operation: String) -> FileError {
        let code = errno
        let cgroup = directory.relative.isEmpty ? "" : "/" + directory.relative
        return FileError(path: directory.mountPath + cgroup + "/" + name, errno: code, operation: operation)
    }
}
