/// Appends `value` exactly as Prometheus' Go client writes a sample value, so that vigil's output is
/// byte-compatible with node_exporter's: `strconv.AppendFloat(v, 'g', -1, 64)` — the shortest digits
/// that round-trip, in e-notation when the decimal exponent is below -4 or at least 6 (`1.150976e+06`,
/// `1.305e-06`), plain otherwise (`808960`, `0.0001`) — and `+Inf`, `-Inf`, `NaN`.
public func appendFloat(_ value: Double, to bytes: inout [UInt8]) {
    if value.isNaN {
        bytes.append(contentsOf: "NaN".utf8)
        return
    }
    if value.isInfinite {
        bytes.append(contentsOf: (value < 0 ? "-Inf" : "+Inf").utf8)
        return
    }
    if value == 0 {
        bytes.append(UInt8(ascii: "0"))
        return
    }
    // Integers below 2^53 are exact; their digits are already the shortest round-trip form.
    if value == value.rounded(.towardZero), value.magnitude < 9_007_199_254_740_992 {
        let integer = Int64(value)
        if integer.magnitude < 1_000_000 {
            appendDecimal(integer, to: &bytes)
            return
        }
        var digits = DigitBuffer()
        var rest = integer.magnitude
        while rest > 0 {
            digits.append(UInt8(truncatingIfNeeded: rest % 10))
            rest /= 10
        }
        digits.reverse()
        let exponent = digits.count - 1
        digits.trimTrailingZeros()
        appendScientific(negative: integer < 0, digits: digits, exponent: exponent, to: &bytes)
        return
    }
    // Otherwise take Swift's shortest round-trip digits and lay them out the Go way.
    var digits = DigitBuffer()
    var exponent = 0
    var negative = false
    parseShortest(value.description, digits: &digits, exponent: &exponent, negative: &negative)
    if exponent < -4 || exponent >= 6 {
        appendScientific(negative: negative, digits: digits, exponent: exponent, to: &bytes)
    } else {
        appendPlain(negative: negative, digits: digits, exponent: exponent, to: &bytes)
    }
}

/// Appends a decimal integer without going through `String`.
public func appendDecimal(_ value: Int64, to bytes: inout [UInt8]) {
    if value < 0 { bytes.append(UInt8(ascii: "-")) }
    appendDecimal(value.magnitude, to: &bytes)
}

public func appendDecimal(_ value: UInt64, to bytes: inout [UInt8]) {
    if value < 10 {
        bytes.append(UInt8(ascii: "0") + UInt8(value))
        return
    }
    var digits = DigitBuffer()
    var rest = value
    while rest > 0 {
        digits.append(UInt8(truncatingIfNeeded: rest % 10))
        rest /= 10
    }
    var index = digits.count
    while index > 0 {
        index -= 1
        bytes.append(UInt8(ascii: "0") + digits[index])
    }
}

/// Up to 24 decimal digits on the stack.
private struct DigitBuffer {
    private var storage: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private(set) var count = 0

    subscript(index: Int) -> UInt8 {
        get {
            withUnsafeBytes(of: self.storage) { $0[index] }
        }
        set {
            withUnsafeMutableBytes(of: &self.storage) { $0[index] = newValue }
        }
    }

    mutating func append(_ digit: UInt8) {
        guard self.count < 24 else { return }
        self[self.count] = digit
        self.count += 1
    }

    mutating func reverse() {
        var low = 0
        var high = self.count - 1
        while low < high {
            let t = self[low]
            self[low] = self[high]
            self[high] = t
            low += 1
            high -= 1
        }
    }

    mutating func trimTrailingZeros() {
        while self.count > 1, self[self.count - 1] == 0 { self.count -= 1 }
    }
}

/// Reads Swift's `description` of a finite, non-zero Double ("1234.5", "1.5e-07", "1e+16") into
/// significant digits and the decimal exponent of the first one.
private func parseShortest(_ text: String, digits: inout DigitBuffer, exponent: inout Int, negative: inout Bool) {
    var pointPosition: Int? = nil
    var digitsSeen = 0
    var leadingZeros = 0
    var explicitExponent = 0
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        switch byte {
        case UInt8(ascii: "-"): negative = true
        case UInt8(ascii: "."): pointPosition = digitsSeen
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            let digit = byte - UInt8(ascii: "0")
            if digits.count == 0 && digit == 0 {
                leadingZeros += 1
            } else {
                digits.append(digit)
            }
            digitsSeen += 1
        case UInt8(ascii: "e"), UInt8(ascii: "E"):
            var sign = 1
            var magnitude = 0
            while let e = iterator.next() {
                if e == UInt8(ascii: "-") {
                    sign = -1
                } else if e >= UInt8(ascii: "0") && e <= UInt8(ascii: "9") {
                    magnitude = magnitude * 10 + Int(e - UInt8(ascii: "0"))
                }
            }
            explicitExponent = sign * magnitude
        default: break
        }
    }
    // The first significant digit sits at index `leadingZeros` of all digits seen.
    let integerDigits = pointPosition ?? digitsSeen
    exponent = integerDigits - leadingZeros - 1 + explicitExponent
    digits.trimTrailingZeros()
}

private func appendScientific(negative: Bool, digits: DigitBuffer, exponent: Int, to bytes: inout [UInt8]) {
    if negative { bytes.append(UInt8(ascii: "-")) }
    bytes.append(UInt8(ascii: "0") + digits[0])
    if digits.count > 1 {
        bytes.append(UInt8(ascii: "."))
        for index in 1..<digits.count { bytes.append(UInt8(ascii: "0") + digits[index]) }
    }
    bytes.append(UInt8(ascii: "e"))
    bytes.append(exponent < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
    let magnitude = exponent.magnitude
    if magnitude < 10 { bytes.append(UInt8(ascii: "0")) }
    appendDecimal(UInt64(magnitude), to: &bytes)
}

private func appendPlain(negative: Bool, digits: DigitBuffer, exponent: Int, to bytes: inout [UInt8]) {
    if negative { bytes.append(UInt8(ascii: "-")) }
    if exponent < 0 {
        bytes.append(contentsOf: "0.".utf8)
        for _ in 0..<(-exponent - 1) { bytes.append(UInt8(ascii: "0")) }
        for index in 0..<digits.count { bytes.append(UInt8(ascii: "0") + digits[index]) }
        return
    }
    for index in 0...exponent {
        bytes.append(UInt8(ascii: "0") + (index < digits.count ? digits[index] : 0))
    }
    if digits.count > exponent + 1 {
        bytes.append(UInt8(ascii: "."))
        for index in (exponent + 1)..<digits.count { bytes.append(UInt8(ascii: "0") + digits[index]) }
    }
}
