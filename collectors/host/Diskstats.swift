import VigilCore

/// Block device I/O counters from `/proc/diskstats` (`node_disk_*`), only those the kernel writes
/// (14 fields before Linux 4.18, 18 with discards, 20 with flushes since 5.5), and what the udev
/// database (`--path.udev.data`) and `queue/rotational` say about each device.
///
/// Where the udev database does not exist (containers without `/run/udev`), `node_disk_info` is
/// still written, with empty udev labels, as node_exporter writes it; the families that come only
/// from udev data are left out.
struct DiskstatsCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "diskstats",
        enabledByDefault: true,
        help: "block device I/O statistics from /proc/diskstats",
        options: [
            OptionSpec(
                "collector.diskstats.device-exclude",
                .regex(#"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"#),
                help: "Regexp of diskstats devices to exclude (mutually exclusive to device-include).",
                aliases: ["collector.diskstats.ignored-devices"]
            ),
            OptionSpec(
                "collector.diskstats.device-include",
                .regex(""),
                help: "Regexp of diskstats devices to include (mutually exclusive to device-exclude)."
            ),
        ]
    ) { setup in
        DiskstatsCollector(
            file: KeptOpenFile(setup.paths.proc("diskstats"), end: .roomForLine(1024)),
            filter: try setup.nameFilter(
                include: "collector.diskstats.device-include",
                exclude: "collector.diskstats.device-exclude"
            ),
            paths: setup.paths,
            udev: FileSystem.isDirectory(setup.paths.udevData)
        )
    }

    /// Most `queue/rotational` files kept open between scrapes, one per device: looking the path up
    /// through `/sys/block`'s links costs the kernel several times the read. Others are opened per scrape.
    static let keptFiles = 64

    let file: KeptOpenFile
    let filter: NameFilter
    let paths: PathRoots
    /// Whether the udev database exists (checked once, as node_exporter does).
    let udev: Bool
    let kept = KeptDeviceFiles()

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let stats = parseDiskstats(try context.reader.read(self.file)) { self.filter.allows($0) }
        if stats.broken > 0 {
            context.recordFailure("\(stats.broken) unreadable lines in \(self.file.path)")
        }
        for family in diskstatsFamilies {
            var started = false
            for device in stats.devices {
                guard let value = stats.value(device, column: family.column) else { continue }
                if !started {
                    writer.family(family.family)
                    started = true
                }
                writer.sample(Double(value) * family.scale, ("device", device.name))
            }
        }
        self.writeInfo(stats.devices, into: &writer, context: context)
    }

    /// Writes `node_disk_info`, `node_disk_filesystem_info`, `node_disk_device_mapper_info` and
    /// `node_disk_ata_*` from each device's udev data and `queue/rotational`.
    private func writeInfo(_ devices: [Diskstats.Device], into writer: inout MetricWriter, context: ScrapeContext) {
        guard !devices.isEmpty else { return }
        var infos: [(device: Diskstats.Device, rotational: String, udev: UdevProperties)] = []
        infos.reserveCapacity(devices.count)
        let rotational = self.kept.values(
            of: devices.map(\.name),
            files: rotationalFile,
            in: self.paths.sys("block"),
            descriptors: Self.keptFiles
        ) { _, files in Self.rotational(files, context: context) }
        for (device, rotational) in zip(devices, rotational) {
            // A copy, so that the properties outlive the reader's next read.
            let path = self.paths.udev("b\(device.major):\(device.minor)")
            let bytes = self.udev ? (try? Array(context.reader.read(path))) ?? [] : []
            // node_exporter writes the number in base 2; 0 when the file is missing.
            infos.append((device, rotational.map { String($0, radix: 2) } ?? "0", parseUdevProperties(bytes[...])))
        }
        writer.family(infoFamily)
        for info in infos {
            let udev = info.udev
            writer.sample(
                1,
                ("device", info.device.name),
                ("major", info.device.major),
                ("minor", info.device.minor),
                ("model", udev.model),
                ("path", udev.path),
                ("revision", udev.revision),
                ("rotational", info.rotational),
                ("serial", udev.serial),
                ("wwn", udev.wwn)
            )
        }
        if infos.contains(where: { !$0.udev.fsType.isEmpty }) {
            writer.family(filesystemInfoFamily)
            for info in infos where !info.udev.fsType.isEmpty {
                let udev = info.udev
                writer.sample(
                    1,
                    ("device", info.device.name),
                    ("type", udev.fsType),
                    ("usage", udev.fsUsage),
                    ("uuid", udev.fsUUID),
                    ("version", udev.fsVersion)
                )
            }
        }
        if infos.contains(where: { !$0.udev.dmName.isEmpty }) {
            writer.family(deviceMapperInfoFamily)
            for info in infos where !info.udev.dmName.isEmpty {
                let udev = info.udev
                writer.sample(
                    1,
                    ("device", info.device.name),
                    ("lv_layer", udev.dmLVLayer),
                    ("lv_name", udev.dmLVName),
                    ("name", udev.dmName),
                    ("uuid", udev.dmUUID),
                    ("vg_name", udev.dmVGName)
                )
            }
        }
        for family in ataFamilies {
            var started = false
            for info in infos where !info.udev.ata.isEmpty {
                guard let text = info.udev[keyPath: family.property] else { continue }
                guard let value = text.parseDouble() else {
                    context.recordFailure(
                        "udev data of \(info.device.name): \(family.family.nameString) is not a number"
                    )
                    continue
                }
                if !started {
                    writer.family(family.family)
                    started = true
                }
                writer.sample(value, ("device", info.device.name))
            }
        }
    }
}

/// The counter families, sorted by name, with the column (after the device name) each comes from
/// and the factor to node_exporter's unit: 512-byte sectors to bytes, milliseconds to seconds.
/// Discarded sectors stay sectors, as in node_exporter.
private let diskstatsFamilies: [(family: MetricFamily, column: Int, scale: Double)] = [
    (counter("discard_time_seconds_total", "This is the total number of seconds spent by all discards."), 14, 0.001),
    (counter("discarded_sectors_total", "The total number of sectors discarded successfully."), 13, 1),
    (counter("discards_completed_total", "The total number of discards completed successfully."), 11, 1),
    (counter("discards_merged_total", "The total number of discards merged."), 12, 1),
    (
        counter(
            "flush_requests_time_seconds_total",
            "This is the total number of seconds spent by all flush requests."
        ), 16, 0.001
    ),
    (counter("flush_requests_total", "The total number of flush requests completed successfully"), 15, 1),
    (MetricFamily("node_disk_io_now", help: "The number of I/Os currently in progress.", type: .gauge), 8, 1),
    (counter("io_time_seconds_total", "Total seconds spent doing I/Os."), 9, 0.001),
    (counter("io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os."), 10, 0.001),
    (counter("read_bytes_total", "The total number of bytes read successfully."), 2, 512),
    (counter("read_time_seconds_total", "The total number of seconds spent by all reads."), 3, 0.001),
    (counter("reads_completed_total", "The total number of reads completed successfully."), 0, 1),
    (counter("reads_merged_total", "The total number of reads merged."), 1, 1),
    (counter("write_time_seconds_total", "This is the total number of seconds spent by all writes."), 7, 0.001),
    (counter("writes_completed_total", "The total number of writes completed successfully."), 4, 1),
    (counter("writes_merged_total", "The number of writes merged."), 5, 1),
    (counter("written_bytes_total", "The total number of bytes written successfully."), 6, 512),
]

private func counter(_ name: String, _ help: String) -> MetricFamily {
    MetricFamily("node_disk_" + name, help: help, type: .counter)
}

private let ataFamilies:
    [(family: MetricFamily, property: any KeyPath<UdevProperties, ArraySlice<UInt8>?> & Sendable)] = [
        (gauge("ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs)."), \.ataRotationRateRPM),
        (gauge("ata_write_cache", "ATA disk has a write cache."), \.ataWriteCache),
        (gauge("ata_write_cache_enabled", "ATA disk has its write cache enabled."), \.ataWriteCacheEnabled),
    ]

private let infoFamily = gauge("info", "Info of /sys/block/<block_device>.")
private let filesystemInfoFamily = gauge("filesystem_info", "Info about disk filesystem.")
private let deviceMapperInfoFamily = gauge("device_mapper_info", "Info about disk device mapper.")

private func gauge(_ name: String, _ help: String) -> MetricFamily {
    MetricFamily("node_disk_" + name, help: help, type: .gauge)
}

/// The devices of `/proc/diskstats` and their statistics columns.
struct Diskstats {
    struct Device: Equatable {
        var major: Int
        var minor: Int
        var name: String
        /// Where this device's columns are in `values`: 11, 15 or 17 of them, as the kernel wrote.
        var columns: Range<Int>
    }

    var devices: [Device] = []
    /// Every device's columns, one device after the other.
    var values: [UInt64] = []
    /// Lines that could not be read.
    var broken = 0

    /// A device's statistics column (0: reads completed … 16: time spent flushing), nil when the
    /// kernel does not write it.
    func value(_ device: Device, column: Int) -> UInt64? {
        column < device.columns.count ? self.values[device.columns.lowerBound + column] : nil
    }
}

/// Parses `/proc/diskstats`, keeping the devices `include` accepts. A line needs at least the 11
/// statistics of the oldest format; columns beyond the 17 known are ignored.
func parseDiskstats(_ bytes: ArraySlice<UInt8>, include: (String) -> Bool = { _ in true }) -> Diskstats {
    var stats = Diskstats()
    for line in bytes.lines {
        var fields = line.fields
        guard let majorField = fields.next() else { continue }
        guard let major = majorField.parseUInt64().flatMap({ Int(exactly: $0) }),
            let minor = fields.next()?.parseUInt64().flatMap({ Int(exactly: $0) }),
            let name = fields.next()
        else {
            stats.broken += 1
            continue
        }
        let device = name.string
        guard include(device) else { continue }
        let start = stats.values.count
        var valid = true
        while let field = fields.next() {
            guard let value = field.parseUInt64() else {
                valid = false
                break
            }
            if stats.values.count - start < diskstatsFamilies.count { stats.values.append(value) }
        }
        guard valid, stats.values.count - start >= 11 else {
            stats.values.removeSubrange(start...)
            stats.broken += 1
            continue
        }
        stats.devices.append(
            Diskstats.Device(major: major, minor: minor, name: device, columns: start..<stats.values.count)
        )
    }
    return stats
}

/// What the udev database says about a block device: the `E:KEY=value` lines of its
/// `b<major>:<minor>` file that node_exporter uses, as slices of the file's bytes (empty when absent).
struct UdevProperties {
    var path = ArraySlice<UInt8>()
    var wwn = ArraySlice<UInt8>()
    var model = ArraySlice<UInt8>()
    /// SCSI_IDENT_SERIAL, else ID_SERIAL_SHORT, else ID_SERIAL (virtio disks have only that).
    var serial = ArraySlice<UInt8>()
    var revision = ArraySlice<UInt8>()
    var fsType = ArraySlice<UInt8>()
    var fsUsage = ArraySlice<UInt8>()
    var fsUUID = ArraySlice<UInt8>()
    var fsVersion = ArraySlice<UInt8>()
    var dmName = ArraySlice<UInt8>()
    var dmUUID = ArraySlice<UInt8>()
    var dmVGName = ArraySlice<UInt8>()
    var dmLVName = ArraySlice<UInt8>()
    var dmLVLayer = ArraySlice<UInt8>()
    var ata = ArraySlice<UInt8>()
    /// The ATA attributes: nil when the property is absent.
    var ataWriteCache: ArraySlice<UInt8>?
    var ataWriteCacheEnabled: ArraySlice<UInt8>?
    var ataRotationRateRPM: ArraySlice<UInt8>?
}

/// Parses a udev database file (`udevadm info` lines; properties start with `E:`).
func parseUdevProperties(_ bytes: ArraySlice<UInt8>) -> UdevProperties {
    var properties = UdevProperties()
    var identSerial = ArraySlice<UInt8>()
    var serialShort = ArraySlice<UInt8>()
    var serial = ArraySlice<UInt8>()
    for line in bytes.lines where line.hasPrefix("E:") {
        guard let (key, value) = line.dropFirst(2).splitOnce(UInt8(ascii: "=")) else { continue }
        switch true {
        case key.equals("ID_PATH"): properties.path = value
        case key.equals("ID_WWN"): properties.wwn = value
        case key.equals("ID_MODEL"): properties.model = value
        case key.equals("SCSI_IDENT_SERIAL"): identSerial = value
        case key.equals("ID_SERIAL_SHORT"): serialShort = value
        case key.equals("ID_SERIAL"): serial = value
        case key.equals("ID_REVISION"): properties.revision = value
        case key.equals("ID_FS_TYPE"): properties.fsType = value
        case key.equals("ID_FS_USAGE"): properties.fsUsage = value
        case key.equals("ID_FS_UUID"): properties.fsUUID = value
        case key.equals("ID_FS_VERSION"): properties.fsVersion = value
        case key.equals("DM_NAME"): properties.dmName = value
        case key.equals("DM_UUID"): properties.dmUUID = value
        case key.equals("DM_VG_NAME"): properties.dmVGName = value
        case key.equals("DM_LV_NAME"): properties.dmLVName = value
        case key.equals("DM_LV_LAYER"): properties.dmLVLayer = value
        case key.equals("ID_ATA"): properties.ata = value
        case key.equals("ID_ATA_WRITE_CACHE"): properties.ataWriteCache = value
        case key.equals("ID_ATA_WRITE_CACHE_ENABLED"): properties.ataWriteCacheEnabled = value
        case key.equals("ID_ATA_ROTATION_RATE_RPM"): properties.ataRotationRateRPM = value
        default: break
        }
    }
    properties.serial = !identSerial.isEmpty ? identSerial : !serialShort.isEmpty ? serialShort : serial
    return properties
}

extension DiskstatsCollector {
    /// A device's `queue/rotational` from its open file; nil when it is missing (a partition),
    /// unreadable or the device has gone (`ENODEV`).
    fileprivate static func rotational(_ files: KeptOpenAttributes, context: ScrapeContext) -> UInt64? {
        (try? context.reader.readAttribute(0, of: files))??.trimmed().parseUInt64()
    }
}

private let rotationalFile = ["queue/rotational"]
