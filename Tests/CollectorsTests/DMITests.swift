import Foundation
import Testing
import VigilCore

@testable import Collectors

@Suite struct DMITests {
    /// A server's identity with an empty asset tag, no chassis serial, and values that need escaping.
    @Test func matchesNodeExporterOnTheFixtureMachine() throws {
        let collected = try collect(DMICollector.descriptor, roots: fixtureRoots("dmi"))
        expectSameFamilies(collected.families, try golden("dmi"))
        #expect(collected.failures.isEmpty)
    }

    @Test func readOnceAndKept() throws {
        let tree = try TemporaryTree(files: ["sys/class/dmi/id/product_name": "Super Server\n"])
        let collector = try makeCollector(DMICollector.descriptor, roots: tree.roots)
        func productName() throws -> String? {
            try collect(collector, roots: tree.roots)[family: "node_dmi_info"]?.samples.first?[label: "product_name"]
        }
        #expect(try productName() == "Super Server")
        try tree.write("sys/class/dmi/id/product_name", "Other Server\n")
        #expect(try productName() == "Super Server")
    }

    @Test func invalidUTF8BecomesTheReplacementCharacter() throws {
        let tree = try TemporaryTree(files: ["sys/class/dmi/id/board_name": "\n"])
        // "Carte mère" in Latin-1, as some firmware writes it.
        let latin1 = Array("Carte m".utf8) + [0xE8] + Array("re\n".utf8)
        try Data(latin1).write(to: URL(fileURLWithPath: tree.path + "/sys/class/dmi/id/board_vendor"))
        let collected = try collect(DMICollector.descriptor, roots: tree.roots)
        let sample = try #require(collected[family: "node_dmi_info"]?.samples.first)
        #expect(sample[label: "board_vendor"] == "Carte m\u{FFFD}re")
        #expect(sample[label: "board_name"] == "")
    }

    @Test func noDMIIsNoData() throws {
        expectNoData(DMICollector.descriptor, roots: fixtureRoots("debian12"))
    }
}
