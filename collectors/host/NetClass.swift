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
/// This reads only the 22 attributes the families need, and keeps the files of the first few
/// interfaces open: a `pread` at offset 0 costs a third of open + read + close. Where it reads the
/// host's own `/sys`, one rtnetlink dump per scrape (``RouteLinks``) gives 16 of the attributes for
/// every interface, with the values the files would give; only the other six are read from files, and
/// two more that show the dump is of the same interfaces. Without the dump, a kept interface's
/// `uevent` shows that its files are still those of its name (``filesAreNamed(_:_:uevent:context:)``).
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
            ignoreInvalidSpeed: setup.settings.bool("collector.netclass.ignore-invalid-speed"),
            // A sysfs of another mount (a container's /host/sys) may show another network namespace.
            links: setup.paths.sysfsIsOwn ? RouteLinks() : nil
        )
    }

    /// Most attribute files kept open between scrapes, so that hosts with hundreds of veths do not
    /// exhaust the descriptor limit; the files of interfaces past it are opened per scrape. That is 8
    /// interfaces read wholly from sysfs (23 files each), or 23 beside an rtnetlink dump (8 each).
    static let keptFiles = 184

    let directory: String
    let ignored: NameFilter
    let ignoreInvalidSpeed: Bool
    /// nil where `/sys/class/net` may not be vigil's own network namespace.
    let links: RouteLinks?
    let kept = KeptDeviceFiles()
    /// The index and address each kept interface's files were shown to have, matching the dump then:
    /// while the dump reports the same for the name, the files need not be read again to show it (a
    /// name taken by another interface comes with another index).
    let verified = CollectorState<[String: LinkIdentity]>([:])

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        let names = try FileSystem.entries(of: self.directory).sorted().filter { self.ignored.allows($0) }
        let cached = self.kept.files.withLock { $0 }
        let dump = self.links.flatMap { context.linkDump($0) }
        // Each interface's files: the ones kept, else opened now (only those beside the dump's
        // attributes when the dump has the interface).
        var interfaces: [(name: String, files: KeptOpenAttributes, wasKept: Bool)] = []
        for name in names {
            if let files = cached[name] {
                interfaces.append((name, files, true))
            } else if let files = self.open(
                name,
                dump?[name] == nil ? filesWithoutLinks : filesBesideLinks,
                context: context
            ) {
                interfaces.append((name, files, false))
            }
        }
        // A /sys mounted from another network namespace (a container's bind mount of the host's)
        // lists other interfaces than vigil's netlink socket sees: then sysfs alone says it all.
        let known = self.verified.value.withLock { $0 }
        var identities: [String: LinkIdentity] = [:]
        let links = dump.flatMap { dump in
            interfaces.allSatisfy { interface in
                let report = dump[interface.name]
                let identity = report.map(LinkIdentity.init)
                if interface.wasKept, let identity, known[interface.name] == identity {
                    identities[interface.name] = identity
                    return true
                }
                guard reportDescribes(report, interface.files, context: context) else { return false }
                identities[interface.name] = identity
                return true
            } ? dump : nil
        }
        var readings = NetClassReadings()
        var stillKept: [String] = []
        var opened: [(name: String, files: KeptOpenAttributes)] = []
        for (name, files, wasKept) in interfaces {
            let link = links?[name]
            // Without a report, all the files are read, and only their `uevent` shows that kept ones are
            // still those of this name.
            let readable =
                link != nil
                || (files.names.count == filesWithoutLinks.count
                    && (!wasKept || filesAreNamed(name, files, uevent: filesWithoutLinks.count - 1, context: context)))
            if readable,
                readings.read(name, link: link, from: files, context: context)
            {
                if wasKept { stillKept.append(name) } else { opened.append((name, files)) }
                continue
            }
            // A kept interface that has gone (or was renamed) may have been created again since: open it
            // afresh; so are all the files of one the dump did not describe after all.
            identities[name] = nil
            guard let files = self.open(name, link == nil ? filesWithoutLinks : filesBesideLinks, context: context)
            else { continue }
            if readings.read(name, link: link, from: files, context: context) { opened.append((name, files)) }
        }
        self.kept.update(stillKept: stillKept, opened: opened, descriptors: Self.keptFiles)
        self.verified.value.withLock { $0 = links == nil ? [:] : identities }
        self.write(readings, into: &writer)
    }

    /// Opens an interface's attribute files; nil for an entry that is not an interface directory
    /// (`bonding_masters`) or went away.
    private func open(_ name: String, _ files: [String], context: ScrapeContext) -> KeptOpenAttributes? {
        do {
            let directory = try OpenDirectory(self.directory + "/" + name)
            return try KeptOpenAttributes(files, in: directory)
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

/// Where rtnetlink reports each of ``netClassFiles``; nil for the attributes only sysfs has.
private let linkFields = netClassFiles.map(LinkField.init(file:))

/// The files read for an interface rtnetlink did not report: every attribute, and `uevent`, whose
/// `INTERFACE=` line shows whether kept files are still those of the interface of their name (one
/// renamed keeps its files, and another may take its name).
private let filesWithoutLinks = netClassFiles + ["uevent"]

/// The files read for an interface rtnetlink reported: the attributes only sysfs has, and the two that
/// show the report is of this interface (``reportDescribes(_:_:context:)``).
private let filesBesideLinks =
    zip(netClassFiles, linkFields).compactMap { $1 == nil ? $0 : nil } + ["ifindex", "address"]

/// The attributes sysfs refuses (`EINVAL`) while an interface is down.
private let refusedWhileDown = netClassFiles.map { $0 == "speed" || $0 == "duplex" }

/// Each attribute's position in ``filesBesideLinks``.
private let positionsBesideLinks: [Int?] = netClassFiles.map { filesBesideLinks.firstIndex(of: $0) }

/// Where `ifindex` and `address` are among all the files and among those beside the dump.
private let identityPositions = (
    every: ["ifindex", "address"].map { filesWithoutLinks.firstIndex(of: $0)! },
    beside: ["ifindex", "address"].map { filesBesideLinks.firstIndex(of: $0)! }
)

/// What shows that an interface's files and rtnetlink's report are of one interface.
struct LinkIdentity: Equatable {
    let index: Int32
    let address: [UInt8]?

    init(_ report: LinkReport) {
        self.index = report.index
        self.address = report.address
    }
}

/// Whether rtnetlink's report describes the interface whose files these are: the same index and
/// hardware address (names alone do not tell: a container's `eth0` is not the host's). An interface
/// removed since counts as described, since it is left out anyway.
private func reportDescribes(_ link: LinkReport?, _ files: KeptOpenAttributes, context: ScrapeContext) -> Bool {
    let positions = files.names.count == filesWithoutLinks.count ? identityPositions.every : identityPositions.beside
    do {
        let index = try context.reader.readAttribute(positions[0], of: files).flatMap {
            parseNetClassNumber($0.trimmed())
        }
        guard let link, index == Int64(link.index) else { return false }
        var expected: [UInt8] = []
        _ = link.text(.address, into: &expected)
        guard let address = try context.reader.readAttribute(positions[1], of: files) else { return false }
        return address.trimmed().elementsEqual(expected)
    } catch {
        return error.errno == ENODEV
    }
}

/// An attribute as rtnetlink reports it (``LinkReport``), written as its sysfs file has it.
enum LinkField {
    case address, broadcast, ifalias, operstate
    case carrier, carrierChanges, carrierUpCount, carrierDownCount, dormant, ifindex, iflink, linkMode, mtu
    case group, txQueueLength, type

    init?(file: String) {
        switch file {
        case "address": self = .address
        case "broadcast": self = .broadcast
        case "ifalias": self = .ifalias
        case "operstate": self = .operstate
        case "carrier": self = .carrier
        case "carrier_changes": self = .carrierChanges
        case "carrier_up_count": self = .carrierUpCount
        case "carrier_down_count": self = .carrierDownCount
        case "dormant": self = .dormant
        case "ifindex": self = .ifindex
        case "iflink": self = .iflink
        case "link_mode": self = .linkMode
        case "mtu": self = .mtu
        case "netdev_group": self = .group
        case "tx_queue_len": self = .txQueueLength
        case "type": self = .type
        default: return nil
        }
    }
}

/// `operstate`'s names, by `IF_OPER_*` value.
private let operStates = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"]

extension LinkReport {
    /// A numeric attribute as its sysfs file gives it; nil where the file refuses (`carrier` and
    /// `dormant` of an interface that is down) or the kernel does not report it.
    func number(_ field: LinkField) -> Int64? {
        switch field {
        case .carrier: self.isRunning ? self.carrier.map { $0 == 0 ? 0 : 1 } : nil
        case .dormant: self.isRunning ? (self.flags & 0x20000 == 0 ? 0 : 1) : nil  // IFF_DORMANT
        case .carrierChanges: self.carrierChanges.map(Int64.init)
        case .carrierUpCount: self.carrierUpCount.map(Int64.init)
        case .carrierDownCount: self.carrierDownCount.map(Int64.init)
        case .ifindex: Int64(self.index)
        case .iflink: Int64(self.link ?? self.index)
        case .linkMode: self.linkMode.map(Int64.init)
        case .mtu: self.mtu.map(Int64.init)
        case .group: self.group.map { Int64(Int32(bitPattern: $0)) }
        case .txQueueLength: self.txQueueLength.map(Int64.init)
        case .type: Int64(self.type)
        case .address, .broadcast, .ifalias, .operstate: nil
        }
    }

    /// Appends a text attribute as its sysfs file gives it (without the newline); false, appending
    /// nothing, where the file refuses.
    func text(_ field: LinkField, into characters: inout [UInt8]) -> Bool {
        switch field {
        case .address: appendHardwareAddress(self.address ?? [], to: &characters)
        case .broadcast: appendHardwareAddress(self.broadcast ?? [], to: &characters)
        case .ifalias: characters.append(contentsOf: self.alias ?? [])
        case .operstate:
            // Out of range, sysfs refuses too.
            guard let state = self.operState, Int(state) < operStates.count else { return false }
            characters.append(contentsOf: operStates[Int(state)].utf8)
        default: return false
        }
        return true
    }
}

/// `00:1a:2b:…`: lower-case hexadecimal bytes joined by colons, as sysfs writes hardware addresses.
private func appendHardwareAddress(_ bytes: [UInt8], to characters: inout [UInt8]) {
    for (index, byte) in bytes.enumerated() {
        if index > 0 { characters.append(UInt8(ascii: ":")) }
        characters.append(hexDigits[Int(byte >> 4)])
        characters.append(hexDigits[Int(byte & 0xf)])
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

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

    /// Reads one interface's attributes: those rtnetlink reported (`link`) from its report, the others
    /// from `files` (``filesWithoutLinks`` without a report, ``filesBesideLinks`` with one).
    /// Unreadable attributes (`EINVAL` for the speed of a link that is down, files a driver lacks) cost
    /// their own sample only. False, with nothing added, when the interface has gone (`ENODEV`).
    mutating func read(
        _ name: String,
        link: LinkReport?,
        from files: KeptOpenAttributes,
        context: ScrapeContext
    ) -> Bool {
        let textCount = NetClassText.allCases.count
        let numbersStart = self.numbers.count
        let textsStart = self.texts.count
        let charactersStart = self.characters.count
        let everyFile = files.names.count == filesWithoutLinks.count
        for index in netClassFiles.indices {
            if let link, let field = linkFields[index] {
                if index < textCount {
                    let start = self.characters.count
                    _ = link.text(field, into: &self.characters)
                    self.texts.append(start..<self.characters.count)
                } else {
                    self.numbers.append(link.number(field))
                }
                continue
            }
            // The kernel refuses the speed and duplex of an interface that is down (after taking the
            // rtnl lock to find out): a report saying so spares the read.
            let refused = link.map { !$0.isRunning && refusedWhileDown[index] } ?? false
            let position = refused ? nil : everyFile ? index : positionsBesideLinks[index]
            let value: ArraySlice<UInt8>?
            switch position.map({ readNetClassAttribute($0, of: files, context: context) }) ?? .unavailable {
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
                    context.recordFailure(
                        "unexpected value \"\(value.string)\" in \(files.path)/\(netClassFiles[index])"
                    )
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
