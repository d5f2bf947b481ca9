import Testing
import VigilCore

@Suite struct ByteParsingTests {
    private func bytes(_ text: String) -> ArraySlice<UInt8> { ArraySlice(text.utf8) }

    @Test func splitsLinesAndFields() {
        let text = bytes("a  b\tc\n\nlast")
        #expect(text.lines.map(\.string) == ["a  b\tc", "", "last"])
        #expect(bytes("x\ny\n").lines.map(\.string) == ["x", "y"])
        var fields = bytes("  a  b\tc ").fields
        #expect(fields.collect().map(\.string) == ["a", "b", "c"])
        #expect(bytes("").lines.map(\.string).isEmpty)
    }

    @Test func parsesIntegersStrictly() {
        #expect(bytes("18446744073709551615").parseUInt64() == .max)
        #expect(bytes("18446744073709551616").parseUInt64() == nil)
        #expect(bytes("-12").parseInt64() == -12)
        #expect(bytes("-9223372036854775808").parseInt64() == .min)
        #expect(bytes("12a").parseUInt64() == nil)
        #expect(bytes("").parseUInt64() == nil)
        #expect(bytes("ff").parseHex() == 255)
        #expect(bytes("0000001a").parseHex() == 26)
    }

    @Test func parsesDoubles() {
        #expect(bytes("0.42").parseDouble() == 0.42)
        #expect(bytes("-12.5").parseDouble() == -12.5)
        #expect(bytes("1e+06").parseDouble() == 1_000_000)
        #expect(bytes("123456789012345678901234567890").parseDouble() == 123456789012345678901234567890.0)
        #expect(bytes("+Inf").parseDouble() == .infinity)
        #expect(bytes("NaN").parseDouble()?.isNaN == true)
        #expect(bytes("1.2.3").parseDouble() == nil)
        #expect(bytes("").parseDouble() == nil)
    }

    @Test func parsesDurations() {
        #expect(parseDuration("5s") == .seconds(5))
        #expect(parseDuration("1m30s") == .seconds(90))
        #expect(parseDuration("250ms") == .milliseconds(250))
        #expect(parseDuration("1.5h") == .seconds(5400))
        #expect(parseDuration("5") == nil)
        #expect(parseDuration("s") == nil)
        #expect(parseDuration("5 parsecs") == nil)
    }
}
