#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The file mappings of this process, as `/proc/self/maps` lists them.
public enum MappedFiles {
    /// Takes the pages of the file mappings `include` picks out of the resident memory
    /// (`MADV_DONTNEED`). Only for mappings whose pages are clean copies of their files (code, files
    /// mapped read-only or shared): they stay valid, and a page touched again is read back in.
    ///
    /// - Parameter include: gets a mapping's permissions (`r-xp`) and path (up to its first space; a
    ///   deleted file's ` (deleted)` is left off); anonymous mappings and pseudo-files (`[heap]`) are
    ///   never offered.
    public static func dropResidentPages(
        reader: FileReader,
        where include: (_ permissions: ArraySlice<UInt8>, _ path: ArraySlice<UInt8>) -> Bool
    ) {
        guard let maps = try? reader.read("/proc/self/maps") else { return }
        for line in maps.lines {
            var fields = line.fields
            guard let range = fields.next(), let permissions = fields.next() else { continue }
            _ = fields.next()  // offset
            _ = fields.next()  // device
            guard let inode = fields.next(), !inode.equals("0"), let path = fields.next(),
                path.first == UInt8(ascii: "/"), include(permissions, path),
                let (start, end) = range.splitOnce(UInt8(ascii: "-")),
                let low = start.parseHex(), let high = end.parseHex(), high > low
            else { continue }
            madvise(UnsafeMutableRawPointer(bitPattern: UInt(low)), Int(high - low), MADV_DONTNEED)
        }
    }
}
