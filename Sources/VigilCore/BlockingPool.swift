import CThreads

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Threads for blocking work — file reads, `statfs`, sd-bus calls — kept off Swift's cooperative pool,
/// which has one thread per core: two hung `statfs` calls would otherwise stall every task in the
/// process.
///
/// Up to `softLimit` threads run jobs; more jobs wait. A job that blocks for longer than `stuckAfter`
/// stops counting against the limit — a hung call parks only its own thread and the pool starts
/// another, up to `maxThreads`. Threads above `keepThreads` exit after a minute without work.
///
/// Its threads run on the pool's `cpus`, or else on the process's: never on those of the thread that
/// happened to start them (a scrape's, which may be confined to one CPU).
public final class BlockingPool: @unchecked Sendable {
    // @unchecked: every mutable field below is guarded by `mutex`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    /// When each busy thread started its current job (by thread slot).
    private var busySince: [Int: ContinuousClock.Instant] = [:]
    private var nextSlot = 0
    private let maxThreads: Int
    private let softLimit: Int
    private let stuckAfter: Duration
    private let keepThreads: Int
    /// The threads' name, as `top -H` and `ps -L` show it (15 bytes at most).
    private let name: String
    private let cpus: CPUSet?

    /// The pool for blocking calls that the agent waits for with a deadline (statfs, bus calls), and
    /// for the journal reader's.
    public static let shared = BlockingPool()

    public init(
        name: String = "vigil-pool",
        cpus: CPUSet? = nil,
        softLimit: Int = 64,
        stuckAfter: Duration = .milliseconds(200),
        maxThreads: Int = 64,
        keepThreads: Int = 2
    ) {
        self.name = name
        self.cpus = cpus
        self.softLimit = softLimit
        self.stuckAfter = stuckAfter
        self.maxThreads = maxThreads
        self.keepThreads = keepThreads
        pthread_mutex_init(self.mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(self.condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Number of threads started and not yet exited (for vigil's own metrics and tests).
    public var threadCount: Int {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return self.threads
    }

    /// Runs `job` on a pool thread.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(self.mutex)
        self.jobs.append(job)
        let pending = self.jobs.count - self.head
        var startThread = pending > self.idle && self.threads < self.maxThreads
        if startThread && self.threads >= self.softLimit {
            // At the limit, only threads stuck in long calls make room for another.
            let now = ContinuousClock.now
            let stuck = self.busySince.values.filter { $0.duration(to: now) >= self.stuckAfter }.count
            startThread = self.threads - stuck < self.softLimit
        }
        if startThread { self.threads += 1 }
        pthread_mutex_unlock(self.mutex)
        // Signalled after unlocking: a waiter woken while the lock is still held would only go back to
        // sleep on the lock (two more futex calls and a context switch per hand-over).
        pthread_cond_signal(self.condition)
        if startThread { self.startThread() }
    }

    /// Runs `job` on a pool thread and waits for it until `deadline`; returns nil if it did not finish
    /// in time (it keeps running, and its result is dropped).
    public func run<T: Sendable>(deadline: ContinuousClock.Instant, _ job: @escaping @Sendable () -> T) -> T? {
        let rendezvous = Rendezvous<T>()
        self.submit { rendezvous.deliver(job()) }
        return rendezvous.wait(until: deadline)
    }

    private func startThread() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        // Workers parse small files; 512 KiB of stack is plenty and keeps address space small.
        pthread_attr_setstacksize(&attributes, 512 * 1024)
        let result = pthread_create(
            &thread,
            &attributes,
            { context in
                let pool = Unmanaged<BlockingPool>.fromOpaque(context!).takeRetainedValue()
                pool.work()
                return nil
            },
            context
        )
        pthread_attr_destroy(&attributes)
        if result != 0 {
            Unmanaged<BlockingPool>.fromOpaque(context).release()
            pthread_mutex_lock(self.mutex)
            self.threads -= 1
            pthread_mutex_unlock(self.mutex)
        }
    }

    private func work() {
        pthread_setname_np(pthread_self(), self.name)
        (self.cpus ?? CPUSet.ofProcess())?.confineCurrentThread()
        pthread_mutex_lock(self.mutex)
        let slot = self.nextSlot
        self.nextSlot += 1
        while true {
            if self.head < self.jobs.count {
                let job = self.jobs[self.head]
                self.head += 1
                if self.head == self.jobs.count {
                    self.jobs.removeAll(keepingCapacity: true)
                    self.head = 0
                }
                self.busySince[slot] = .now
                pthread_mutex_unlock(self.mutex)
                job()
                pthread_mutex_lock(self.mutex)
                self.busySince[slot] = nil
                continue
            }
            self.idle += 1
            var wake = timespec()
            clock_gettime(CLOCK_MONOTONIC, &wake)
            wake.tv_sec += 60
            let result = pthread_cond_timedwait(self.condition, self.mutex, &wake)
            self.idle -= 1
            if result == ETIMEDOUT && self.head == self.jobs.count && self.threads > self.keepThreads {
                self.threads -= 1
                pthread_mutex_unlock(self.mutex)
                return
            }
        }
    }
}

/// A one-shot hand-over of a value from a pool thread to a waiting thread, with a deadline.
final class Rendezvous<T: Sendable>: @unchecked Sendable {
    // @unchecked: `value` and `done` are guarded by `mutex`.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var value: T?
    private var done = false

    init() {
        pthread_mutex_init(self.mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(self.condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(self.condition)
        pthread_mutex_destroy(self.mutex)
        self.condition.deallocate()
        self.mutex.deallocate()
    }

    func deliver(_ value: T) {
        pthread_mutex_lock(self.mutex)
        self.value = value
        self.done = true
        pthread_mutex_unlock(self.mutex)
        // After unlocking, as in `submit`.
        pthread_cond_signal(self.condition)
    }

    func wait(until deadline: ContinuousClock.Instant) -> T? {
        let remaining = ContinuousClock.now.duration(to: deadline)
        var wake = timespec()
        clock_gettime(CLOCK_MONOTONIC, &wake)
        let (seconds, attoseconds) = max(remaining, .zero).components
        var nanoseconds = Int(wake.tv_nsec) + Int(attoseconds / 1_000_000_000)
        wake.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
        nanoseconds %= 1_000_000_000
        wake.tv_nsec = nanoseconds
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        while !self.done {
            if pthread_cond_timedwait(self.condition, self.mutex, &wake) == ETIMEDOUT { break }
        }
        return self.value
    }
}
