import VigilCore

/// Protocol counters from `/proc/net/netstat`, `/proc/net/snmp` and `/proc/net/snmp6` as
/// `node_netstat_<Proto>_<Field>`, untyped as node_exporter has them, limited to the fields that
/// match `collector.netstat.fields`.
struct NetstatCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "netstat",
        enabledByDefault: true,
        help: "network statistics from /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6",
        options: [
            OptionSpec(
                "collector.netstat.fields",
                .regex(
                    "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
                ),
                help: "Regexp of fields to return for netstat collector."
            )
        ]
    ) { setup in
        NetstatCollector(
            netstat: KeptOpenFile(setup.paths.proc("net/netstat"), end: .shortRead),
            snmp: KeptOpenFile(setup.paths.proc("net/snmp"), end: .shortRead),
            snmp6: KeptOpenFile(setup.paths.proc("net/snmp6"), end: .shortRead),
            fields: try setup.settings.regex("collector.netstat.fields")
        )
    }

    let netstat: KeptOpenFile
    let snmp: KeptOpenFile
    /// Absent when IPv6 is disabled; its families are then left out.
    let snmp6: KeptOpenFile
    let fields: GoRegex
    private let layout = CurrentLayout()

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        // The reader's buffer holds one file at a time: keep copies of the first two.
        let netstat = Array(try context.reader.read(self.netstat))[...]
        let snmp = Array(try context.reader.read(self.snmp))[...]
        let snmp6 = try context.reader.readIfPresent(self.snmp6) ?? []
        self.layout.write([netstat, snmp, snmp6], into: &writer, context: context) { shape in
            netstatLayout(shape, fields: self.fields)
        }
    }
}

/// The families of `/proc/net/netstat`, `/proc/net/snmp` (pairs of `Proto: Name…` and
/// `Proto: value…` lines) and `/proc/net/snmp6` (`Ip6InOctets value` lines: the protocol is the name
/// up to its first `6`), from their ``NumberShape``, keeping the `Proto_Field`s `fields` matches.
func netstatLayout(_ shape: NumberShape, fields: GoRegex) -> NumberLayout {
    var layout = NumberLayout(shape: shape)
    var namer = NetstatNamer(fields: fields)
    let files = shape.files
    let names = ["/proc/net/netstat", "/proc/net/snmp"]
    for (file, name) in zip(files, names) {
        var lines = file.lines.makeIterator()
        var number = 0
        var pending = lines.next()
        while let header = pending {
            number += 1
            pending = lines.next()
            guard let (proto, headerNames) = header.splitOnce(UInt8(ascii: ":")), let values = pending,
                let (valuesProto, valueFields) = values.splitOnce(UInt8(ascii: ":")),
                proto.elementsEqual(valuesProto)
            else {
                if !header.trimmed().isEmpty { layout.problems.append("line \(number) of \(name) has no values line") }
                layout.skipNumbers(in: header)
                continue
            }
            layout.skipNumbers(in: header)
            let keys = Array(headerNames.fields)
            let numbers = Array(valueFields.fields)
            if keys.count != numbers.count {
                layout.problems.append(
                    "\(proto.string) in \(name): \(keys.count) names but \(numbers.count) values"
                )
                layout.skipNumbers(in: values)
            } else {
                for (key, value) in zip(keys, numbers) {
                    if value.isShapeNumber {
                        layout.add(namer.families(proto, key))
                    } else {
                        layout.problems.append("\(proto.string)_\(key.string) in \(name) is not a number")
                    }
                }
            }
            number += 1
            pending = lines.next()
        }
    }
    if files.count > 2 {
        for line in files[2].lines {
            let parts = Array(line.fields)
            guard parts.count == 2, parts[1].isShapeNumber, !parts[0].isShapeNumber,
                let six = parts[0].firstIndex(of: UInt8(ascii: "6"))
            else {
                if !parts.isEmpty { layout.problems.append("unexpected line in /proc/net/snmp6: \(line.string)") }
                layout.skipNumbers(in: line)
                continue
            }
            layout.add(namer.families(parts[0][...six], parts[0][(six + 1)...]))
        }
    }
    return layout
}

/// Names netstat families, each once, for the fields the regex selects.
private struct NetstatNamer {
    let fields: GoRegex
    var seen = Set<String>()

    mutating func families(_ proto: ArraySlice<UInt8>, _ field: ArraySlice<UInt8>) -> [NumberLayout.Family] {
        let proto = proto.string
        let field = field.string
        let key = proto + "_" + field
        let name = "node_netstat_" + key
        guard self.fields.matches(key), isValidMetricName(name), self.seen.insert(name).inserted else { return [] }
        return [NumberLayout.Family(name, help: "Statistic " + proto + field + ".", type: .untyped)]
    }
}
