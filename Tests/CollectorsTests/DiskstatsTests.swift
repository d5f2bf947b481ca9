import Synchronization
import Testing
import VigilCore

@testable import Collectors

@Suite struct DiskstatsTests {
    /// node_exporter's family for each statistics column of /proc/diskstats, in kernel order, and the
    /// factor to its unit (512-byte sectors to bytes, ms to s; discarded sectors stay sectors).
    static let columns: [(family: String, scale: Double)] = [
        ("node_disk_reads_completed_total", 1), ("node_disk_reads_merged_total", 1),
        ("node_disk_read_bytes_total", 512), ("node_disk_read_time_seconds_total", 0.001),
        ("node_disk_writes_completed_total", 1), ("node_disk_writes_merged_total", 1),
        ("node_disk_written_bytes_total", 512), ("node_disk_write_time_seconds_total", 0.001),
        ("node_disk_io_now", 1), ("node_disk_io_time_seconds_total", 0.001),
        ("node_disk_io_time_weighted_seconds_total", 0.001), ("node_disk_discards_completed_total", 1),
        ("node_disk_discards_merged_total", 1), ("node_disk_discarded_sectors_total", 1),
        ("node_disk_discard_time_seconds_total", 0.001), ("node_disk_flush_requests_total", 1),
        ("node_disk_flush_requests_time_seconds_total", 0.001),
    ]

    @Test func parsesTheLinesOfEveryKernelAge() throws {
        let stats = parseDiskstats(
            ArraySlice(
                """
                   8       0 sda 1 2 3 4 5 6 7 8 9 10 11
                 253       0 dm-0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
                 259       0 nvme0n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 18446744073709551615
                 259       1 nvme1n1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19

                """.utf8
            )
        )
        #expect(stats.devices.map(\.name) == ["sda", "dm-0", "nvme0n1", "nvme1n1"])
        #expect(stats.devices.map(\.columns.count) == [11, 15, 17, 17])
        #expect(stats.devices[1].major == 253)
        #expect(stats.value(stats.devices[0], column: 10) == 11)
        #expect(stats.value(stats.devices[0], column: 11) == nil)
        #expect(stats.value(stats.devices[2], column: 16) == UInt64.max)
        // Columns a future kernel adds are ignored.
        #expect(stats.value(stats.devices[3], column: 17) == nil)
        #expect(stats.broken == 0)
    }

    @Test func aBrokenLineCostsOnlyThatDevice() {
        let stats = parseDiskstats(
            ArraySlice(
                """
                   8 0 sda 1 2 3 4 5 6 7 8 9 10
                   8 16 sdb 1 2 3 4 5 6 7 8 9 10 x
                   x 0 sdc 1 2 3 4 5 6 7 8 9 10 11
                   8 32
                   8 48 sdd 1 2 3 4 5 6 7 8 9 10 11
                   8 64 sde 1 2 3 4 5 6 7 8 9 10 -11

                """.utf8
            )
        )
        #expect(stats.devices.map(\.name) == ["sdd"])
        #expect(stats.value(stats.devices[0], column: 0) == 1)
        #expect(stats.broken == 5)
        #expect(parseDiskstats([]).devices.isEmpty)
    }

    @Test func reportsTheCountersOfARecordedHostInNodeExporterUnits() throws {
        let collected = try collect(DiskstatsCollector.descriptor, roots: fixtureRoots("debian12"))
        let lines = try fixtureText("debian12/proc/diskstats").split(separator: "\n").map { $0.split(separator: " ") }
        let vda = try #require(lines.first { $0[2] == "vda" })
        #expect(vda.count == 20)
        for (column, (family, scale)) in Self.columns.enumerated() {
            #expect(collected.value(family, ["device": "vda"]) == Double(vda[column + 3])! * scale, "\(family)")
        }
        #expect(collected[family: "node_disk_io_now"]?.type == "gauge")
        #expect(collected[family: "node_disk_reads_completed_total"]?.type == "counter")
        // The default exclusion drops loop, zram and partitions: vda alone is left.
        #expect(collected.families.allSatisfy { $0.samples.map { $0[label: "device"] } == ["vda"] })
        #expect(collected.families.count == 18)
        // Without a udev database node_disk_info is still written, with empty udev labels; the
        // families only udev data gives are not.
        let info = try #require(collected[family: "node_disk_info"]?.samples.first)
        #expect(info[label: "major"] == "254" && info[label: "minor"] == "0")
        #expect(info[label: "model"] == "" && info[label: "serial"] == "" && info[label: "path"] == "")
        #expect(collected[family: "node_disk_filesystem_info"] == nil)
        #expect(collected.failures.isEmpty)
    }

    @Test func writesOnlyTheColumnsTheKernelProvides() throws {
        let collected = try collect(DiskstatsCollector.descriptor, roots: fixtureRoots("handmade"))
        func devices(_ family: String) -> [String] {
            collected[family: family]?.samples.compactMap { $0[label: "device"] } ?? []
        }
        // sda has the 14 fields of old kernels, dm-0 18, nvme0n1 and vdb 20; sda1 and loop0 are excluded.
        #expect(devices("node_disk_io_time_weighted_seconds_total") == ["sda", "dm-0", "nvme0n1", "vdb"])
        #expect(devices("node_disk_discarded_sectors_total") == ["dm-0", "nvme0n1", "vdb"])
        #expect(devices("node_disk_flush_requests_total") == ["nvme0n1", "vdb"])
        // Huge values keep their magnitude; discarded sectors are not multiplied.
        #expect(collected.value("node_disk_discarded_sectors_total", ["device": "nvme0n1"]) == Double(UInt64.max))
        #expect(
            collected.value("node_disk_read_bytes_total", ["device": "nvme0n1"]) == Double(
                9_007_199_254_740_993 as UInt64
            ) * 512
        )
    }

    @Test(arguments: ["debian12", "handmade"])
    func matchesNodeExporter(tree: String) throws {
        let collected = try collect(DiskstatsCollector.descriptor, roots: fixtureRoots(tree))
        let reference = try golden("\(tree)-diskstats")
        // node_exporter 1.5.0 excluded ram but not zram devices (1.12's default excludes both).
        let counters = reference.dropping(["node_disk_info"]).droppingSamples { $0[label: "device"] == "zram0" }
        expectSameFamilies(collected.families.dropping(["node_disk_info"]), counters)
        // 1.5.0 has no rotational label (1.12 reads queue/rotational) and takes the serial from
        // ID_SERIAL_SHORT only (1.12 prefers SCSI_IDENT_SERIAL, falls back to ID_SERIAL). Without a
        // udev database (debian12) both write node_disk_info with empty udev labels.
        let info: Set<String> = ["node_disk_info"]
        let ours = collected.families.filter { info.contains($0.name) }.removingLabel("rotational")
        let theirs = reference.filter { info.contains($0.name) }.droppingSamples { $0[label: "device"] == "zram0" }
        #expect(!theirs.isEmpty)
        expectSameFamilies(ours.removingLabel("serial"), theirs.removingLabel("serial"))
    }

    @Test func describesDevicesFromTheUdevDatabase() throws {
        let collected = try collect(DiskstatsCollector.descriptor, roots: fixtureRoots("handmade"))
        func udev(_ file: String) throws -> [String: String] {
            var properties: [String: String] = [:]
            for line in try fixtureText("handmade/udev/" + file).split(separator: "\n") where line.hasPrefix("E:") {
                let (key, value) = line.dropFirst(2).split(
                    separator: "=",
                    maxSplits: 1,
                    omittingEmptySubsequences: false
                )
                .map(String.init).pair
                properties[key] = value
            }
            return properties
        }
        func rotational(_ device: String) throws -> String {
            String(try fixtureText("handmade/sys/block/\(device)/queue/rotational").split(separator: "\n")[0])
        }
        func info(_ device: String) -> [String: String] {
            let sample = collected[family: "node_disk_info"]?.samples.first { $0[label: "device"] == device }
            return Dictionary(uniqueKeysWithValues: sample?.labels.map { ($0.name, $0.value) } ?? [])
        }
        let sda = try udev("b8:0")
        #expect(
            info("sda") == [
                "device": "sda", "major": "8", "minor": "0", "model": sda["ID_MODEL"]!, "path": sda["ID_PATH"]!,
                "revision": sda["ID_REVISION"]!, "rotational": try rotational("sda"), "serial": sda["ID_SERIAL_SHORT"]!,
                "wwn": sda["ID_WWN"]!,
            ]
        )
        // SCSI_IDENT_SERIAL comes first (escaped in the output), ID_SERIAL last (virtio disks).
        #expect(info("nvme0n1")["serial"] == (try udev("b259:0"))["SCSI_IDENT_SERIAL"])
        #expect(collected.text.contains(#"serial="S4EWNX0R123456K \"label\"""#))
        #expect(info("vdb")["serial"] == (try udev("b254:16"))["ID_SERIAL"])
        // No queue/rotational: "0", as node_exporter.
        #expect(info("vdb")["rotational"] == "0")
        #expect(info("nvme0n1")["rotational"] == (try rotational("nvme0n1")))

        let dm = try udev("b253:0")
        let filesystem = try #require(collected[family: "node_disk_filesystem_info"]?.samples)
        #expect(filesystem.count == 1)
        #expect(filesystem[0][label: "device"] == "dm-0")
        #expect(filesystem[0][label: "type"] == dm["ID_FS_TYPE"])
        #expect(filesystem[0][label: "uuid"] == dm["ID_FS_UUID"])
        #expect(filesystem[0][label: "usage"] == dm["ID_FS_USAGE"])
        #expect(filesystem[0][label: "version"] == dm["ID_FS_VERSION"])
        let mapper = try #require(collected[family: "node_disk_device_mapper_info"]?.samples)
        #expect(mapper.count == 1)
        #expect(mapper[0][label: "name"] == dm["DM_NAME"])
        #expect(mapper[0][label: "uuid"] == dm["DM_UUID"])
        #expect(mapper[0][label: "vg_name"] == dm["DM_VG_NAME"])
        #expect(mapper[0][label: "lv_name"] == dm["DM_LV_NAME"])
        #expect(mapper[0][label: "lv_layer"] == "")

        #expect(
            collected.value("node_disk_ata_rotation_rate_rpm", ["device": "sda"])
                == Double(sda["ID_ATA_ROTATION_RATE_RPM"]!)
        )
        #expect(collected.value("node_disk_ata_write_cache", ["device": "sda"]) == Double(sda["ID_ATA_WRITE_CACHE"]!))
        #expect(
            collected.value("node_disk_ata_write_cache_enabled", ["device": "sda"])
                == Double(sda["ID_ATA_WRITE_CACHE_ENABLED"]!)
        )
        #expect(collected[family: "node_disk_ata_write_cache"]?.samples.count == 1)
    }

    @Test func aDeviceWithoutUdevDataHasEmptyInfoLabels() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/diskstats", " 8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n")
        try tree.write("udev/b8:1", "E:ID_MODEL=other\n")
        let collected = try collect(DiskstatsCollector.descriptor, roots: tree.roots)
        let info = try #require(collected[family: "node_disk_info"]?.samples.first)
        #expect(info[label: "model"] == "")
        #expect(info[label: "rotational"] == "0")
        #expect(info[label: "major"] == "8")
        #expect(collected[family: "node_disk_filesystem_info"] == nil)
    }

    /// `queue/rotational` is read through files kept open between scrapes, which show a new value, and
    /// are let go with their device.
    @Test func keepsRotationalOpenWhileTheDeviceIsListed() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/diskstats", " 8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n 8 16 sdb 1 2 3 4 5 6 7 8 9 10 11\n")
        try tree.write("sys/block/sda/queue/rotational", "1\n")
        try tree.write("sys/block/sdb/queue/rotational", "0\n")
        let collector = try #require(
            try makeCollector(DiskstatsCollector.descriptor, roots: tree.roots) as? DiskstatsCollector
        )
        func rotational() throws -> [String: String] {
            let samples = try #require(try collect(collector, roots: tree.roots)[family: "node_disk_info"]).samples
            return Dictionary(uniqueKeysWithValues: samples.map { ($0[label: "device"]!, $0[label: "rotational"]!) })
        }
        func kept() -> [String] { collector.kept.files.withLock { $0.keys.sorted() } }
        #expect(try rotational() == ["sda": "1", "sdb": "0"])
        #expect(kept() == ["sda", "sdb"])
        try tree.write("sys/block/sda/queue/rotational", "0\n")
        #expect(try rotational() == ["sda": "0", "sdb": "0"])
        try tree.write("proc/diskstats", " 8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n")
        #expect(try rotational() == ["sda": "0"])
        #expect(kept() == ["sda"])
    }

    @Test func parsesUdevProperties() {
        let bytes = ArraySlice(
            "S:disk/by-id/x\nE:ID_SERIAL=long\nE:ID_SERIAL_SHORT=short\nE:ID_FS_UUID=a=b\nE:ID_MODEL=\nI:5\nE:ID_ATA=1\nE:broken\n"
                .utf8
        )
        let properties = parseUdevProperties(bytes)
        #expect(properties.serial.string == "short")
        #expect(properties.fsUUID.string == "a=b")
        #expect(properties.model.isEmpty)
        #expect(properties.ata.string == "1")
        #expect(properties.ataWriteCache == nil)
        #expect(parseUdevProperties(ArraySlice("E:ID_SERIAL=only\n".utf8)).serial.string == "only")
        #expect(parseUdevProperties([]).serial.isEmpty)
    }

    @Test func devicesCanBeIncludedInsteadOfExcluded() throws {
        let included = try collect(
            DiskstatsCollector.descriptor,
            roots: fixtureRoots("handmade"),
            settings: ["collector.diskstats.device-include": .regex("^sd")]
        )
        #expect(
            included[family: "node_disk_reads_completed_total"]?.samples.map { $0[label: "device"] } == ["sda", "sda1"]
        )
        #expect(throws: ConfigurationError.self) {
            try collect(
                DiskstatsCollector.descriptor,
                roots: fixtureRoots("handmade"),
                settings: [
                    "collector.diskstats.device-include": .regex("^sd"),
                    "collector.diskstats.device-exclude": .regex("^loop"),
                ]
            )
        }
        let spec = DiskstatsCollector.descriptor.options.first { $0.name == "collector.diskstats.device-exclude" }
        #expect(spec?.aliases == ["collector.diskstats.ignored-devices"])
    }
}

extension Array {
    /// The first two elements, for a split into key and value.
    fileprivate var pair: (Element, Element) { (self[0], self[1]) }
}
