import Synchronization
import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Interface properties from `/sys/class/net/<iface>/`: `node_network_up`, `node_network_info` and one
/// `node_network_<property>{device}` family per numeric attribute, named as node_exporter names them.
///
/// node_exporter reads every file of every interface directory each scrape, its slowest collector.
/// This reads only the 22 attributes the families need, one bounded read each, and keeps the files
/// of the first few interfaces open: a `pread` at offset 0 costs a third of open + read + close.
struct NetClassCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "netclass",
        enabledByDefault: true,
        help: "network interface properties from /sys/class/net",
        options: [
            OptionSpec(
                "collector.netclass.ignored-devices",
                .regex("^$"),
                help: "Regexp of net devices to ignore for netclass collector."
            ),
            OptionSpec(
                "collector.netclass.ignore-invalid-speed",
                .bool(false),
                help: "Ignore devices where the speed is invalid. This will be the default behavior in 2.x."
            ),
        ]
    ) { setup in
        NetClassCollector(
            directory: setup.paths.sys("class/net"),
            ignored: NameFilter(include: nil, exclude: try setup.settings.regex("collector.netclass.ignored-devices")),
            ignoreInvalidSpeed: setup.settings.bool("collector.netclass.ignore-invalid-speed")
        )
    }

    /// Interfaces whose attribute files stay open between scrapes: 22 descriptors each, so hosts with
    /// hundreds of veths do not exhaust the descriptor limit; the rest are opened per scrape.
    static let keptInterfaces = 8

    let directory: String
    let ignored: NameFilter
    let ignoreInvalidSpeed: Bool
    private let kept = KeptInterfaces()

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let names = try FileSystem.entries(of: self.directory).sorted()
        let cached = self.kept.files.withLock { $0 }
        var readings = NetClassReadings()
        var stillKept: [String] = []
        var opened: [(name: String, files: KeptOpenAttributes)] = []
        for name in names where self.ignored.allows(name) {
            // A kept interface that has gone may have been created again since: open it afresh.
            if let files = cached[name], readings.read(name, from: files, context: context) {
                stillKept.append(name)
                continue
            }
            guard let files = self.open(name, context: context) else { continue }
            if readings.read(name, from: files, context: context) { opened.append((name, files)) }
        }
        self.kept.update(stillKept: stillKept, opened: opened, capacity: Self.keptInterfaces)
        self.write(readings, into: &writer)
    }

    /// Opens an interface's attribute files; nil for an entry that is not an interface directory
    /// (`bonding_masters`) or went away.
    private func open(_ name: String, context: ScrapeContext) -> KeptOpenAttributes? {
        do {
            let directory = try OpenDirectory(self.directory + "/" + name)
            return try KeptOpenAttributes(netClassFiles, in: directory)
        } catch  where error.isNotFound {
            return nil
        } catch {
            context.recordFailure("\(error)")
            return nil
        }
    }

    private func write(_ readings: NetClassReadings, into writer: inout MetricWriter) {
        guard !readings.names.isEmpty else { return }
        writer.family(networkUp)
        for device in readings.names.indices {
            let up = readings.text(device, .operstate).elementsEqual("up".utf8)
            writer.sample(up ? 1 : 0, ("device", readings.names[device]))
        }
        writer.family(networkInfo)
        for device in readings.names.indices {
            let adminState: String
            if let flags = readings.number(device, flagsAttribute) {
                adminState = flags & 1 == 1 ? "up" : "down"  // IFF_UP
            } else {
                adminState = "unknown"
            }
            writer.sample(
                1,
                ("address", readings.text(device, .address)),
                ("adminstate", adminState),
                ("broadcast", readings.text(device, .broadcast)),
                ("device", readings.names[device]),
                ("duplex", readings.text(device, .duplex)),
                ("ifalias", readings.text(device, .ifalias)),
                ("operstate", readings.text(device, .operstate))
            )
        }
        for (attribute, property) in netClassProperties.enumerated() {
            let devices = readings.names.indices
            guard devices.contains(where: { self.value(readings, $0, attribute) != nil }) else { continue }
            writer.family(property.family)
            for device in devices {
                guard let value = self.value(readings, device, attribute) else { continue }
                writer.sample(value, ("device", readings.names[device]))
            }
        }
    }

    /// The sample of a numeric attribute: speed is in Mbit/s, written in bytes per second; some
    /// drivers say -1 for unknown, which node_exporter keeps unless told not to.
    private func value(_ readings: NetClassReadings, _ device: Int, _ attribute: Int) -> Double? {
        guard let number = readings.number(device, attribute) else { return nil }
        guard attribute == speedAttribute else { return Double(number) }
        return number < 0 && self.ignoreInvalidSpeed ? nil : Double(number) * 125_000
    }
}

/// The text attributes (named as their files), read before the numeric ones.
enum NetClassText: Int, CaseIterable {
    case address, broadcast, duplex, ifalias, operstate
}

private let networkUp = MetricFamily(
    "node_network_up",
    help: "Value is 1 if operstate is 'up', 0 otherwise.",
    type: .gauge
)
private let networkInfo = MetricFamily(
    "node_network_info",
    help: "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
    type: .gauge
)

/// A numeric attribute and the family node_exporter exports it as.
struct NetClassProperty {
    let file: String
    let family: MetricFamily

    init(_ file: String, _ name: String, _ type: MetricType = .gauge) {
        self.file = file
        self.family = MetricFamily("node_network_" + name, help: "Network device property: " + name, type: type)
    }
}

let netClassProperties = [
    NetClassProperty("addr_assign_type", "address_assign_type"),
    NetClassProperty("carrier", "carrier"),
    NetClassProperty("carrier_changes", "carrier_changes_total", .counter),
    NetClassProperty("carrier_up_count", "carrier_up_changes_total", .counter),
    NetClassProperty("carrier_down_count", "carrier_down_changes_total", .counter),
    NetClassProperty("dev_id", "device_id"),
    NetClassProperty("dormant", "dormant"),
    NetClassProperty("flags", "flags"),
    NetClassProperty("ifindex", "iface_id"),
    NetClassProperty("iflink", "iface_link"),
    NetClassProperty("link_mode", "iface_link_mode"),
    NetClassProperty("mtu", "mtu_bytes"),
    NetClassProperty("name_assign_type", "name_assign_type"),
    NetClassProperty("netdev_group", "net_dev_group"),
    NetClassProperty("speed", "speed_bytes"),
    NetClassProperty("tx_queue_len", "transmit_queue_length"),
    NetClassProperty("type", "protocol_type"),
]

private let flagsAttribute = netClassProperties.firstIndex { $0.file == "flags" }!
private let speedAttribute = netClassProperties.firstIndex { $0.file == "speed" }!

/// Every file the collector reads: the text attributes, then the numeric ones.
private let netClassFiles = NetClassText.allCases.map { "\($0)" } + netClassProperties.map(\.file)

/// The attribute values of the interfaces read in one scrape. Text values are copied into one
/// buffer so that an interface costs no allocations of its own.
struct NetClassReadings {
    var names: [String] = []
    /// `names.count × netClassProperties.count`, interface by interface.
    var numbers: [Int64?] = []
    /// `names.count × NetClassText.allCases.count` ranges of `characters`; empty when unreadable.
    var texts: [Range<Int>] = []
    var characters: [UInt8] = []

    func number(_ device: Int, _ attribute: Int) -> Int64? {
        self.numbers[device * netClassProperties.count + attribute]
    }

    func text(_ device: Int, _ attribute: NetClassText) -> ArraySlice<UInt8> {
        self.characters[self.texts[device * NetClassText.allCases.count + attribute.rawValue]]
    }

    /// Reads one interface's attributes. Unreadable attributes (`EINVAL` for the speed of a link
    /// that is down, files a driver lacks) cost their own sample only. False, with nothing added,
    /// when the interface has gone (`ENODEV`).
    mutating func read(_ name: String, from files: KeptOpenAttributes, context: ScrapeContext) -> Bool {
        let textCount = NetClassText.allCases.count
        let numbersStart = self.numbers.count
        let textsStart = self.texts.count
        let charactersStart = self.characters.count
        for index in netClassFiles.indices {
            let value: ArraySlice<UInt8>?
            switch readNetClassAttribute(index, of: files, context: context) {
            case .value(let bytes): value = bytes
            case .unavailable: value = nil
            case .gone:
                self.numbers.removeSubrange(numbersStart...)
                self.texts.removeSubrange(textsStart...)
                self.characters.removeSubrange(charactersStart...)
                return false
            }
            if index < textCount {
                let start = self.characters.count
                if let value { self.characters.append(contentsOf: value) }
                self.texts.append(start..<self.characters.count)
            } else if let value {
                let number = parseNetClassNumber(value)
                if number == nil {
                    context.recordFailure("unexpected value \"\(value.string)\" in \(files.path)/\(files.names[index])")
                }
                self.numbers.append(number)
            } else {
                self.numbers.append(nil)
            }
        }
        self.names.append(name)
        return true
    }
}

private enum AttributeRead {
    case value(ArraySlice<UInt8>)
    /// Not there, not readable in this state (`EINVAL` for the speed of a link that is down) or
    /// failed (recorded).
    case unavailable
    /// The interface was removed.
    case gone
}

private func readNetClassAttribute(
    _ index: Int,
    of files: KeptOpenAttributes,
    context: ScrapeContext
) -> AttributeRead {
    do {
        guard let bytes = try context.reader.readAttribute(index, of: files) else { return .unavailable }
        return .value(bytes.trimmed())
    } catch {
        switch error.errno {
        case ENODEV: return .gone
        case EINVAL, EOPNOTSUPP, EACCES, EPERM: return .unavailable
        default:
            context.recordFailure("\(error)")
            return .unavailable
        }
    }
}

/// A numeric sysfs attribute: decimal (`1500`, `-1`) or hexadecimal with `0x` (`0x1003`).
func parseNetClassNumber(_ bytes: ArraySlice<UInt8>) -> Int64? {
    if bytes.hasPrefix("0x") {
        guard let value = bytes.dropFirst(2).parseHex(), value <= UInt64(Int64.max) else { return nil }
        return Int64(value)
    }
    return bytes.parseInt64()
}
