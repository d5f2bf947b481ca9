import Testing
import VigilCore

@Suite struct FloatFormattingTests {
    private func format(_ value: Double) -> String {
        var bytes: [UInt8] = []
        appendFloat(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Expected strings are what Go's `strconv.FormatFloat(v, 'g', -1, 64)` prints.
    @Test(arguments: [
        (0.0, "0"), (-0.0, "0"), (1, "1"), (-1, "-1"), (808_960, "808960"), (999_999, "999999"),
        (1_000_000, "1e+06"), (1_150_976, "1.150976e+06"), (1.496246784e12, "1.496246784e+12"),
        (25_276_510_208, "2.5276510208e+10"), (-1_500_000, "-1.5e+06"), (0.0001, "0.0001"),
        (0.00001, "1e-05"), (1.305e-06, "1.305e-06"), (0.42, "0.42"), (12.05, "12.05"), (123_456.5, "123456.5"),
        (1_234_567.5, "1.2345675e+06"), (0.1 + 0.2, "0.30000000000000004"), (1e21, "1e+21"), (1e22, "1e+22"),
        (1.7976931348623157e308, "1.7976931348623157e+308"), (.leastNonzeroMagnitude, "5e-324"),
        (Double(UInt64(9_007_199_254_740_993)), "9.007199254740992e+15"),
        (Double(UInt64.max), "1.8446744073709552e+19"), (-0.5, "-0.5"), (4.6971e-05, "4.6971e-05"),
    ])
    func matchesGo(_ value: Double, _ expected: String) {
        #expect(format(value) == expected)
    }

    @Test func specialValues() {
        #expect(format(.nan) == "NaN")
        #expect(format(.infinity) == "+Inf")
        #expect(format(-.infinity) == "-Inf")
    }

    @Test func roundTripsRandomValues() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let value = Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF)
            let text = format(value)
            #expect(Double(text.replacingPlusInExponent()) == value, "\(value) printed as \(text)")
        }
    }
}

extension String {
    fileprivate func replacingPlusInExponent() -> String { self.replacing("e+", with: "e") }
}
