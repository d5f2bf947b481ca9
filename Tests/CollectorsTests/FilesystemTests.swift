import Synchronization
import Testing
import VigilCore

@testable import Collectors

#if canImport(Glibc)
import Glibc
#endif

/// Stands in for `statfs(2)`: fixed sizes, a chosen errno for some paths, and for others it blocks
/// exactly like a call on a dead NFS server until the test releases it.
private final class FakeStatfs: Sendable {
    let hanging: Set<String>
    let errors: [String: Int32]
    let delay: Duration
    private let released = Atomic<Bool>(false)
    private let calls = Mutex<[String: Int]>([:])
    private let threads = Mutex<[String: pthread_t]>([:])
    private let active = Atomic<Int>(0)
    private let mostActive = Atomic<Int>(0)

    init(hanging: Set<String> = [], errors: [String: Int32] = [:], delay: Duration = .zero) {
        self.hanging = hanging
        self.errors = errors
        self.delay = delay
    }

    static let usage = FilesystemUsage(size: 8192, free: 4096, avail: 2048, files: 100, filesFree: 60)

    func call(_ path: String) -> StatfsResult {
        self.calls.withLock { $0[path, default: 0] += 1 }
        self.threads.withLock { $0[path] = pthread_self() }
        let now = self.active.wrappingAdd(1, ordering: .relaxed).newValue
        _ = self.mostActive.max(now, ordering: .relaxed)
        defer { self.active.wrappingSubtract(1, ordering: .relaxed) }
        if self.hanging.contains(path) {
            while !self.released.load(ordering: .acquiring) { usleep(1000) }
        }
        if self.delay > .zero { usleep(UInt32(self.delay.seconds * 1e6)) }
        if let code = self.errors[path] { return .failure(errno: code) }
        return .usage(Self.usage)
    }

    func release() { self.released.store(true, ordering: .releasing) }
    func calls(of path: String) -> Int { self.calls.withLock { $0[path, default: 0] } }
    /// The thread that last measured `path`.
    func thread(of path: String) -> pthread_t? { self.threads.withLock { $0[path] } }
    var totalCalls: Int { self.calls.withLock { $0.values.reduce(0, +) } }
    var mostConcurrent: Int { self.mostActive.load(ordering: .relaxed) }
}

/// The collector with its default filters and the given `statfs`; by default every mount is measured
/// on the pool, as a network file system is.
private func filesystemCollector(
    _ fake: FakeStatfs,
    roots: PathRoots,
    mountTimeout: Duration = .seconds(5),
    statWorkers: Int = 4,
    measuredInline: Set<String> = []
) throws -> FilesystemCollector {
    let configured = try #require(
        try makeCollector(FilesystemCollector.descriptor, roots: roots) as? FilesystemCollector
    )
    return FilesystemCollector(
        mountPoints: configured.mountPoints,
        fsTypes: configured.fsTypes,
        mountTimeout: mountTimeout,
        statWorkers: statWorkers,
        measuredInline: measuredInline,
        statfs: fake.call
    )
}

private func waitUntil(_ condition: () -> Bool) {
    let giveUp = ContinuousClock.now + .seconds(5)
    while !condition() && ContinuousClock.now < giveUp { usleep(2000) }
}

@Suite struct FilesystemTests {
    @Test func measuresTheRealRootFileSystemAsStatfsDoes() throws {
        let collected = try collect(FilesystemCollector.descriptor, roots: PathRoots())
        var buffer = statvfs()
        #expect(statvfs("/", &buffer) == 0)
        let root = ["mountpoint": "/", "device_error": ""]
        #expect(collected.value("node_filesystem_size_bytes", root) == Double(buffer.f_blocks) * Double(buffer.f_bsize))
        #expect(collected.value("node_filesystem_files", root) == Double(buffer.f_files))
        let avail = try #require(collected.value("node_filesystem_avail_bytes", root))
        #expect(abs(avail - Double(buffer.f_bavail) * Double(buffer.f_bsize)) < 64 * 1024 * 1024)
        #expect(collected.value("node_filesystem_device_error", root) == 0)
        #expect(collected.value("node_filesystem_readonly", root) == 0)
        let device = try #require(
            collected[family: "node_filesystem_size_bytes"]?.samples.first { $0[label: "mountpoint"] == "/" }
        )
        #expect(
            collected.value("node_filesystem_mount_info", ["mountpoint": "/", "device": device[label: "device"]!]) == 1
        )
        #expect(collected.failures.isEmpty)
    }

    @Test func matchesNodeExporterOnARecordedHost() throws {
        let collected = try collect(
            FilesystemCollector.descriptor,
            roots: fixtureRoots("debian12")
        )
        // node_exporter 1.5.0 has neither the device_error label nor mount_info (1.12 has both) and
        // reports no readonly for a mount it could not stat (1.12 does).
        let ours = collected.families.dropping(["node_filesystem_mount_info"]).map { family in
            var family = family
            if family.name == "node_filesystem_readonly" {
                family.samples.removeAll { $0[label: "device_error"] != "" }
            }
            return family
        }
        expectSameFamilies(
            ours.removingLabel("device_error"),
            try golden("debian12-filesystem"),
            // Sizes are those of the disk holding the checkout.
            ignoringValuesOf: [
                "node_filesystem_avail_bytes", "node_filesystem_files", "node_filesystem_files_free",
                "node_filesystem_free_bytes", "node_filesystem_size_bytes",
            ]
        )
        // The mount that does not exist under the fixture root: node_exporter 1.12's label and series.
        let missing = [
            "mountpoint": "/mnt/sandboxing/model_tools_env/v1/python", "device_error": "no such file or directory",
        ]
        #expect(collected.value("node_filesystem_device_error", missing) == 1)
        #expect(collected.value("node_filesystem_readonly", missing) == 1)
        #expect(
            collected.value("node_filesystem_size_bytes", ["mountpoint": "/mnt/sandboxing/model_tools_env/v1/python"])
                == nil
        )
    }

    @Test func filtersDecodesAndLabelsLikeNodeExporter() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let fake = FakeStatfs()
        let collected = try collect(try filesystemCollector(fake, roots: roots), roots: roots)
        let measured = try #require(collected[family: "node_filesystem_size_bytes"]).samples
        // /sys, /proc, docker's overlay, /run/credentials, cgroup2 and iso9660 are excluded by default;
        // the stacked /tmp is reported once.
        #expect(
            Set(measured.map { $0[label: "mountpoint"]! }) == [
                "/", "/boot", "/mnt/my disk", "/srv/nfs\ttab", "/var/lib/data", "/var/log", "/home/user/.cache/doc",
                "/tmp", "/mnt/back\\slash", "/empty-source", "/run/user/1000",
            ]
        )
        #expect(measured.count == 11)
        #expect(fake.totalCalls == 11)
        #expect(collected.value("node_filesystem_size_bytes", ["mountpoint": "/srv/nfs\ttab"]) == 8192)
        #expect(
            collected.value("node_filesystem_free_bytes", ["device": "server:/export dir", "fstype": "nfs4"]) == 4096
        )
        #expect(collected.value("node_filesystem_avail_bytes", ["mountpoint": "/boot"]) == 2048)
        #expect(collected.value("node_filesystem_files", ["mountpoint": "/boot"]) == 100)
        #expect(collected.value("node_filesystem_files_free", ["mountpoint": "/boot"]) == 60)
        #expect(collected.value("node_filesystem_readonly", ["mountpoint": "/mnt/my disk"]) == 1)
        #expect(collected.value("node_filesystem_readonly", ["mountpoint": "/var/log"]) == 1)
        #expect(collected.value("node_filesystem_readonly", ["mountpoint": "/boot"]) == 0)
        #expect(
            collected.value(
                "node_filesystem_mount_info",
                ["device": "/dev/mapper/vg-data", "major": "253", "minor": "0", "mountpoint": "/var/lib/data"]
            ) == 1
        )
        #expect(fake.calls(of: roots.root("mnt/my disk")) == 1)
        // Labels in node_exporter's order (sorted by name).
        #expect(
            collected.text.contains(
                #"node_filesystem_size_bytes{device="/dev/sda2",device_error="",fstype="ext4",mountpoint="/boot"} 8192"#
            )
        )
    }

    /// The selection of mounts is kept while the mount table is: a mount added or removed between
    /// scrapes shows in the next one.
    @Test func followsMountsAddedAndRemovedBetweenScrapes() throws {
        let table = "1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        let added = "40 1 8:17 / /data rw,relatime shared:9 - xfs /dev/sdb1 rw\n"
        let tree = try TemporaryTree(files: ["proc/self/mountinfo": table])
        let fake = FakeStatfs()
        let collector = try filesystemCollector(fake, roots: tree.roots)
        func mountPoints() throws -> Set<String> {
            let collected = try collect(collector, roots: tree.roots)
            return Set(
                try #require(collected[family: "node_filesystem_size_bytes"]).samples.map { $0[label: "mountpoint"]! }
            )
        }
        #expect(try mountPoints() == ["/"])
        #expect(try mountPoints() == ["/"])
        try tree.write("proc/self/mountinfo", table + added)
        #expect(try mountPoints() == ["/", "/data"])
        try tree.write("proc/self/mountinfo", added)
        #expect(try mountPoints() == ["/data"])
    }

    @Test func includeAndExcludeOptions() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let onlyNFS = try collect(
            FilesystemCollector.descriptor,
            roots: roots,
            settings: ["collector.filesystem.fs-types-include": .regex("^nfs4?$")]
        )
        #expect(
            onlyNFS[family: "node_filesystem_device_error"]?.samples.map { $0[label: "mountpoint"] } == [
                "/srv/nfs\ttab"
            ]
        )
        let noTmp = try collect(
            FilesystemCollector.descriptor,
            roots: roots,
            settings: ["collector.filesystem.mount-points-exclude": .regex("^/(tmp|run|sys|proc)($|/)")]
        )
        let points = Set(noTmp[family: "node_filesystem_device_error"]!.samples.map { $0[label: "mountpoint"]! })
        #expect(!points.contains("/tmp") && !points.contains("/run/user/1000"))
        // No longer excluded by mount point, but still by its type (overlay).
        #expect(!points.contains("/var/lib/docker/overlay2/0f3c/merged"))
        #expect(points.contains("/boot") && points.contains("/mnt/my disk"))
        #expect(throws: ConfigurationError.self) {
            try makeCollector(
                FilesystemCollector.descriptor,
                roots: roots,
                settings: ["collector.filesystem.stat-workers": .integer(0)]
            )
        }
    }

    @Test func statfsErrorsGoInTheDeviceErrorLabelAsGoWritesThem() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let fake = FakeStatfs(errors: [
            roots.root("boot"): EACCES, roots.root("srv/nfs\ttab"): ESTALE, roots.root("var/log"): EIO,
            roots.root("tmp"): ENOTCONN,
        ])
        let collected = try collect(try filesystemCollector(fake, roots: roots), roots: roots)
        #expect(
            collected.value(
                "node_filesystem_device_error",
                ["mountpoint": "/boot", "device_error": "permission denied"]
            ) == 1
        )
        #expect(
            collected.value(
                "node_filesystem_device_error",
                ["mountpoint": "/srv/nfs\ttab", "device_error": "stale NFS file handle"]
            )
                == 1
        )
        #expect(
            collected.value(
                "node_filesystem_readonly",
                ["mountpoint": "/var/log", "device_error": "input/output error"]
            ) == 1
        )
        #expect(
            collected.value(
                "node_filesystem_device_error",
                ["mountpoint": "/tmp", "device_error": "transport endpoint is not connected"]
            )
                == 1
        )
        #expect(collected.value("node_filesystem_size_bytes", ["mountpoint": "/boot"]) == nil)
        #expect(collected.value("node_filesystem_mount_info", ["mountpoint": "/boot"]) == nil)
        #expect(collected.value("node_filesystem_device_error", ["mountpoint": "/", "device_error": ""]) == 0)
        // A statfs error is reported in the labels; the collection itself succeeds, as node_exporter's.
        #expect(collected.failures.isEmpty)
    }

    @Test func goErrnoTexts() {
        #expect(goErrnoText(ENOENT) == "no such file or directory")
        #expect(goErrnoText(EACCES) == "permission denied")
        #expect(goErrnoText(ESTALE) == "stale NFS file handle")
        #expect(goErrnoText(EIO) == "input/output error")
        #expect(goErrnoText(EHOSTDOWN) == "host is down")
        #expect(goErrnoText(9999) == "errno 9999")
    }

    @Test func aHungStatfsCostsOneMountOneThreadAndNeverTheScrape() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let hung = roots.root("boot")
        let fake = FakeStatfs(hanging: [hung])
        defer { fake.release() }
        let collector = try filesystemCollector(fake, roots: roots, mountTimeout: .milliseconds(300), statWorkers: 2)

        // First scrape: the call on /boot blocks; the collection returns after the mount timeout with
        // node_exporter's "mountpoint timeout" for /boot and normal series for the others.
        var started = ContinuousClock.now
        let first = try collect(collector, roots: roots, timeout: .seconds(5))
        let firstTook = started.duration(to: .now)
        #expect(firstTook >= .milliseconds(300) && firstTook < .seconds(2))
        let boot = ["mountpoint": "/boot", "device_error": "mountpoint timeout"]
        #expect(first.value("node_filesystem_device_error", boot) == 1)
        #expect(first.value("node_filesystem_readonly", boot) == 0)
        #expect(first.value("node_filesystem_size_bytes", ["mountpoint": "/boot"]) == nil)
        #expect(first[family: "node_filesystem_size_bytes"]?.samples.count == 10)
        #expect(fake.calls(of: hung) == 1)
        #expect(collector.calls.paths(inFlightFor: .milliseconds(300)) == [hung])

        // Second scrape: /boot is stuck (its call has been in flight for longer than the mount timeout),
        // reported the same way at once and without another call.
        started = ContinuousClock.now
        let second = try collect(collector, roots: roots, timeout: .seconds(5))
        #expect(started.duration(to: .now) < .milliseconds(300))
        #expect(second.value("node_filesystem_device_error", boot) == 1)
        #expect(second[family: "node_filesystem_size_bytes"]?.samples.count == 10)
        #expect(fake.calls(of: hung) == 1)

        // The hung call returns: the mount is measured again.
        fake.release()
        waitUntil { collector.calls.paths(inFlightFor: .zero).isEmpty }
        #expect(collector.calls.paths(inFlightFor: .zero).isEmpty)
        let third = try collect(collector, roots: roots, timeout: .seconds(5))
        #expect(third.value("node_filesystem_size_bytes", ["mountpoint": "/boot", "device_error": ""]) == 8192)
        #expect(third.value("node_filesystem_device_error", ["mountpoint": "/boot"]) == 0)
        #expect(fake.calls(of: hung) == 2)
    }

    @Test func neverWaitsPastTheScrapeDeadline() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let hung = roots.root("var/log")
        let fake = FakeStatfs(hanging: [hung])
        defer { fake.release() }
        // The mount timeout is longer than the scrape: the scrape deadline (minus a margin) wins.
        let collector = try filesystemCollector(fake, roots: roots, mountTimeout: .seconds(30))
        let started = ContinuousClock.now
        let collected = try collect(collector, roots: roots, timeout: .seconds(1))
        let took = started.duration(to: .now)
        #expect(took < .seconds(1))
        #expect(took >= .seconds(1) - FilesystemCollector.deadlineMargin - .milliseconds(50))
        #expect(
            collected.value(
                "node_filesystem_device_error",
                ["mountpoint": "/var/log", "device_error": "mountpoint timeout"]
            ) == 1
        )
        #expect(collected.value("node_filesystem_device_error", ["mountpoint": "/boot", "device_error": ""]) == 0)
        fake.release()
        waitUntil { collector.calls.paths(inFlightFor: .zero).isEmpty }
    }

    /// Two scrapes at once (two Prometheus servers): the second waits for the first one's call instead
    /// of making its own, so the hung mount still parks one thread.
    @Test func concurrentScrapesShareTheCallOfAHungMount() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let hung = roots.root("boot")
        let fake = FakeStatfs(hanging: [hung])
        defer { fake.release() }
        let collector = try filesystemCollector(fake, roots: roots, mountTimeout: .milliseconds(400))
        let results = Mutex<[Collected]>([])
        for delay in [0, 100_000] {
            // Threads of their own: the test runner's cooperative threads may all be busy.
            BlockingPool.shared.submit {
                usleep(UInt32(delay))
                if let collected = try? collect(collector, roots: roots) { results.withLock { $0.append(collected) } }
            }
        }
        waitUntil { results.withLock { $0.count } == 2 }
        let both = results.withLock { $0 }
        #expect(both.count == 2)
        for collected in both {
            #expect(
                collected.value(
                    "node_filesystem_device_error",
                    ["mountpoint": "/boot", "device_error": "mountpoint timeout"]
                ) == 1
            )
            #expect(collected[family: "node_filesystem_size_bytes"]?.samples.count == 10)
        }
        #expect(fake.calls(of: hung) == 1)
        fake.release()
        waitUntil { collector.calls.paths(inFlightFor: .zero).isEmpty }
    }

    @Test func aScrapeThatMeetsAnothersCallsInFlightUsesTheirResults() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let fake = FakeStatfs(delay: .milliseconds(300))
        let collector = try filesystemCollector(fake, roots: roots, statWorkers: 4)
        let results = Mutex<[Collected]>([])
        for second in [false, true] {
            if second { waitUntil { fake.totalCalls >= 1 } }
            BlockingPool.shared.submit {
                if let collected = try? collect(collector, roots: roots) { results.withLock { $0.append(collected) } }
            }
        }
        waitUntil { results.withLock { $0.count } == 2 }
        let both = results.withLock { $0 }
        #expect(both.count == 2)
        for collected in both {
            #expect(collected[family: "node_filesystem_size_bytes"]?.samples.count == 11)
            #expect(collected.value("node_filesystem_device_error", ["device_error": "mountpoint timeout"]) == nil)
        }
        // The second scrape made no call for the mounts the first one was measuring.
        #expect(fake.totalCalls < 22)
    }

    @Test func runsAtMostStatWorkersCallsAtATime() throws {
        let roots = fixtureRoots("mountinfo-odd")
        for workers in [1, 3] {
            let fake = FakeStatfs(delay: .milliseconds(20))
            let collected = try collect(try filesystemCollector(fake, roots: roots, statWorkers: workers), roots: roots)
            #expect(collected[family: "node_filesystem_size_bytes"]?.samples.count == 11)
            #expect(fake.mostConcurrent <= workers)
            #expect(fake.mostConcurrent >= 1)
        }
    }

    @Test func mountsThatCannotStartBeforeTheDeadlineAreReportedAsAFailure() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let fake = FakeStatfs(delay: .milliseconds(150))
        // One worker, 11 mounts of 150 ms each, 700 ms to go: only the first few are measured.
        let collected = try collect(
            try filesystemCollector(fake, roots: roots, statWorkers: 1),
            roots: roots,
            timeout: .milliseconds(700)
        )
        let measured = collected[family: "node_filesystem_device_error"]?.samples.count ?? 0
        #expect(measured >= 1 && measured < 11)
        #expect(collected.failures.count == 1)
        waitUntil { fake.totalCalls == measured }
    }

    @Test func measuresLocalFileSystemsInPlaceAndNetworkOnesOnThePool() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let fake = FakeStatfs()
        let collector = try filesystemCollector(
            fake,
            roots: roots,
            measuredInline: FilesystemCollector.inMemoryStatfsTypes
        )
        let collected = try collect(collector, roots: roots)
        #expect(collected[family: "node_filesystem_size_bytes"]?.samples.count == 11)
        let caller = pthread_self()
        for local in ["", "boot", "var/lib/data", "tmp"] {
            let thread = try #require(fake.thread(of: roots.root(local)))
            #expect(pthread_equal(thread, caller) != 0, "\(local) (ext4, xfs, tmpfs)")
        }
        for other in ["srv/nfs\ttab", "home/user/.cache/doc", "mnt/my disk"] {
            let thread = try #require(fake.thread(of: roots.root(other)))
            #expect(pthread_equal(thread, caller) == 0, "\(other) (nfs4, fuse, vfat)")
        }
    }

    @Test func aHungNetworkMountBesideLocalOnesCostsOnlyItsOwnSeries() throws {
        let roots = fixtureRoots("mountinfo-odd")
        let hung = roots.root("srv/nfs\ttab")
        let fake = FakeStatfs(hanging: [hung])
        defer { fake.release() }
        let collector = try filesystemCollector(
            fake,
            roots: roots,
            mountTimeout: .milliseconds(300),
            measuredInline: FilesystemCollector.inMemoryStatfsTypes
        )
        let started = ContinuousClock.now
        let collected = try collect(collector, roots: roots)
        #expect(started.duration(to: .now) < .seconds(2))
        #expect(
            collected.value(
                "node_filesystem_device_error",
                ["mountpoint": "/srv/nfs\ttab", "device_error": "mountpoint timeout"]
            ) == 1
        )
        #expect(collected[family: "node_filesystem_size_bytes"]?.samples.count == 10)
        #expect(collected.value("node_filesystem_size_bytes", ["mountpoint": "/var/log", "device_error": ""]) == 8192)
        fake.release()
        waitUntil { collector.calls.paths(inFlightFor: .zero).isEmpty }
    }

    @Test func stripsTheRootfsPrefixFromMountPoints() throws {
        let collector = try filesystemCollector(FakeStatfs(), roots: PathRoots(rootfs: "/host"))
        let entries = parseMountinfo(
            ArraySlice(
                """
                1 0 8:1 / /host rw - ext4 /dev/sda1 rw
                2 1 8:2 / /host/data rw - xfs /dev/sda2 rw
                3 1 8:3 / /boot rw - ext4 /dev/sda3 rw

                """.utf8
            )
        )
        let selected = collector.selectMounts(entries, paths: PathRoots(rootfs: "/host"))
        #expect(selected.map(\.mountPoint) == ["/", "/data", "/boot"])
        #expect(selected.map(\.statPath) == ["/host/", "/host/data", "/host/boot"])
    }
}
