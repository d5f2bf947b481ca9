import Testing
import VigilCore

@testable import Collectors

@Suite struct FilefdTests {
    @Test func parsesFileNr() {
        #expect(
            parseFileNr(ArraySlice("1078\t0\t2466177\n".utf8)).map { [$0.allocated, $0.maximum] } == [1078, 2_466_177]
        )
        #expect(parseFileNr(ArraySlice("1\t0\t9223372036854775807\n".utf8))?.maximum == 9_223_372_036_854_775_807)
        for odd in ["", "1078\t0\n", "1078 x 5", "-1 0 5"] {
            #expect(parseFileNr(ArraySlice(odd.utf8)) == nil, "\(odd)")
        }
    }

    @Test(arguments: ["debian12", "handmade"])
    func reportsARecordedHost(tree: String) throws {
        let collected = try collect(FilefdCollector.descriptor, roots: fixtureRoots(tree))
        let fields = try fixtureText("\(tree)/proc/sys/fs/file-nr").split(whereSeparator: \.isWhitespace)
        #expect(collected.value("node_filefd_allocated") == Double(UInt64(fields[0])!))
        #expect(collected.value("node_filefd_maximum") == Double(UInt64(fields[2])!))
        #expect(collected.families.allSatisfy { $0.type == "gauge" })
        expectSameFamilies(collected.families, try golden("\(tree)-filefd"))
    }

    @Test func garbageFailsTheCollector() throws {
        let tree = try TemporaryTree(files: [:])
        try tree.write("proc/sys/fs/file-nr", "garbage\n")
        #expect(throws: CollectorError.self) { try collect(FilefdCollector.descriptor, roots: tree.roots) }
    }
}
