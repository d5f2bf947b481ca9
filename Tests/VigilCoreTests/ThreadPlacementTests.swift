import Logging
import Synchronization
import Testing
import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// The CPUs of the thread that calls it, and its name, as the kernel shows them.
private struct Placement: Equatable, Sendable {
    let cpus: CPUSet?
    let name: String

    static func ofCurrentThread() -> Placement {
        let name = (try? FileReader().read("/proc/thread-self/comm")) ?? []
        return Placement(cpus: CPUSet.ofCurrentThread(), name: String(decoding: name.dropLast(), as: UTF8.self))
    }
}

/// Runs `job` on `pool` and waits for its result.
private func run<T: Sendable>(on pool: BlockingPool, _ job: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in pool.submit { continuation.resume(returning: job()) } }
}

/// The first CPU of the process, when it has others: nil on a host (or cpuset) of one CPU, where there
/// is nothing to confine.
private let firstCPU = CPUSet.ofProcess()?.first(1)

/// The CPUs `/proc/self/status` lists (`0-3,8`).
private func processCPUsFromProcfs() throws -> [Int] {
    let status = String(decoding: try FileReader().read("/proc/self/status"), as: UTF8.self)
    let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
    return try line.dropFirst("Cpus_allowed_list:".count).split(separator: ",").flatMap { range in
        let bounds = try range.split(separator: "-").map { try #require(Int($0.filter { !$0.isWhitespace })) }
        return Array(bounds[0]...bounds[bounds.count - 1])
    }
}

@Suite struct CPUSetTests {
    @Test func firstTakesTheLowestCPUsAndIsNilWhenNothingIsLeftOut() {
        let set = CPUSet([7, 1, 3])
        #expect(set.cpus == [1, 3, 7])
        #expect(set.first(1) == CPUSet([1]))
        #expect(set.first(2) == CPUSet([1, 3]))
        #expect(set.first(3) == nil)
        #expect(set.first(4) == nil)
        #expect(set.first(0) == nil)
        #expect(CPUSet([1]) != CPUSet([3]))
    }

    @Test func theProcessCPUsAreTheKernels() throws {
        #expect(try CPUSet.ofProcess()?.cpus == processCPUsFromProcfs())
    }
}

@Suite struct ThreadPlacementTests {
    @Test(.enabled(if: firstCPU != nil, "the process has one CPU"))
    func aPoolWithCPUsRunsItsJobsThereUnderItsName() async throws {
        let cpus = try #require(firstCPU)
        let pool = BlockingPool(name: "test-confined", cpus: cpus)
        let placement = await run(on: pool) { Placement.ofCurrentThread() }
        #expect(placement == Placement(cpus: cpus, name: "test-confined"))
    }

    /// A pool thread started by a confined thread (a scrape's) runs on the process's CPUs, not its
    /// starter's: the journal reader must not share the scrapes' one CPU.
    @Test(.enabled(if: firstCPU != nil, "the process has one CPU"))
    func aPoolWithoutCPUsRunsOnTheProcessCPUsWhoeverStartsItsThreads() async throws {
        let confined = BlockingPool(name: "test-confined", cpus: firstCPU)
        let free = BlockingPool(name: "test-free")
        let placements = await withCheckedContinuation { continuation in
            confined.submit {
                let starter = Placement.ofCurrentThread()
                free.submit { continuation.resume(returning: (starter, Placement.ofCurrentThread())) }
            }
        }
        #expect(placements.0.cpus == firstCPU)
        #expect(placements.1 == Placement(cpus: CPUSet.ofProcess(), name: "test-free"))
    }

    @Test(.enabled(if: firstCPU != nil, "the process has one CPU"))
    func aScrapersCollectorsRunOnItsCPUs() async throws {
        let collector = PlacementCollector()
        let scraper = Scraper(
            entries: [Scraper.Entry(name: "where", collector: collector)],
            knownNames: ["where"],
            paths: PathRoots(),
            logger: Logger(label: "test"),
            cpus: firstCPU
        )
        let output = await scraper.scrape(format: .text)
        #expect(!output.bytes.isEmpty)
        #expect(collector.seen.withLock { $0 } == Placement(cpus: firstCPU, name: "vigil-lane"))
    }
}

/// Records where it ran.
private final class PlacementCollector: Collector {
    let seen = Mutex<Placement?>(nil)

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let placement = Placement.ofCurrentThread()
        self.seen.withLock { $0 = placement }
    }
}
