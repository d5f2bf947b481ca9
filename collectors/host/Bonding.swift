import VigilCore

/// Linux bonding interfaces: how many links each bond has and how many of them are up (MII status),
/// from `/sys/class/net/bonding_masters` and each bond's `bonding/slaves`. node-mixin's
/// NodeBondingDegraded alert compares the two. Without the bonding driver there is no data.
struct BondingCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "bonding",
        enabledByDefault: true,
        help: "bonding interfaces' configured and active links from /sys/class/net"
    ) { setup in
        let directory = setup.paths.sys("class/net")
        return BondingCollector(directory: directory, masters: KeptOpenFile(directory + "/bonding_masters"))
    }

    let directory: String
    let masters: KeptOpenFile

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        guard let masters = try context.reader.readIfPresent(self.masters) else {
            throw CollectorError.noData("\(self.masters.path) does not exist (no bonding driver)")
        }
        var bonds: [(master: String, links: Int, up: Int)] = []
        for master in masters.fields.map(\.string) {
            do {
                bonds.append(try self.readBond(master, reader: context.reader))
            } catch  where error.isNotFound && !FileSystem.exists(self.directory + "/" + master) {
                // Deleted since bonding_masters listed it.
            } catch {
                context.recordFailure("\(error)")
            }
        }
        guard !bonds.isEmpty else { return }
        writer.family(activeFamily)
        for bond in bonds { writer.sample(Double(bond.up), ("master", bond.master)) }
        writer.family(slavesFamily)
        for bond in bonds { writer.sample(Double(bond.links), ("master", bond.master)) }
    }

    private func readBond(_ master: String, reader: FileReader) throws(FileError) -> (String, Int, Int) {
        let bond = self.directory + "/" + master
        let links = try reader.read(bond + "/bonding/slaves").fields.map(\.string)
        var up = 0
        for link in links where try isUp(bond, link, reader: reader) { up += 1 }
        return (master, links.count, up)
    }

    /// Whether a member's MII status is up. `lower_<link>` links to the member's device; kernels before
    /// 4.13 named it `slave_<link>`.
    private func isUp(_ bond: String, _ link: String, reader: FileReader) throws(FileError) -> Bool {
        do {
            return try reader.readTrimmed(bond + "/lower_" + link + "/bonding_slave/mii_status").equals("up")
        } catch  where error.isNotFound {
            return try reader.readTrimmed(bond + "/slave_" + link + "/bonding_slave/mii_status").equals("up")
        }
    }
}

private let activeFamily = MetricFamily(
    "node_bonding_active",
    help: "Number of active slaves per bonding interface.",
    type: .gauge
)
private let slavesFamily = MetricFamily(
    "node_bonding_slaves",
    help: "Number of configured slaves per bonding interface.",
    type: .gauge
)
