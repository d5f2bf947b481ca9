import CClock
import CThreads

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One thread that keeps the deadlines of scrapes in progress: it wakes every `tick` while scrapes run
/// and asks each whether it is over.
///
/// It sleeps on a timer descriptor, armed when a scrape starts with none running and disarmed when the
/// last one ends. A scrape that ends within a tick, as nearly all do, never wakes the thread: arming
/// and disarming are two system calls, where waking the thread and putting it back to sleep cost a
/// scrape made every half second a few percent of its CPU time (measured with `make bench-node`).
///
/// A dedicated thread rather than a timer task: a scrape must finish on time even when every thread of
/// Swift's cooperative pool is busy. It runs on the CPUs of the scrape that started it: the event loop's.
final class ScrapeWatchdog: @unchecked Sendable {
    // @unchecked: `watched` and `timer` are guarded by `mutex`.
    static let shared = ScrapeWatchdog(tick: .milliseconds(50))

    private struct Watched {
        let run: ScrapeRun
        let check: @Sendable (ContinuousClock.Instant) -> Bool
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var watched: [Watched] = []
    /// How often the timer has woken the thread.
    private var wakes = 0
    /// The timer descriptor, made with the thread by the first scrape; -1 before.
    private var timer: Int32 = -1
    private let tick: Duration

    init(tick: Duration) {
        self.tick = tick
        pthread_mutex_init(self.mutex, nil)
    }

    /// Calls `check` every tick until it returns true or ``ended(_:)`` is called for the run.
    func watch(_ run: ScrapeRun, check: @escaping @Sendable (ContinuousClock.Instant) -> Bool) {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        if self.timer < 0 {
            self.timer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_CLOEXEC))
            precondition(self.timer >= 0, "cannot make the scrape watchdog's timer: errno \(errno)")
            self.startThread()
        }
        self.watched.append(Watched(run: run, check: check))
        if self.watched.count == 1 { self.arm(true) }
    }

    /// The scrape is over: it is not checked again, and the timer stops when no other scrape runs.
    func ended(_ run: ScrapeRun) {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        self.watched.removeAll { $0.run === run }
        if self.watched.isEmpty && self.timer >= 0 { self.arm(false) }
    }

    /// How many scrapes are watched, and how often the thread has woken (tests).
    var counts: (watched: Int, wakes: Int) {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return (self.watched.count, self.wakes)
    }

    /// Sets the timer to expire one tick from now, or stops it. Called with `mutex` held.
    private func arm(_ armed: Bool) {
        var value = itimerspec()
        if armed {
            let (seconds, attoseconds) = self.tick.components
            value.it_value = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        }
        timerfd_settime(self.timer, 0, &value, nil)
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
        pthread_setname_np(pthread_self(), "vigil-watchdog")
        pthread_mutex_lock(self.mutex)
        let timer = self.timer
        pthread_mutex_unlock(self.mutex)
        var expirations: UInt64 = 0
        while true {
            // Blocks until the timer expires; a read made after a disarm that raced with the expiry
            // returns at once, and the check below finds nothing to do.
            guard read(timer, &expirations, 8) == 8 else { continue }
            pthread_mutex_lock(self.mutex)
            self.wakes += 1
            let current = self.watched
            pthread_mutex_unlock(self.mutex)
            let now = ContinuousClock.now
            let over = current.filter { $0.check(now) }.map(\.run)
            pthread_mutex_lock(self.mutex)
            self.watched.removeAll { watched in over.contains { $0 === watched.run } }
            if !self.watched.isEmpty { self.arm(true) }
            pthread_mutex_unlock(self.mutex)
        }
    }
}
