import Foundation
import Testing
import VigilCore

@testable import Collectors

/// The hierarchies of this host a live test can create cgroups in (it needs root).
private let liveMounts: CgroupMounts? = {
    guard getuid() == 0, let mountinfo = try? FileReader().read("/proc/self/mountinfo") else { return nil }
    let mounts = parseCgroupMounts(mountinfo, paths: PathRoots())
    guard let walked = mounts.walked, access(walked.path, W_OK) == 0 else { return nil }
    return mounts
}()

/// On this host's real cgroups: a cgroup named like a container, with a busy process moved into it.
@Suite(.enabled(if: liveMounts != nil, "needs root and a writable cgroup hierarchy"))
struct ContainersLiveTests {
    @Test func aBusyProcessInAContainerCgroupShowsGrowingCPUAndMemory() throws {
        let mounts = try #require(liveMounts)
        // `vigil-test-<pid>/<64 hex>`: a bare container id, as standalone containerd lays them out.
        let parent = "/vigil-test-\(getpid())"
        let id = String(repeating: String(format: "%08x", getpid()), count: 8)
        let path = parent + "/" + id
        let hierarchies = [mounts.cpu, mounts.cpuacct, mounts.memory, mounts.pids, mounts.blkio, mounts.unified]
            .compactMap { $0?.path }
        let directories = Array(Set(hierarchies))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        // Allocates (and touches) 2 MB every 100 ms up to 100 MB, burning CPU in between; gives up after 60 s.
        process.arguments = [
            "-c",
            """
            import sys, time
            sys.stdin.readline()
            blocks, end = [], time.time() + 60
            while time.time() < end:
                if len(blocks) < 50: blocks.append(b'x' * (2 << 20))
                t = time.time()
                while time.time() - t < 0.1: pass
            """,
        ]
        let input = Pipe()
        process.standardInput = input
        defer {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            for directory in directories {
                rmdir(directory + path)
                rmdir(directory + parent)
            }
            for directory in directories { #expect(!FileManager.default.fileExists(atPath: directory + parent)) }
        }
        for directory in directories {
            try FileManager.default.createDirectory(atPath: directory + path, withIntermediateDirectories: true)
        }
        try process.run()
        // Moved before it starts working, so that what it uses is charged to the new cgroup.
        for directory in directories {
            try "\(process.processIdentifier)\n".write(
                toFile: directory + path + "/cgroup.procs",
                atomically: false,
                encoding: .utf8
            )
        }
        input.fileHandleForWriting.write(Data("go\n".utf8))

        let collector = ContainersCollector(all: false, processes: true)
        Thread.sleep(forTimeInterval: 0.5)
        let first = try collect(collector, roots: PathRoots())
        Thread.sleep(forTimeInterval: 1.0)
        let second = try collect(collector, roots: PathRoots())

        let labels = ["id": path]
        let cpu1 = try #require(first.value("container_cpu_usage_seconds_total", labels))
        let cpu2 = try #require(second.value("container_cpu_usage_seconds_total", labels))
        #expect(cpu1 > 0.01)
        #expect(cpu2 > cpu1)  // the machine is shared: only the growth is certain
        let memory1 = try #require(first.value("container_memory_usage_bytes", labels))
        let memory2 = try #require(second.value("container_memory_usage_bytes", labels))
        #expect(memory1 > Double(4 << 20))
        #expect(memory2 - memory1 > Double(8 << 20))
        #expect(try #require(second.value("container_memory_working_set_bytes", labels)) > memory1)
        #expect(second.value("container_processes", labels) == 1)
        if mounts.pids != nil { #expect(try #require(second.value("container_threads", labels)) >= 1) }
        // Its parent is not a container: reported only with all cgroups.
        #expect(second.value("container_cpu_usage_seconds_total", ["id": parent]) == nil)
        let all = try collect(
            ContainersCollector.descriptor,
            roots: PathRoots(),
            settings: ["collector.cgroups.all": .bool(true)]
        )
        #expect(try #require(all.value("container_cpu_usage_seconds_total", ["id": parent])) >= cpu2)
    }
}
