import CMalloc
import NIOCore
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
/// - Freed heap pages inside the arena (a scrape's garbage, several MiB, sits between live blocks, where
///   glibc's automatic trimming of the heap's top does not reach); `malloc_trim` returns them.
enum ResidentMemory {
    private static let startupReleased = Atomic<Bool>(false)
    private static let trimPending = Atomic<Bool>(false)
    /// Free heap bytes below which a trim is not worth making.
    private static let worthTrimming = 1 << 20

    /// Drops the start-up code pages, once; later calls do nothing.
    static func releaseStartupPages() {
        guard !Self.startupReleased.exchange(true, ordering: .relaxed) else { return }
        MappedFiles.dropResidentPages(reader: FileReader()) { permissions, _ in permissions.equals("r-xp") }
        malloc_trim(0)
    }

    /// Returns freed heap pages to the kernel 100 ms after a scrape that left at least ``worthTrimming``
    /// bytes free in the heap: once for a burst of scrapes, and always after the last one, so that the
    /// steady state between scrapes is trimmed. The trim runs on a pool thread, never on the event loop.
    ///
    /// A host scrape leaves a few hundred KiB free, which the next scrape uses again: trimming it cost a
    /// scrape made every half second about 7% of its CPU time (two more thread wake-ups, and page faults
    /// to bring the pages back) for 0.1–0.3 MiB of steady RSS (both measured with `make bench-node`). A
    /// thousand containers' scrape leaves megabytes.
    static func trimHeapSoon(on eventLoop: any EventLoop) {
        guard mallinfo2().fordblks >= Self.worthTrimming, !Self.trimPending.exchange(true, ordering: .relaxed)
        else { return }
        _ = eventLoop.scheduleTask(in: .milliseconds(100)) {
            BlockingPool.shared.submit {
                // Cleared first: a scrape that ends during the trim schedules the next one.
                Self.trimPending.store(false, ordering: .relaxed)
                malloc_trim(0)
            }
        }
    }
}
