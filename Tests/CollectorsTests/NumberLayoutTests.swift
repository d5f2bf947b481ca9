import Testing
import VigilCore

@testable import Collectors

@Suite struct NumberLayoutTests {
    /// A layout of `files` giving every number a family of its own (`n0`, `n1`, …).
    private func layout(_ files: [String]) -> NumberLayout {
        var shape = NumberShape()
        for file in files { shape.append(file: ArraySlice(file.utf8)) }
        var layout = NumberLayout(shape: shape)
        let numbers = shape.bytes.filter { $0 == UInt8(ascii: "#") }.count
        for index in 0..<numbers { layout.add([NumberLayout.Family("n\(index)", help: "", type: .gauge)]) }
        return layout
    }

    /// The values `layout` writes for `files`, or nil when it does not take them.
    private func values(_ layout: NumberLayout, _ files: [String]) throws -> [Double]? {
        var writer = MetricWriter(format: .text)
        guard layout.write(files.map { ArraySlice($0.utf8) }, into: &writer) else {
            #expect(writer.bytes.isEmpty)
            return nil
        }
        return try parseExposition(writer.bytes[...]).map { $0.samples[0].value }
    }

    @Test func takesReadsThatDifferOnlyInTheirNumbers() throws {
        let layout = self.layout(["Tcp: A B\nTcp: 1 2\n", "MemFree:     100 kB\nx 5"])
        #expect(try self.values(layout, ["Tcp: A B\nTcp: 1 2\n", "MemFree:     100 kB\nx 5"]) == [1, 2, 100, 5])
        // A number that gains digits loses blanks before it (meminfo's `%8lu`), or has more.
        #expect(
            try self.values(layout, ["Tcp: A B\nTcp: -7 18446744073709551615\n", "MemFree: 1000000 kB\nx    6"])
                == [-7, Double(UInt64.max), 1_000_000, 6]
        )
        // Beyond 64 bits, parsed as text.
        #expect(try self.values(layout, ["Tcp: A B\nTcp: 1 99999999999999999999\n", "MemFree: 1 kB\nx 5"])?[1] == 1e20)
    }

    @Test(arguments: [
        ["Tcp: A C\nTcp: 1 2\n", "MemFree: 100 kB\nx 5"],  // a name changed
        ["Tcp: A B\nTcp: 1 2\n", "MemFree: 100 MB\nx 5"],  // a unit changed
        ["Tcp: A B\nTcp: 1 2", "MemFree: 100 kB\nx 5"],  // the end of a file changed
        ["Tcp: A B\nTcp: 1 2\n", "MemFree: 100 kB\nx 5\n"],
        ["Tcp: A B\nTcp: 1 2 3\n", "MemFree: 100 kB\nx 5"],  // one more number
        ["Tcp: A B\nTcp: 12\n", "MemFree: 100 kB\nx 5"],  // one fewer
        ["Tcp: A B\nTcp: 1\n2\n", "MemFree: 100 kB\nx 5"],  // a blank became a line break
        ["Tcp: A B\nTcp: 1 2x\n", "MemFree: 100 kB\nx 5"],  // a number became a name
        ["Tcp: A B\nTcp: 1 -\n", "MemFree: 100 kB\nx 5"],
        ["Tcp: A B\nTcp: 1 2\n", "MemFree:100 kB\nx 5"],  // a number glued to a name
        ["Tcp: A B\nTcp: 1 2\n"],  // a file missing
        ["Tcp: A B\nTcp: 1 2\n", "MemFree: 100 kB\nx 5", ""],  // one more
        ["Tcp: A B\nTcp: 1 2\nMemFree: 100 kB\nx 5", ""],  // the same text split otherwise
    ])
    func refusesReadsWhoseTextDiffers(files: [String]) throws {
        let layout = self.layout(["Tcp: A B\nTcp: 1 2\n", "MemFree:     100 kB\nx 5"])
        #expect(try self.values(layout, files) == nil)
    }

    @Test func aNumberAtTheStartOfAFileOrLineNeedsNoBlankBeforeIt() throws {
        let layout = self.layout(["1 a\n2 b", "3"])
        #expect(try self.values(layout, ["  4 a\n5 b", "6"]) == [4, 5, 6])
        #expect(try self.values(layout, ["4 a\n 5 b", " 6"]) == [4, 5, 6])
    }

    /// The collectors' layouts follow a file whose numbers change width without working them out again.
    @Test func meminfoKeepsItsLayoutWhenAValueGainsADigit() throws {
        let collector = CurrentLayout()
        var made = 0
        func write(_ text: String) -> [UInt8] {
            var writer = MetricWriter(format: .text)
            collector.write([ArraySlice(text.utf8)], into: &writer, context: scrapeContext(fixtureRoots("handmade"))) {
                shape in
                made += 1
                return meminfoLayout(shape)
            }
            return writer.bytes
        }
        let before = write("MemTotal:       24684092 kB\nDirty:              9996 kB\n")
        let after = write("MemTotal:       24684092 kB\nDirty:             10004 kB\n")
        #expect(made == 1)
        #expect(String(decoding: before, as: UTF8.self).contains("node_memory_Dirty_bytes 1.0235904e+07\n"))
        #expect(String(decoding: after, as: UTF8.self).contains("node_memory_Dirty_bytes 1.0244096e+07\n"))
    }
}
