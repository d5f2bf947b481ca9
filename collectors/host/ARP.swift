import VigilCore

/// Neighbour table entries per interface from `/proc/net/arp`: `node_arp_entries{device}`.
///
/// node_exporter 1.12.1 asks rtnetlink by default; this is its `--no-collector.arp.netlink` path.
struct ARPCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "arp",
        enabledByDefault: true,
        help: "ARP table entries per device from /proc/net/arp",
        options: [
            OptionSpec(
                "collector.arp.device-include",
                .regex(""),
                help: "Regexp of arp devices to include (mutually exclusive to device-exclude)."
            ),
            OptionSpec(
                "collector.arp.device-exclude",
                .regex(""),
                help: "Regexp of arp devices to exclude (mutually exclusive to device-include)."
            ),
        ]
    ) { setup in
        ARPCollector(
            file: KeptOpenFile(setup.paths.proc("net/arp"), end: .roomForLine(256)),
            devices: try setup.nameFilter(
                include: "collector.arp.device-include",
                exclude: "collector.arp.device-exclude"
            )
        )
    }

    let file: KeptOpenFile
    let devices: NameFilter

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let table = countARPEntries(try context.reader.read(self.file))
        if table.brokenLines > 0 {
            context.recordFailure("\(table.brokenLines) unreadable line(s) in \(self.file.path)")
        }
        var wroteFamily = false
        for (device, count) in table.devices where self.devices.allows(String(decoding: device, as: UTF8.self)) {
            if !wroteFamily {
                writer.family(arpEntries)
                wroteFamily = true
            }
            writer.sample(Double(count), ("device", device))
        }
    }
}

private let arpEntries = MetricFamily("node_arp_entries", help: "ARP entries by device", type: .gauge)

/// Entries of `/proc/net/arp` counted per device (the sixth field), sorted by device name.
struct ARPTable: Equatable {
    var devices: [(device: ArraySlice<UInt8>, count: Int)] = []
    var brokenLines = 0

    static func == (lhs: ARPTable, rhs: ARPTable) -> Bool {
        lhs.brokenLines == rhs.brokenLines
            && lhs.devices.elementsEqual(rhs.devices) { $0.device.elementsEqual($1.device) && $0.count == $1.count }
    }
}

/// Counts the entries of `/proc/net/arp` per device; the first line is the header, and an entry has
/// six fields (`IP address, HW type, Flags, HW address, Mask, Device`).
func countARPEntries(_ bytes: ArraySlice<UInt8>) -> ARPTable {
    var table = ARPTable()
    var devices: [ArraySlice<UInt8>] = []
    var lines = bytes.lines
    _ = lines.next()
    for line in lines where !line.trimmed().isEmpty {
        var fields = line.fields
        var count = 0
        var last: ArraySlice<UInt8> = []
        while let field = fields.next() {
            count += 1
            last = field
        }
        guard count == 6 else {
            table.brokenLines += 1
            continue
        }
        devices.append(last)
    }
    devices.sort { $0.lexicographicallyPrecedes($1) }
    for device in devices {
        if let last = table.devices.last, last.device.elementsEqual(device) {
            table.devices[table.devices.count - 1].count += 1
        } else {
            table.devices.append((device, 1))
        }
    }
    return table
}
