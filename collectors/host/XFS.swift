import VigilCore

/// Each mounted XFS file system's activity counters (extent allocation, B-trees, directory, inode cache
/// and vnode operations, read and write calls) from `/sys/fs/xfs/<device>/stats/stats`, labelled by
/// device. Hosts without XFS have no series.
struct XFSCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "xfs",
        enabledByDefault: true,
        help: "XFS file systems' statistics from /sys/fs/xfs"
    ) { setup in
        XFSCollector(directory: setup.paths.sys("fs/xfs"))
    }

    let directory: String

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var devices: [(name: String, lines: [String: [UInt64]])] = []
        for name in try FileSystem.sortedEntriesIfPresent(of: self.directory) {
            // The directory also holds `stats` (all file systems together), which has no `stats/stats`.
            let path = self.directory + "/" + name + "/stats/stats"
            guard FileSystem.exists(path) else { continue }
            do {
                let (lines, broken) = parseXFSStats(try context.reader.read(path))
                for key in broken { context.recordFailure("\(path): unexpected \(key) line") }
                devices.append((name, lines))
            } catch  where error.isNotFound {
                // Unmounted since the directory was listed.
            } catch {
                context.recordFailure("\(error)")
            }
        }
        for line in xfsLines {
            for (index, family) in line.families.enumerated() {
                var started = false
                for device in devices {
                    guard let values = device.lines[line.key] else { continue }
                    if !started {
                        writer.family(family)
                        started = true
                    }
                    writer.sample(Double(values[index]), ("device", device.name))
                }
            }
        }
    }
}

/// The values of the lines node_exporter reports, by key; the keys of those lines that do not hold
/// what such a line holds (their series are left out).
func parseXFSStats(_ bytes: ArraySlice<UInt8>) -> (lines: [String: [UInt64]], broken: [String]) {
    var lines: [String: [UInt64]] = [:]
    var broken: [String] = []
    for text in bytes.lines {
        var fields = text.fields
        guard let key = fields.next()?.string, let line = xfsLines.first(where: { $0.key == key }) else { continue }
        let values = fields.map { $0.parseUInt64() }
        guard line.valueCounts.contains(values.count), values.allSatisfy({ $0 != nil }) else {
            broken.append(key)
            continue
        }
        lines[key] = values.map { $0! }
    }
    return (lines, broken)
}

/// A line of the stats file that node_exporter reports: its key, how many values the kernel writes on
/// it, and the family of each of its first values.
private struct XFSStatsLine {
    let key: String
    let valueCounts: Set<Int>
    let families: [MetricFamily]

    init(_ key: String, _ valueCounts: Set<Int>, _ families: [(name: String, help: String)]) {
        self.key = key
        self.valueCounts = valueCounts
        self.families = families.map { MetricFamily("node_xfs_" + $0.name, help: $0.help, type: .counter) }
    }
}

private let xfsLines: [XFSStatsLine] = [
    XFSStatsLine(
        "extent_alloc",
        [4],
        [
            ("extent_allocation_extents_allocated_total", "Number of extents allocated for a filesystem."),
            ("extent_allocation_blocks_allocated_total", "Number of blocks allocated for a filesystem."),
            ("extent_allocation_extents_freed_total", "Number of extents freed for a filesystem."),
            ("extent_allocation_blocks_freed_total", "Number of blocks freed for a filesystem."),
        ]
    ),
    XFSStatsLine("abt", [4], btreeFamilies("allocation_btree", "allocation")),
    XFSStatsLine(
        "blk_map",
        [7],
        [
            ("block_mapping_reads_total", "Number of block map for read operations for a filesystem."),
            ("block_mapping_writes_total", "Number of block map for write operations for a filesystem."),
            ("block_mapping_unmaps_total", "Number of block unmaps (deletes) for a filesystem."),
            ("block_mapping_extent_list_insertions_total", "Number of extent list insertions for a filesystem."),
            ("block_mapping_extent_list_deletions_total", "Number of extent list deletions for a filesystem."),
            ("block_mapping_extent_list_lookups_total", "Number of extent list lookups for a filesystem."),
            ("block_mapping_extent_list_compares_total", "Number of extent list compares for a filesystem."),
        ]
    ),
    XFSStatsLine("bmbt", [4], btreeFamilies("block_map_btree", "block map")),
    XFSStatsLine(
        "dir",
        [4],
        [
            (
                "directory_operation_lookup_total",
                "Number of file name directory lookups which miss the operating systems directory name lookup cache."
            ),
            (
                "directory_operation_create_total",
                "Number of times a new directory entry was created for a filesystem."
            ),
            (
                "directory_operation_remove_total",
                "Number of times an existing directory entry was created for a filesystem."
            ),
            (
                "directory_operation_getdents_total",
                "Number of times the directory getdents operation was performed for a filesystem."
            ),
        ]
    ),
    XFSStatsLine(
        "ig",
        [7],
        [
            ("inode_operation_attempts_total", "Number of times the OS looked for an XFS inode in the inode cache."),
            (
                "inode_operation_found_total",
                "Number of times the OS looked for and found an XFS inode in the inode cache."
            ),
            (
                "inode_operation_recycled_total",
                "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled."
            ),
            (
                "inode_operation_missed_total",
                "Number of times the OS looked for an XFS inode in the cache, but did not find it."
            ),
            (
                "inode_operation_duplicates_total",
                "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process."
            ),
            (
                "inode_operation_reclaims_total",
                "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose."
            ),
            (
                "inode_operation_attribute_changes_total",
                "Number of times the OS explicitly changed the attributes of an XFS inode."
            ),
        ]
    ),
    // Writes first: the kernel's counters are in that order.
    XFSStatsLine(
        "rw",
        [2],
        [
            ("write_calls_total", "Number of write(2) system calls made to files in a filesystem."),
            ("read_calls_total", "Number of read(2) system calls made to files in a filesystem."),
        ]
    ),
    // Older kernels write seven values, without the free count node_exporter does not report anyway.
    XFSStatsLine(
        "vnodes",
        [7, 8],
        [
            ("vnode_active_total", "Number of vnodes not on free lists for a filesystem."),
            ("vnode_allocate_total", "Number of times vn_alloc called for a filesystem."),
            ("vnode_get_total", "Number of times vn_get called for a filesystem."),
            ("vnode_hold_total", "Number of times vn_hold called for a filesystem."),
            ("vnode_release_total", "Number of times vn_rele called for a filesystem."),
            ("vnode_reclaim_total", "Number of times vn_reclaim called for a filesystem."),
            ("vnode_remove_total", "Number of times vn_remove called for a filesystem."),
        ]
    ),
]

/// The four counters of a B-tree line (lookups, compares, records inserted and deleted).
private func btreeFamilies(_ prefix: String, _ tree: String) -> [(name: String, help: String)] {
    [
        (prefix + "_lookups_total", "Number of \(tree) B-tree lookups for a filesystem."),
        (prefix + "_compares_total", "Number of \(tree) B-tree compares for a filesystem."),
        (prefix + "_records_inserted_total", "Number of \(tree) B-tree records inserted for a filesystem."),
        (prefix + "_records_deleted_total", "Number of \(tree) B-tree records deleted for a filesystem."),
    ]
}
