import Testing
import VigilCore

@testable import Collectors

@Suite struct BondingTests {
    /// bond0 has a link down, bond1 a member under the `slave_` name of kernels before 4.13 and one
    /// "going back", dmz no members at all.
    @Test func matchesNodeExporterOnTheFixtureBonds() throws {
        let collected = try collect(BondingCollector.descriptor, roots: fixtureRoots("bonding"))
        expectSameFamilies(collected.families, try golden("bonding"))
        #expect(collected.failures.isEmpty)
    }

    @Test func aBondThatCannotBeReadCostsOnlyItsOwnSeries() throws {
        let tree = try TemporaryTree(files: [
            "sys/class/net/bonding_masters": "bond0 gone bond1\n",
            "sys/class/net/bond0/bonding/slaves": "eth0\n",
            "sys/class/net/bond0/lower_eth0/bonding_slave/mii_status": "up\n",
            // A member without its bonding_slave directory.
            "sys/class/net/bond1/bonding/slaves": "eth1 eth2\n",
            "sys/class/net/bond1/lower_eth1/bonding_slave/mii_status": "up\n",
        ])
        let collected = try collect(BondingCollector.descriptor, roots: tree.roots)
        // `gone` was deleted after bonding_masters listed it: left out without a failure.
        #expect(collected[family: "node_bonding_slaves"]?.samples.map { $0[label: "master"]! } == ["bond0"])
        #expect(collected.value("node_bonding_active", ["master": "bond0"]) == 1)
        #expect(collected.failures.count == 1)
        #expect(collected.failures.first?.contains("bond1/slave_eth2") == true)
    }

    @Test func noBondsGiveNoSeries() throws {
        let tree = try TemporaryTree(files: ["sys/class/net/bonding_masters": "\n"])
        let collected = try collect(BondingCollector.descriptor, roots: tree.roots)
        #expect(collected.families.isEmpty)
        #expect(collected.failures.isEmpty)
    }

    @Test func noBondingDriverIsNoData() throws {
        expectNoData(BondingCollector.descriptor, roots: fixtureRoots("debian12"))
    }
}
