#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One thread that keeps the deadlines of scrapes in progress: it wakes every `tick` while scrapes run
/// (and not at all while none do) and asks each whether it is over.
///
/// A dedicated thread rather than a timer task: a scrape must finish on time even when every thread of
/// Swift's cooperative pool is busy, and checking a few scrapes ten times a second costs nothing.
final class ScrapeWatchdog: @unchecked Sendable {
    // @unchecked: `watched` and `started` are guarded by `mutex`.
    static let shared = ScrapeWatchdog(tick: .milliseconds(50))

    private struct Watched {
        let run: ScrapeRun
        let check: @Sendable (ContinuousClock.Instant) -> Bool
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var watched: [Watched] = []
    private var started = false
    private let tick: Duration

    init(tick: Duration) {
        self.tick = tick
        pthread_mutex_init(self.mutex, nil)
        pthread_cond_init(self.condition, nil)
    }

    /// Calls `check` every tick until it returns true (the scrape is over).
    func watch(_ run: ScrapeRun, check: @escaping @Sendable (ContinuousClock.Instant) -> Bool) {
        pthread_mutex_lock(self.mutex)
        self.watched.append(Watched(run: run, check: check))
        let wake = self.watched.count == 1
        if !self.started {
            self.started = true
            self.startThread()
        }
        pthread_mutex_unlock(self.mutex)
        if wake { pthread_cond_signal(self.condition) }
    }

    private func startThread() {
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 256 * 1024)
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(
            &thread,
            &attributes,
            { context in
                Unmanaged<ScrapeWatchdog>.fromOpaque(context!).takeRetainedValue().loop()
                return nil
            },
            context
        )
        pthread_attr_destroy(&attributes)
        precondition(result == 0, "cannot start the scrape watchdog thread: \(result)")
    }

    private func loop() {
        let (tickSeconds, tickAttoseconds) = self.tick.components
        while true {
            pthread_mutex_lock(self.mutex)
            while self.watched.isEmpty { pthread_cond_wait(self.condition, self.mutex) }
            pthread_mutex_unlock(self.mutex)

            var pause = timespec(tv_sec: Int(tickSeconds), tv_nsec: Int(tickAttoseconds / 1_000_000_000))
            var remaining = timespec()
            while nanosleep(&pause, &remaining) != 0 && errno == EINTR { pause = remaining }

            pthread_mutex_lock(self.mutex)
            let current = self.watched
            pthread_mutex_unlock(self.mutex)
            let now = ContinuousClock.now
            let over = current.filter { $0.check(now) }.map { ObjectIdentifier($0.run) }
            guard !over.isEmpty else { continue }
            let done = Set(over)
            pthread_mutex_lock(self.mutex)
            self.watched.removeAll { done.contains(ObjectIdentifier($0.run)) }
            pthread_mutex_unlock(self.mutex)
        }
    }
}
