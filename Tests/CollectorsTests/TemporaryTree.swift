import Foundation
import VigilCore

/// A fixture tree written by a test (`/tmp/vigil-proc-*`), for files that change between collections.
/// Files are rewritten in place, so that descriptors kept open across scrapes see the new content.
final class TemporaryTree {
    let path: String

    init() throws {
        var template = Array("/tmp/vigil-proc-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        self.path = String(cString: created)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: self.path)
    }

    /// Path roots into this tree, as `fixtureRoots` gives for a recorded one.
    var roots: PathRoots {
        PathRoots(
            procfs: self.path + "/proc",
            sysfs: self.path + "/sys",
            rootfs: self.path,
            udevData: self.path + "/udev"
        )
    }

    /// Writes (or rewrites in place) a file: `write("proc/stat", "cpu0 1 2 3 4\n")`.
    func write(_ relativePath: String, _ text: String) throws {
        let file = self.path + "/" + relativePath
        try FileManager.default.createDirectory(
            atPath: String(file[..<file.lastIndex(of: "/")!]),
            withIntermediateDirectories: true
        )
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw CocoaError(.fileWriteUnknown) }
    }
}
