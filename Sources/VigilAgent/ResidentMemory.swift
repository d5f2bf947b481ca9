import CMalloc
import Synchronization
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// Keeps vigil's resident memory to what it uses.
///
/// Three things inflate it without being needed:
/// - One malloc arena per thread. A scrape allocates on its lanes' threads and frees on the event loop's;
///   glibc then keeps freed memory in several arenas (measured: 1.5 MiB in use, 13 MiB resident after a
///   few hundred scrapes). vigil allocates little and from few threads: one arena serves it (set first
///   thing in `main`, before any thread starts).
/// - Start-up code. Reading the configuration, building collectors, compiling their regular expressions
///   and the first scrape run code that is never needed again; the kernel maps code in 64 KiB runs
///   ("fault-around") and it stays resident — several MiB. After the first scrape, vigil drops the pages
///   of its read-only executable mappings (`MADV_DONTNEED`: they are clean copies of the files, so
///   nothing is lost); what the steady state uses faults back in.
/// - Freed heap pages inside the arena; `malloc_trim` returns them, at most ten times a second and never
///   on the event loop.
enum ResidentMemory {
    private static let startupReleased = Atomic<Bool>(false)
    private static let lastTrim = Atomic<Int64>(0)
    private static let trimInterval: Int64 = 100_000_000

    /// Drops the start-up code pages, once; later calls do nothing.
    static func releaseStartupPages() {
        guard !Self.startupReleased.exchange(true, ordering: .relaxed) else { return }
        guard let maps = try? FileReader().read("/proc/self/maps") else { return }
        for line in maps.lines {
            var fields = line.fields
            guard let range = fields.next(), let permissions = fields.next(), permissions.equals("r-xp") else {
                continue
            }
            _ = fields.next()  // offset
            _ = fields.next()  // device
            guard let inode = fields.next(), !inode.equals("0"), let path = fields.next(),
                path.first == UInt8(ascii: "/"), let (start, end) = range.splitOnce(UInt8(ascii: "-")),
                let low = start.parseHex(), let high = end.parseHex(), high > low
            else { continue }
            madvise(UnsafeMutableRawPointer(bitPattern: UInt(low)), Int(high - low), MADV_DONTNEED)
        }
        malloc_trim(0)
    }

    /// Returns freed heap pages to the kernel if that has not been done in the last 100 ms.
    /// Runs the trim on a pool thread.
    static func trimHeapSoon() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nanoseconds = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        let last = Self.lastTrim.load(ordering: .relaxed)
        guard nanoseconds - last >= Self.trimInterval,
            Self.lastTrim.compareExchange(expected: last, desired: nanoseconds, ordering: .relaxed).exchanged
        else { return }
        BlockingPool.shared.submit { malloc_trim(0) }
    }
}
