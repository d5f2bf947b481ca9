import Testing
import VigilCore

@testable import Collectors

@Suite struct MdadmTests {
    /// The fixture has an array of each kind and state: raid6 with a bitmap, raid1 recovering with a failed
    /// disk, raid1 checking with a spare, raid10 whose resync is delayed, raid0, an inactive array,
    /// an auto-read-only raid5 whose resync is pending, a raid5 resyncing, and a linear one.
    @Test func matchesNodeExporterOnEveryKindOfArray() throws {
        let collected = try collect(MdadmCollector.descriptor, roots: fixtureRoots("mdadm"))
        // Debian's node_exporter 1.5.0 does not read the kernel's counts under /sys (1.12 does).
        expectSameFamilies(
            collected.families.dropping(["node_md_raid_disks", "node_md_degraded"]),
            try golden("mdadm")
        )
        #expect(collected.failures.isEmpty)
        #expect(collected.value("node_md_disks", ["device": "md127", "state": "failed"]) == 1)
        #expect(collected.value("node_md_state", ["device": "md127", "state": "recovering"]) == 1)
        #expect(collected.value("node_md_blocks_synced", ["device": "md127"]) == 457_089_920)
    }

    @Test func kernelCountsComeFromSysfs() throws {
        let collected = try collect(MdadmCollector.descriptor, roots: fixtureRoots("mdadm"))
        #expect(collected.value("node_md_raid_disks", ["device": "md127"]) == 2)
        #expect(collected.value("node_md_degraded", ["device": "md127"]) == 1)
        #expect(collected.value("node_md_raid_disks", ["device": "md6"]) == 3)
        #expect(collected.value("node_md_degraded", ["device": "md6"]) == 1)
        // raid0 and linear arrays have no `degraded`: nothing of theirs can be missing.
        #expect(collected.value("node_md_degraded", ["device": "md2"]) == 0)
        #expect(collected.value("node_md_degraded", ["device": "md7"]) == 0)
        // Only md devices, each once.
        #expect(collected[family: "node_md_raid_disks"]?.samples.count == 9)
    }

    @Test func aBrokenArrayCostsOnlyItsOwnSeries() throws {
        let tree = try TemporaryTree(files: [
            "proc/mdstat": """
            Personalities : [raid1]
            md0 : active raid1 sdb1[1] sda1[0]
                  1000 blocks super 1.2 [2/2] [UU]
                  
            md1 : active raid1 sdd1[1] sdc1[0]
                  garbage blocks super 1.2 [2/2] [UU]
                  
            md2 : active raid1 sdf1[1] sde1[0]
                  2000 blocks super 1.2 [2/2] [UU]
                  [==>..................]  recovery = 12.6% (garbage/2000) finish=1.0min speed=1K/sec
                  
            md3 : active raid1 sdh1[1] sdg1[0]
                  3000 blocks super 1.2 [2] [UU]
                  
            md4 : active raid1 sdj1[1] sdi1[0]
                  4000 blocks super 1.2 [2/1] [U_]
                  
            unused devices: <none>

            """,
            "sys/block/md0/md/raid_disks": "2\n",
            "sys/block/md0/md/degraded": "0\n",
            "sys/block/md1/md/raid_disks": "two\n",
            "sys/block/md4/md/raid_disks": "2\n",
            "sys/block/md4/md/degraded": "?\n",
            // An md device not yet set up has no `md` directory.
            "sys/block/md9/size": "0\n",
            "sys/block/sda/size": "100\n",
        ])
        let collected = try collect(MdadmCollector.descriptor, roots: tree.roots)
        let devices = collected[family: "node_md_blocks"]?.samples.map { $0[label: "device"]! }
        #expect(devices == ["md0", "md4"])
        #expect(collected.value("node_md_disks", ["device": "md4", "state": "active"]) == 1)
        #expect(collected.failures.count == 5)  // md1, md2, md3 in mdstat; md1's raid_disks, md4's degraded
        #expect(collected[family: "node_md_raid_disks"]?.samples.map { $0[label: "device"]! } == ["md0"])
    }

    @Test func noMDDriverIsNoData() throws {
        expectNoData(MdadmCollector.descriptor, roots: fixtureRoots("debian12"))
    }

    @Test func noArraysGiveNoSeries() throws {
        let tree = try TemporaryTree(files: [
            "proc/mdstat": "Personalities : \nunused devices: <none>\n"
        ])
        let collected = try collect(MdadmCollector.descriptor, roots: tree.roots)
        #expect(collected.families.isEmpty)
        #expect(collected.failures.isEmpty)
    }
}
