import Synchronization
import Testing

@testable import VigilCore

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ScrapeWatchdogTests {
    private func run() -> ScrapeRun {
        ScrapeRun(order: [0], deadline: .now + .seconds(30)) { _ in }
    }

    /// Waits up to two seconds for `condition`.
    private func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// A scrape that ends within a tick never wakes the watchdog: the timer stops with it.
    @Test func aScrapeThatEndsWithinATickNeverWakesTheWatchdog() {
        let watchdog = ScrapeWatchdog(tick: .milliseconds(20))
        let checks = Atomic(0)
        for _ in 0..<3 {
            let run = self.run()
            watchdog.watch(run) { _ in
                checks.add(1, ordering: .relaxed)
                return false
            }
            watchdog.ended(run)
        }
        #expect(watchdog.counts.watched == 0)
        usleep(150_000)
        #expect(checks.load(ordering: .relaxed) == 0)
        #expect(watchdog.counts.wakes == 0)
    }

    /// A scrape that runs is checked every tick until its check says it is over, and not after; one that
    /// ends leaves the timer running for another that does not.
    @Test func aRunningScrapeIsCheckedUntilItIsOver() {
        let watchdog = ScrapeWatchdog(tick: .milliseconds(20))
        let checks = Atomic(0)
        let short = self.run()
        watchdog.watch(short) { _ in false }
        let long = self.run()
        watchdog.watch(long) { _ in checks.add(1, ordering: .relaxed).newValue == 3 }
        watchdog.ended(short)
        #expect(eventually { checks.load(ordering: .relaxed) == 3 && watchdog.counts.watched == 0 })
        let wakes = watchdog.counts.wakes
        usleep(100_000)
        #expect(checks.load(ordering: .relaxed) == 3)
        #expect(watchdog.counts.wakes == wakes)

        // The timer starts again with the next scrape.
        let next = self.run()
        watchdog.watch(next) { _ in checks.add(1, ordering: .relaxed).newValue == 4 }
        #expect(eventually { checks.load(ordering: .relaxed) == 4 && watchdog.counts.watched == 0 })
    }
}
