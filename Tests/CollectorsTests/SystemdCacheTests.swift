import Foundation
import Testing
import VigilCore

@testable import Collectors

/// The systemd collector's unit cache: what marks a unit for a refresh, what signals change, where
/// each accounting figure comes from, and the cgroup files it reads.
@Suite struct SystemdCacheTests {
    private static func unit(
        _ name: String,
        _ state: String = "active",
        sub: String = "running",
        job: UInt32 = 0,
        load: String = "loaded"
    ) -> ListedUnit {
        ListedUnit(
            name: name,
            loadState: load,
            activeState: state,
            subState: sub,
            path: "/org/freedesktop/systemd1/unit/" + name.replacingOccurrences(of: ".", with: "_2e"),
            jobID: job
        )
    }

    /// A cache that has read `units` once (nothing stale).
    private static func settled(_ units: [ListedUnit], filter: NameFilter = .all) -> UnitCache {
        var cache = UnitCache()
        for unit in cache.reconcile(units, filter: filter) {
            cache.update(unit.name) { _ = $0.take(RefreshedUnit()) }
            cache.update(unit.name) { $0.stale = false }
        }
        return cache
    }

    private static func stale(_ cache: UnitCache) -> Set<String> {
        Set(cache.units.filter { $0.value.stale }.keys)
    }

    @Test func listUnitsMarksNewAndChangedUnitsAndForgetsVanishedOnes() throws {
        let units = [Self.unit("a.service"), Self.unit("b.socket", sub: "listening"), Self.unit("c.timer")]
        var cache = Self.settled(units)
        #expect(Self.stale(cache).isEmpty)

        // The same listing again: nothing to read.
        _ = cache.reconcile(units, filter: .all)
        #expect(Self.stale(cache).isEmpty)

        // a's sub-state changed, b got a job, c vanished, d is new, e is not loaded, f is filtered out.
        let next = [
            Self.unit("a.service", sub: "reloading"), Self.unit("b.socket", sub: "listening", job: 7),
            Self.unit("d.service"), Self.unit("e.service", "inactive", sub: "dead", load: "not-found"),
            Self.unit("f.device"),
        ]
        let exported = cache.reconcile(
            next,
            filter: NameFilter(include: nil, exclude: try GoRegex(#".+\.device"#), wholeName: true)
        )
        #expect(exported.map(\.name) == ["a.service", "b.socket", "d.service"])
        #expect(Set(cache.units.keys) == ["a.service", "b.socket", "d.service"])
        #expect(Self.stale(cache) == ["a.service", "b.socket", "d.service"])
    }

    @Test func theRoundRobinReadsEveryUnitWithinItsTurn() {
        let units = (0..<10).map { Self.unit("u\($0).service") }
        var cache = Self.settled(units)
        var read: Set<String> = []
        // Three per scrape: every unit within four scrapes.
        for _ in 0..<4 {
            cache.markRoundRobin(3)
            let marked = Self.stale(cache)
            #expect(marked.count == 3 || marked.count == 1)
            read.formUnion(marked)
            for name in marked { cache.update(name) { $0.stale = false } }
        }
        #expect(read.count == 10)
    }

    @Test func signalsUpdateWhatTheyCarryAndMarkRestartedUnits() {
        let units = [Self.unit("a.service"), Self.unit("t.timer", sub: "waiting"), Self.unit("m.mount")]
        var cache = Self.settled(units)
        let path = { (name: String) in units.first { $0.name == name }!.path }
        cache.update("a.service") { $0.invocation = [1, 2] }

        // The values emitted with a change are taken without a refresh.
        cache.apply(.propertiesChanged(path: path("a.service"), changes: [(.nRestarts, .uint32(3))]))
        cache.apply(.propertiesChanged(path: path("t.timer"), changes: [(.lastTriggerUSec, .uint64(42))]))
        cache.apply(.propertiesChanged(path: path("m.mount"), changes: [(.type, .string("ext4"))]))
        cache.apply(.propertiesChanged(path: path("a.service"), changes: [(.invocationID, .bytes([1, 2]))]))
        #expect(cache.units["a.service"]?.properties.nRestarts == 3)
        #expect(cache.units["t.timer"]?.properties.lastTriggerUSec == 42)
        #expect(cache.units["m.mount"]?.properties.type == "ext4")
        #expect(Self.stale(cache).isEmpty, "the same invocation: nothing to read")

        // A new invocation: the unit started again, its cgroup and counters are new.
        cache.apply(.propertiesChanged(path: path("a.service"), changes: [(.invocationID, .bytes([3, 4]))]))
        #expect(Self.stale(cache) == ["a.service"])
        // Signals about units the cache does not hold change nothing.
        cache.apply(.propertiesChanged(path: "/org/freedesktop/systemd1/unit/x", changes: [(.nRestarts, .uint32(1))]))
        cache.apply(.unitRemoved(name: "t.timer"))
        #expect(Self.stale(cache) == ["a.service", "t.timer"])
        cache.apply(.reloading)
        #expect(Self.stale(cache) == ["a.service", "t.timer", "m.mount"])
        #expect(!cache.resubscribe)
        cache.apply(.managerChanged)
        #expect(cache.resubscribe)
    }

    /// The figures systemd reports while a unit has a control group come from its files; systemd's
    /// base (its counter at the unit's start) is measured at each refresh, and within an invocation
    /// never raised, so that the counter vigil exports never goes backwards.
    @Test func countersFromFilesKeepSystemdsBase() {
        var unit = CachedUnit(listed: Self.unit("a.service"))
        var refreshed = RefreshedUnit()
        refreshed.controlGroup = "/system.slice/a.service"
        refreshed.invocation = [1]
        refreshed.properties.cpuUsageNSec = 1_000
        refreshed.properties.memoryCurrent = 4096
        refreshed.properties.tasksCurrent = 2
        refreshed.properties.ipIngressBytes = 10
        refreshed.properties.ioReadBytes = notAvailable
        refreshed.readings[AccountingMetric.cpu.rawValue] = 1_500  // 500 used before this start
        refreshed.readings[AccountingMetric.memory.rawValue] = 8192
        refreshed.readings[AccountingMetric.tasks.rawValue] = 3
        var exported = unit.take(refreshed)
        #expect(exported.cpuUsageNSec == 1_000, "file − base is systemd's figure")
        #expect(exported.memoryCurrent == 8192, "gauges straight from the file")
        #expect(exported.tasksCurrent == 3)
        #expect(exported.ipIngressBytes == 10)
        #expect(exported.ioReadBytes == nil)
        #expect(unit.sources[AccountingMetric.cpu.rawValue] == .file(base: 500))
        #expect(unit.sources[AccountingMetric.memory.rawValue] == .file(base: 0))
        #expect(unit.sources[AccountingMetric.ipIngress.rawValue] == .bus, "IP accounting has no file")
        #expect(unit.sources[AccountingMetric.ioRead.rawValue] == .absent)
        #expect(unit.sources[AccountingMetric.ioWrite.rawValue] == .absent, "not reported at all")

        // Same invocation, read later: the file ran ahead of systemd's figure (a busy unit); the base
        // stays the lower one, so the counter does not step back.
        refreshed.properties.cpuUsageNSec = 2_000
        refreshed.readings[AccountingMetric.cpu.rawValue] = 2_600
        exported = unit.take(refreshed)
        #expect(unit.sources[AccountingMetric.cpu.rawValue] == .file(base: 500))
        #expect(exported.cpuUsageNSec == 2_100)
        // A new invocation (systemd reset its base at the start) is measured afresh.
        refreshed.invocation = [2]
        refreshed.properties.cpuUsageNSec = 100
        refreshed.readings[AccountingMetric.cpu.rawValue] = 2_800
        exported = unit.take(refreshed)
        #expect(unit.sources[AccountingMetric.cpu.rawValue] == .file(base: 2_700))
        #expect(exported.cpuUsageNSec == 100)

        // A file behind systemd's counter is not the cgroup systemd reads: all figures over the bus.
        refreshed.invocation = [3]
        refreshed.readings[AccountingMetric.cpu.rawValue] = 50
        exported = unit.take(refreshed)
        #expect(unit.sources[AccountingMetric.cpu.rawValue] == .bus)
        #expect(unit.sources[AccountingMetric.memory.rawValue] == .bus)
        #expect(exported.cpuUsageNSec == 100 && exported.memoryCurrent == 4096)

        // The host's root slice: systemd reads /proc, not the root cgroup's files.
        refreshed.controlGroup = "/"
        refreshed.readings[AccountingMetric.cpu.rawValue] = 5_000
        _ = unit.take(refreshed)
        #expect(unit.sources[AccountingMetric.cpu.rawValue] == .bus)

        // Stopped: no cgroup, systemd keeps its last CPU figure; no memory figure any more.
        refreshed.controlGroup = ""
        refreshed.properties.memoryCurrent = notAvailable
        refreshed.properties.tasksCurrent = notAvailable
        exported = unit.take(refreshed)
        #expect(unit.sources[AccountingMetric.cpu.rawValue] == .fixed(100))
        #expect(unit.sources[AccountingMetric.memory.rawValue] == .absent)
        #expect(unit.sources[AccountingMetric.ipIngress.rawValue] == .fixed(10))
        #expect(exported.cpuUsageNSec == 100 && exported.memoryCurrent == nil)
    }

    @Test func decodesSignals() throws {
        let changed = try TestMessage(
            path: "/org/freedesktop/systemd1/unit/a_2eservice",
            interface: "org.freedesktop.DBus.Properties",
            member: "PropertiesChanged"
        ) { message in
            try message.append("s", "org.freedesktop.systemd1.Service")
            try message.open("a", "{sv}")
            try message.property("StatusText", "s", "busy")
            try message.property("NRestarts", "u", UInt32(4))
            try message.close()
            try message.open("a", "s")
            try message.close()
        }
        #expect(
            try SystemdSignal(changed.message)
                == .propertiesChanged(
                    path: "/org/freedesktop/systemd1/unit/a_2eservice",
                    changes: [(.nRestarts, .uint32(4))]
                )
        )
        let unit = try TestMessage(
            path: "/org/freedesktop/systemd1/unit/a_2eservice",
            interface: "org.freedesktop.DBus.Properties",
            member: "PropertiesChanged"
        ) { message in
            try message.append("s", "org.freedesktop.systemd1.Unit")
            try message.open("a", "{sv}")
            try message.property("ActiveState", "s", "active")
            try message.property("InvocationID", "ay", [UInt8](repeating: 7, count: 16))
            try message.close()
            try message.open("a", "s")
            try message.close()
        }
        #expect(
            try SystemdSignal(unit.message)
                == .propertiesChanged(
                    path: "/org/freedesktop/systemd1/unit/a_2eservice",
                    changes: [(.invocationID, .bytes([UInt8](repeating: 7, count: 16)))]
                )
        )
        // Interfaces vigil tracks nothing of are ignored.
        let socket = try TestMessage(
            path: "/org/freedesktop/systemd1/unit/b_2esocket",
            interface: "org.freedesktop.DBus.Properties",
            member: "PropertiesChanged"
        ) { message in
            try message.append("s", "org.freedesktop.systemd1.Socket")
            try message.open("a", "{sv}")
            try message.close()
            try message.open("a", "s")
            try message.close()
        }
        #expect(try SystemdSignal(socket.message) == nil)
        let removed = try TestMessage(
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "UnitRemoved"
        ) { message in
            try message.append("s", "a.service")
            try message.append("o", "/org/freedesktop/systemd1/unit/a_2eservice")
        }
        #expect(try SystemdSignal(removed.message) == .unitRemoved(name: "a.service"))
        let reloading = try TestMessage(
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "Reloading"
        ) { message in try message.append(true) }
        #expect(try SystemdSignal(reloading.message) == .reloading)
        let other = try TestMessage(
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "JobNew"
        ) {
            message in try message.append(UInt32(1))
        }
        #expect(try SystemdSignal(other.message) == nil)
    }

    @Test func decodesTheCacheKeepingProperties() throws {
        let reply = try TestMessage { message in
            try message.open("a", "{sv}")
            try message.property("Accept", "b", true)
            try message.property("ControlGroup", "s", "/system.slice/b.socket")
            try message.property("NAccepted", "u", UInt32(3))
            try message.close()
        }
        var refreshed = RefreshedUnit()
        try decodeProperties(reply.message, wanted: PropertySet([.accept, .controlGroup, .nAccepted])) {
            refreshed.set($0, $1)
        }
        #expect(refreshed.accept)
        #expect(refreshed.controlGroup == "/system.slice/b.socket")
        #expect(refreshed.properties.nAccepted == 3)

        let listing = try TestMessage { message in
            try message.open("a", "(ssssssouso)")
            try message.open("r", "ssssssouso")
            for value in ["a.service", "A", "loaded", "active", "running", ""] { try message.append("s", value) }
            try message.append("o", "/org/freedesktop/systemd1/unit/a_2eservice")
            try message.append(UInt32(12))
            try message.append("s", "restart")
            try message.append("o", "/org/freedesktop/systemd1/job/12")
            try message.close()
            try message.close()
        }
        let units = try decodeListUnits(listing.message)
        #expect(units.map(\.subState) == ["running"])
        #expect(units.map(\.jobID) == [12])
    }
}

/// Accounting figures read from cgroup files as systemd computes them, on the recorded fixture trees
/// of the containers collector (cgroup v2, this host's hybrid layout, v1 with cpu,cpuacct together).
@Suite struct SystemdCgroupFilesTests {
    private func files(_ tree: String) throws -> AccountingFiles {
        let roots = fixtureRoots(tree)
        return AccountingFiles(
            mounts: parseCgroupMounts(try FileReader().read(roots.proc("self/mountinfo")), paths: roots)
        )
    }

    private func number(_ path: String, key: String? = nil) throws -> UInt64 {
        let text = try String(contentsOfFile: fixturesDirectory + "/" + path, encoding: .utf8)
        guard let key else { return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))! }
        let line = text.split(separator: "\n").first { $0.hasPrefix(key + " ") }!
        return UInt64(line.split(separator: " ")[1])!
    }

    @Test func readsV2Files() throws {
        let group = "/system.slice/cron.service"
        let readings = try self.files("cgroup-v2").read(AccountingMetric.allCases, controlGroup: group)
        let directory = "cgroup-v2/sys/fs/cgroup" + group
        #expect(
            readings[AccountingMetric.cpu.rawValue] == (try self.number(directory + "/cpu.stat", key: "usage_usec"))
                * 1000
        )
        #expect(readings[AccountingMetric.memory.rawValue] == (try self.number(directory + "/memory.current")))
        #expect(readings[AccountingMetric.tasks.rawValue] == (try self.number(directory + "/pids.current")))
        var read: UInt64 = 0
        var written: UInt64 = 0
        for line in try String(contentsOfFile: fixturesDirectory + "/" + directory + "/io.stat", encoding: .utf8)
            .split(separator: "\n")
        {
            for field in line.split(separator: " ") {
                if field.hasPrefix("rbytes=") { read += UInt64(field.dropFirst(7))! }
                if field.hasPrefix("wbytes=") { written += UInt64(field.dropFirst(7))! }
            }
        }
        #expect(readings[AccountingMetric.ioRead.rawValue] == read)
        #expect(readings[AccountingMetric.ioWrite.rawValue] == written)
        #expect(readings[AccountingMetric.ipIngress.rawValue] == nil)
        // A cgroup that is gone reads as nothing.
        #expect(
            try self.files("cgroup-v2").read([.cpu, .memory], controlGroup: "/system.slice/gone.service")
                == Array(repeating: nil, count: 7)
        )
    }

    @Test func readsV1FilesOnAHybridAndALegacyHost() throws {
        for (tree, cpuacct, group) in [
            ("cgroup-hybrid", "cpuacct", "/docker/0b3510b0b46ee1da317017a6205738d16018366cf658f7a75ed34fe53a096533"),
            ("cgroup-v1", "cpu,cpuacct", "/docker/5380d4e9486574c4c7a33f6100f0de716b9bb2f6535a7e07b6dffce8112d9d11"),
        ] {
            let readings = try self.files(tree).read(AccountingMetric.allCases, controlGroup: group)
            let base = tree + "/sys/fs/cgroup/"
            #expect(
                readings[AccountingMetric.cpu.rawValue] == (try self.number(base + cpuacct + group + "/cpuacct.usage"))
            )
            #expect(
                readings[AccountingMetric.memory.rawValue]
                    == (try self.number(base + "memory" + group + "/memory.usage_in_bytes"))
            )
            #expect(
                readings[AccountingMetric.tasks.rawValue] == (try self.number(base + "pids" + group + "/pids.current"))
            )
            // systemd reads IO only on cgroup v2 (a hybrid host's unified tree has no io.stat).
            #expect(readings[AccountingMetric.ioRead.rawValue] == nil)
        }
    }

    @Test func oddFiles() {
        #expect(parseCPUUsage(ArraySlice("user_usec 5\nusage_usec 7\n".utf8)) == 7000)
        #expect(parseCPUUsage(ArraySlice("user_usec 5\n".utf8)) == nil)
        #expect(parseCPUUsage(ArraySlice("usage_usec x\n".utf8)) == nil)
        #expect(parseCPUUsage(ArraySlice("usage_usec 18446744073709551615\n".utf8)) == nil, "overflow")
        #expect(parseCPUUsage([]) == nil)
        let io = parseIOBytes(
            ArraySlice("8:0 rbytes=10 wbytes=20 rios=1 wios=2\ngarbage\n8:16 rbytes=5 wbytes=x dbytes=9\n".utf8)
        )
        #expect(io.read == 15 && io.write == 20)
        #expect(parseIOBytes([]) == (0, 0))
        #expect(relativePath("/system.slice/a.service", below: "/") == "system.slice/a.service")
        #expect(relativePath("/", below: "/") == "")
        #expect(relativePath("/kubepods/a.service", below: "/kubepods") == "a.service")
        #expect(relativePath("/kubepods2/a.service", below: "/kubepods") == nil)
        #expect(relativePath("/system.slice/a.service", below: "/kubepods/") == nil)
    }
}
