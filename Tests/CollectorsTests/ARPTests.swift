import Testing
import VigilCore

@testable import Collectors

@Suite struct ARPTests {
    /// Entries of a tree's `/proc/net/arp` counted per device, worked out here.
    private func counts(_ tree: String) throws -> [String: Double] {
        var counts: [String: Double] = [:]
        for line in try fixtureText(tree + "/proc/net/arp").split(separator: "\n").dropFirst() {
            let fields = words(line)
            if fields.count == 6 { counts[fields[5], default: 0] += 1 }
        }
        return counts
    }

    @Test func collectsARecordedHost() throws {
        let collected = try collect(ARPCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.failures.isEmpty)
        let counts = try self.counts("debian12")
        #expect(collected[family: "node_arp_entries"]?.samples.count == counts.count)
        for (device, count) in counts {
            #expect(collected.value("node_arp_entries", ["device": device]) == count)
        }
    }

    @Test func matchesNodeExporter() throws {
        let collected = try collect(ARPCollector.descriptor, roots: fixtureRoots("debian12"))
        expectSameFamilies(collected.families, try golden("debian12-arp"))
    }

    @Test func countsPerDeviceAndSkipsBrokenLines() throws {
        let collected = try collect(ARPCollector.descriptor, roots: fixtureRoots("net-odd"))
        #expect(collected.failures.count == 1)
        let counts = try self.counts("net-odd")
        #expect(counts == ["eth0": 2, "wan0": 1])
        for (device, count) in counts {
            #expect(collected.value("node_arp_entries", ["device": device]) == count)
        }
    }

    @Test func filtersDevices() throws {
        let included = try collect(
            ARPCollector.descriptor,
            roots: fixtureRoots("net-odd"),
            settings: ["collector.arp.device-include": .regex("^wan")]
        )
        #expect(included[family: "node_arp_entries"]?.samples.map { $0[label: "device"] } == ["wan0"])
        let excluded = try collect(
            ARPCollector.descriptor,
            roots: fixtureRoots("net-odd"),
            settings: ["collector.arp.device-exclude": .regex(".")]
        )
        #expect(excluded.families.isEmpty)
    }

    @Test func countsAnEmptyTable() {
        #expect(countARPEntries([]) == ARPTable())
        #expect(countARPEntries(ArraySlice("IP address HW type Flags HW address Mask Device\n".utf8)) == ARPTable())
    }
}
