import Testing
import VigilCore

@testable import Collectors

@Suite struct EntropyTests {
    @Test(arguments: ["debian12", "handmade"])
    func reportsARecordedHost(tree: String) throws {
        let collected = try collect(EntropyCollector.descriptor, roots: fixtureRoots(tree))
        func number(_ file: String) throws -> Double? {
            Double(try fixtureText("\(tree)/proc/sys/kernel/random/\(file)").split(separator: "\n")[0])
        }
        #expect(collected.value("node_entropy_available_bits") == (try number("entropy_avail")))
        #expect(collected.value("node_entropy_pool_size_bits") == (try number("poolsize")))
        #expect(collected.families.allSatisfy { $0.type == "gauge" })
        expectSameFamilies(collected.families, try golden("\(tree)-entropy"))
    }

    @Test func garbageFailsTheCollector() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/sys/kernel/random/entropy_avail", "256\n")
        try tree.write("proc/sys/kernel/random/poolsize", "x\n")
        #expect(throws: CollectorError.self) { try collect(EntropyCollector.descriptor, roots: tree.roots) }
        try tree.write("proc/sys/kernel/random/entropy_avail", "\n")
        #expect(throws: CollectorError.self) { try collect(EntropyCollector.descriptor, roots: tree.roots) }
    }
}
