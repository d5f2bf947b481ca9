import Synchronization
import VigilCore

/// One line of `/proc/<pid>/mountinfo` (proc(5)), with the kernel's octal escapes (`\040` for a space)
/// decoded in the paths and the source.
struct MountinfoEntry: Sendable, Equatable {
    var mountID: Int
    var parentID: Int
    var major: Int
    var minor: Int
    /// The directory of the file system that forms the root of this mount (a bind mount's subtree).
    var root: String
    var mountPoint: String
    /// Per-mount options (`rw,nosuid,relatime`).
    var mountOptions: String
    var fsType: String
    /// The device or other source (`/dev/sda1`, `tmpfs`, `server:/export`).
    var source: String
    /// Per-superblock options (`rw,errors=remount-ro`).
    var superOptions: String

    /// Whether the mount is read-only: `ro` in the mount or superblock options, or ext4's `emergency_ro`
    /// (Linux 6.15+: set in the superblock options after `errors=remount-ro` triggered).
    var isReadOnly: Bool {
        hasOption("ro", in: self.mountOptions) || hasOption("ro", in: self.superOptions)
            || hasOption("emergency_ro", in: self.superOptions)
    }
}

private func hasOption(_ option: String, in options: String) -> Bool {
    options.utf8.split(separator: UInt8(ascii: ",")).contains { $0.elementsEqual(option.utf8) }
}

/// Parses mountinfo. A line that does not have the documented shape is skipped: it costs that mount,
/// never the others.
func parseMountinfo(_ bytes: ArraySlice<UInt8>) -> [MountinfoEntry] {
    var entries: [MountinfoEntry] = []
    for line in bytes.lines {
        if let entry = parseMountinfoLine(line) { entries.append(entry) }
    }
    return entries
}

/// `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue`: the kernel
/// separates fields with single spaces, so an empty source still has its place.
private func parseMountinfoLine(_ line: ArraySlice<UInt8>) -> MountinfoEntry? {
    let fields = Array(line.split(byte: UInt8(ascii: " ")))
    // Six fixed fields, optional fields, the "-" separator, then type, source and super options.
    guard fields.count >= 10,
        let separator = fields[6...].firstIndex(where: { $0.equals("-") }),
        fields.count - separator >= 4,
        let mountID = fields[0].parseUInt64(),
        let parentID = fields[1].parseUInt64(),
        let (majorBytes, minorBytes) = fields[2].splitOnce(UInt8(ascii: ":")),
        let major = majorBytes.parseUInt64(),
        let minor = minorBytes.parseUInt64(),
        mountID <= UInt64(Int.max), parentID <= UInt64(Int.max), major <= UInt64(Int.max),
        minor <= UInt64(Int.max)
    else { return nil }
    return MountinfoEntry(
        mountID: Int(mountID),
        parentID: Int(parentID),
        major: Int(major),
        minor: Int(minor),
        root: unescapeOctal(fields[3]),
        mountPoint: unescapeOctal(fields[4]),
        mountOptions: fields[5].string,
        fsType: unescapeOctal(fields[separator + 1]),
        source: unescapeOctal(fields[separator + 2]),
        superOptions: fields[separator + 3].string
    )
}

/// Decodes the kernel's `\ooo` escapes (space, tab, newline and backslash in paths); any other
/// backslash stays as it is.
func unescapeOctal(_ bytes: ArraySlice<UInt8>) -> String {
    guard bytes.contains(UInt8(ascii: "\\")) else { return bytes.string }
    var decoded: [UInt8] = []
    decoded.reserveCapacity(bytes.count)
    var index = bytes.startIndex
    while index < bytes.endIndex {
        let byte = bytes[index]
        if byte == UInt8(ascii: "\\"), bytes.endIndex - index >= 4 {
            let digits = bytes[(index + 1)...(index + 3)].map { $0 &- UInt8(ascii: "0") }
            if digits.allSatisfy({ $0 < 8 }), digits[0] < 4 {
                decoded.append(digits[0] << 6 | digits[1] << 3 | digits[2])
                index += 4
                continue
            }
        }
        decoded.append(byte)
        index += 1
    }
    return String(decoding: decoded, as: UTF8.self)
}

extension ScrapeContext {
    /// The mounts of the host's init process (`<procfs>/1/mountinfo`, or `<procfs>/self/mountinfo`
    /// where PID 1 is hidden), shared by the collectors of a scrape and re-read only after a change.
    func mountinfo() throws -> [MountinfoEntry] {
        try self.shared.value("mountinfo") {
            try MountTable.forProcfs(self.paths).mounts(reader: self.reader)
        }
    }
}

/// A mount table kept between scrapes. mountinfo is pollable: the kernel reports a mount or unmount
/// as `POLLPRI` on the open file, so a scrape on a quiet host costs one `poll(2)` instead of the kernel
/// rendering every mount and vigil parsing it again.
final class MountTable: Sendable {
    private struct State {
        var file: KeptOpenFile?
        var mounts: [MountinfoEntry]?
    }

    private let paths: PathRoots
    private let state = Mutex(State())

    private init(paths: PathRoots) {
        self.paths = paths
    }

    private static let tables = Mutex<[String: MountTable]>([:])

    /// The table of one procfs (there is one host, but tests use several fixture trees).
    static func forProcfs(_ paths: PathRoots) -> MountTable {
        self.tables.withLock { tables in
            if let table = tables[paths.procfs] { return table }
            let table = MountTable(paths: paths)
            tables[paths.procfs] = table
            return table
        }
    }

    /// The mounts, read again when the kernel reported a change (or cannot report one).
    func mounts(reader: FileReader) throws -> [MountinfoEntry] {
        try self.state.withLock { (state: inout State) throws -> [MountinfoEntry] in
            let file: KeptOpenFile
            if let known = state.file {
                file = known
            } else {
                let primary = self.paths.proc("1/mountinfo")
                file = KeptOpenFile(FileSystem.exists(primary) ? primary : self.paths.proc("self/mountinfo"))
                state.file = file
            }
            if let mounts = state.mounts, !file.hasChanged() { return mounts }
            let mounts = parseMountinfo(try reader.read(file))
            state.mounts = mounts
            return mounts
        }
    }
}
