import Testing
import VigilCore

@testable import Collectors

@Suite struct XFSTests {
    /// sda1 has a recent kernel's stats file, dm-0 an older kernel's (fewer lines, seven vnode values);
    /// the directory's own `stats` (all file systems together) is not a device.
    @Test func matchesNodeExporterOnTheFixtureFileSystems() throws {
        let collected = try collect(XFSCollector.descriptor, roots: fixtureRoots("xfs"))
        expectSameFamilies(collected.families, try golden("xfs"))
        #expect(collected.failures.isEmpty)
        // The kernel writes write calls before read calls.
        #expect(collected.value("node_xfs_write_calls_total", ["device": "sda1"]) == 107_739)
    }

    @Test func aLineThatCannotBeReadCostsOnlyItsOwnSeries() throws {
        let tree = try TemporaryTree(files: [
            "sys/fs/xfs/sdb/stats/stats": "extent_alloc 1 2 3 4\nrw 5\ndir 6 7 8 x\nvnodes 1 2 3 4 5 6 7 8\n"
        ])
        let collected = try collect(XFSCollector.descriptor, roots: tree.roots)
        #expect(collected.value("node_xfs_extent_allocation_blocks_freed_total", ["device": "sdb"]) == 4)
        #expect(collected.value("node_xfs_vnode_remove_total", ["device": "sdb"]) == 7)
        #expect(collected[family: "node_xfs_read_calls_total"] == nil)
        #expect(collected[family: "node_xfs_directory_operation_lookup_total"] == nil)
        #expect(collected.failures.count == 2)
    }

    @Test func noXFSGivesNoSeries() throws {
        let collected = try collect(XFSCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.families.isEmpty)
        #expect(collected.failures.isEmpty)
    }
}
