import Testing
import VigilCore

@Suite struct GzipTests {
    @Test func roundTripsAndConcatenatedMembers() throws {
        let text = Array(String(repeating: "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1234.5\n", count: 500).utf8)
        let compressed = Gzip.compress(text)
        #expect(compressed.count < text.count / 10)
        #expect(compressed.prefix(2) == [0x1F, 0x8B])
        #expect(try Gzip.decompress(compressed) == text)
        #expect(try Gzip.decompress(compressed + Gzip.compress(Array("tail".utf8))) == text + Array("tail".utf8))
    }

    @Test func compressesPartsAsOneStream() throws {
        let parts: [[UInt8]] = [
            Array("first part\n".utf8), [], Array(String(repeating: "x", count: 100_000).utf8), Array("end".utf8),
        ]
        var output: [UInt8] = [1, 2, 3]
        Gzip.compress(parts, into: &output)
        #expect(try Gzip.decompress(output) == Array(parts.joined()))
        Gzip.compress([[UInt8]](), into: &output)
        #expect(try Gzip.decompress(output) == [])
    }

    @Test func incompressibleInputGrowsTheOutputBuffer() throws {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<200_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let compressed = Gzip.compress(random)
        #expect(compressed.count > random.count)
        #expect(try Gzip.decompress(compressed) == random)
    }

    @Test func refusesTruncatedData() {
        let compressed = Gzip.compress(Array(String(repeating: "abc", count: 10_000).utf8))
        #expect(throws: Gzip.DecompressionError.self) { try Gzip.decompress(Array(compressed.dropLast(10))) }
    }

    @Test func refusesGarbageAndBombs() {
        #expect(throws: Gzip.DecompressionError.self) { try Gzip.decompress([1, 2, 3, 4]) }
        let bomb = Gzip.compress([UInt8](repeating: 0, count: 1 << 20))
        #expect(throws: Gzip.DecompressionError.self) { try Gzip.decompress(bomb, limit: 1000) }
    }
}
