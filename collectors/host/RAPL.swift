import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Energy the CPU packages, cores, uncore, DRAM and platform used since boot, from the RAPL zones of
/// `/sys/class/powercap/*/energy_uj` (microjoules there, joules here): one family per kind of zone
/// (`node_rapl_package_joules_total`), or with `--collector.rapl.enable-zone-label` one family with the
/// kind as `rapl_zone`. Since Linux 5.10 only root may read `energy_uj`; for other users, and on hosts
/// without RAPL (virtual machines, most ARM), there is no data.
struct RAPLCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "rapl",
        enabledByDefault: true,
        help: "CPU and DRAM energy from the RAPL zones of /sys/class/powercap",
        options: [
            OptionSpec(
                "collector.rapl.enable-zone-label",
                .bool(false),
                help: "Write every zone to node_rapl_joules_total with its kind as the rapl_zone label."
            )
        ]
    ) { setup in
        RAPLCollector(
            directory: setup.paths.sys("class/powercap"),
            zoneLabel: setup.settings.bool("collector.rapl.enable-zone-label")
        )
    }

    let directory: String
    let zoneLabel: Bool

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var zones: [RAPLZone] = []
        var usesOfName: [String: Int] = [:]
        for entry in try FileSystem.sortedEntriesIfPresent(of: self.directory) {
            let path = self.directory + "/" + entry
            do {
                guard let name = try context.reader.readTrimmedIfReadable(path + "/name")?.string else { continue }
                guard let microjoules = try context.reader.readUInt64(path + "/energy_uj") else {
                    throw CollectorError.failed("\(path)/energy_uj does not hold a number")
                }
                zones.append(RAPLZone(path: path, name: name, microjoules: microjoules, usesOfName: &usesOfName))
            } catch let error as FileError where error.errno == EACCES {
                throw CollectorError.noData("\(error) (only root may read RAPL energy)")
            } catch {
                context.recordFailure("\(error)")
            }
        }
        guard !zones.isEmpty else { throw CollectorError.noData("no RAPL zone in \(self.directory)") }
        if self.zoneLabel {
            writer.family(zoneLabelFamily)
            for zone in zones {
                writer.sample(zone.joules, ("index", zone.index), ("path", zone.path), ("rapl_zone", zone.kind))
            }
            return
        }
        for kind in Set(zones.map(\.kind)).sorted() {
            writer.family(
                "node_rapl_\(kind)_joules_total",
                help: "Current RAPL \(kind) value in joules",
                type: .counter
            )
            for zone in zones where zone.kind == kind {
                writer.sample(zone.joules, ("index", zone.index), ("path", zone.path))
            }
        }
    }
}

/// One zone: its kind and index from its `name`, as node_exporter (through prometheus/procfs) makes them.
private struct RAPLZone {
    let path: String
    /// `package`, `core`, `uncore`, `dram`, `psys`; anything outside a metric name's alphabet becomes `_`.
    let kind: String
    /// The number `name` ends in (`package-1`), else how many zones of that kind came before, in the
    /// order of the directory's sorted entries (the `dram` under package 1 is the second `dram`).
    let index: Int
    let joules: Double

    init(path: String, name: String, microjoules: UInt64, usesOfName: inout [String: Int]) {
        self.path = path
        self.joules = Double(microjoules) / 1e6
        var kind = name
        if let dash = name.lastIndex(of: "-"), let number = Int(name[name.index(after: dash)...]) {
            kind = String(name[..<dash])
            self.index = number
        } else {
            self.index = usesOfName[name, default: 0]
            usesOfName[name, default: 0] += 1
        }
        self.kind = String(kind.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }
}

private let zoneLabelFamily = MetricFamily(
    "node_rapl_joules_total",
    help: "Current RAPL value in joules",
    type: .counter
)
