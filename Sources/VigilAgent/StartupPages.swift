import Synchronization
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// Gives back the code pages that only start-up touched.
///
/// Reading the configuration, building collectors, compiling their regular expressions and the first
/// scrape run code that is never needed again; the kernel maps it in 64 KiB runs ("fault-around") and it
/// stays resident — several MiB of vigil's RSS. Once start-up is over, vigil drops its executable
/// mappings' pages (`MADV_DONTNEED` on the read-only, executable file mappings: they are clean copies of
/// the files, so nothing is lost); what the steady state uses faults back in at the next scrape.
enum StartupPages {
    private static let released = Atomic<Bool>(false)

    /// Drops the pages once; later calls do nothing.
    static func releaseOnce() {
        guard !Self.released.exchange(true, ordering: .relaxed) else { return }
        guard let maps = try? FileReader().read("/proc/self/maps") else { return }
        for line in maps.lines {
            var fields = line.fields
            guard let range = fields.next(), let permissions = fields.next(), permissions.equals("r-xp") else {
                continue
            }
            _ = fields.next()  // offset
            _ = fields.next()  // device
            guard let inode = fields.next(), !inode.equals("0"), let path = fields.next(),
                path.first == UInt8(ascii: "/"),
                let (start, end) = range.splitOnce(UInt8(ascii: "-")), let low = start.parseHex(),
                let high = end.parseHex(),
                high > low
            else { continue }
            madvise(UnsafeMutableRawPointer(bitPattern: UInt(low)), Int(high - low), MADV_DONTNEED)
        }
    }
}
