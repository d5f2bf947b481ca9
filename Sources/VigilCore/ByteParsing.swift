/// Byte-level parsing helpers for pseudo-files: lines and whitespace-separated fields as slices of the
/// read buffer, and numbers parsed without building Strings.
extension ArraySlice where Element == UInt8 {
    /// The lines of the text, without their newline; a final line without newline counts.
    public var lines: ByteSplitSequence { ByteSplitSequence(self, separator: UInt8(ascii: "\n")) }

    /// Whitespace-separated fields (spaces and tabs; runs count as one separator).
    public var fields: ByteFieldSequence { ByteFieldSequence(self) }

    /// Parts separated by `separator`; empty parts are kept.
    public func split(byte separator: UInt8) -> ByteSplitSequence {
        ByteSplitSequence(self, separator: separator)
    }

    /// The text without leading and trailing spaces, tabs and newlines.
    public func trimmed() -> ArraySlice<UInt8> {
        var start = self.startIndex
        var end = self.endIndex
        while start < end, self[start].isSpace { start += 1 }
        while end > start, self[end - 1].isSpace { end -= 1 }
        return self[start..<end]
    }

    /// The bytes as a String (invalid UTF-8 replaced).
    public var string: String { String(decoding: self, as: UTF8.self) }

    public func hasPrefix(_ prefix: StaticString) -> Bool {
        prefix.withUTF8Buffer { p in
            guard self.count >= p.count else { return false }
            var index = self.startIndex
            for byte in p {
                if self[index] != byte { return false }
                index += 1
            }
            return true
        }
    }

    public func equals(_ text: StaticString) -> Bool {
        text.withUTF8Buffer { $0.count == self.count && self.hasPrefix(text) }
    }

    public func equals(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in utf8.count == self.count && self.elementsEqual(utf8) }
    }

    /// The part after the first `separator`, and the part before it.
    public func splitOnce(_ separator: UInt8) -> (ArraySlice<UInt8>, ArraySlice<UInt8>)? {
        guard let index = self.firstIndex(of: separator) else { return nil }
        return (self[self.startIndex..<index], self[(index + 1)...])
    }

    /// An unsigned decimal integer filling the whole slice; nil for anything else (empty, sign,
    /// garbage, overflow).
    public func parseUInt64() -> UInt64? {
        guard !self.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in self {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    /// A signed decimal integer filling the whole slice.
    public func parseInt64() -> Int64? {
        guard let first = self.first else { return nil }
        if first == UInt8(ascii: "-") {
            guard let magnitude = self.dropFirst().parseUInt64(), magnitude <= UInt64(Int64.max) + 1 else {
                return nil
            }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        let digits = first == UInt8(ascii: "+") ? self.dropFirst() : self
        guard let magnitude = digits.parseUInt64(), magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// A decimal number as Double: integers, fractions and exponents (`12`, `-0.5`, `1e+06`), plus
    /// `NaN`, `+Inf`, `-Inf`. Very large integers keep their magnitude (as Double).
    public func parseDouble() -> Double? {
        guard !self.isEmpty else { return nil }
        if let integer = self.parseUInt64() { return Double(integer) }
        var negative = false
        var body = self
        if body.first == UInt8(ascii: "-") || body.first == UInt8(ascii: "+") {
            negative = body.first == UInt8(ascii: "-")
            body = body.dropFirst()
        }
        // Fast and exact: integer digits and fraction digits within 2^53, divided once by 10^k.
        var mantissa: UInt64 = 0
        var fractionDigits = 0
        var seenPoint = false
        var seenDigit = false
        var simple = true
        for byte in body {
            if byte == UInt8(ascii: ".") && !seenPoint {
                seenPoint = true
                continue
            }
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10, mantissa < 900_719_925_474_099 else {
                simple = false
                break
            }
            seenDigit = true
            mantissa = mantissa * 10 + UInt64(digit)
            if seenPoint { fractionDigits += 1 }
        }
        if simple && seenDigit && fractionDigits <= 22 {
            let value = Double(mantissa) / powersOfTen[fractionDigits]
            return negative ? -value : value
        }
        // Anything else (exponents, many digits, Inf, NaN) goes through the standard library.
        let text = String(decoding: self, as: UTF8.self)
        switch text {
        case "+Inf", "Inf", "inf": return .infinity
        case "-Inf", "-inf": return -.infinity
        case "NaN", "nan": return .nan
        default: return Double(text)
        }
    }

    /// A hexadecimal integer (without `0x`), as in `/proc/net/softnet_stat`.
    public func parseHex() -> UInt64? {
        guard !self.isEmpty, self.count <= 16 else { return nil }
        var value: UInt64 = 0
        for byte in self {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}

private let powersOfTen: [Double] = (0...22).map { exponent in
    var value = 1.0
    for _ in 0..<exponent { value *= 10 }
    return value
}

extension UInt8 {
    @inline(__always)
    var isSpace: Bool {
        self == UInt8(ascii: " ") || self == UInt8(ascii: "\t") || self == UInt8(ascii: "\n")
            || self == UInt8(ascii: "\r")
    }
}

/// Parts of a byte slice between separators, as slices (no copies).
public struct ByteSplitSequence: Sequence, IteratorProtocol {
    private var rest: ArraySlice<UInt8>
    private let separator: UInt8
    private var done = false

    init(_ bytes: ArraySlice<UInt8>, separator: UInt8) {
        self.rest = bytes
        self.separator = separator
        // A trailing separator does not start another (empty) part.
        self.done = bytes.isEmpty
    }

    public mutating func next() -> ArraySlice<UInt8>? {
        guard !self.done else { return nil }
        if let index = self.rest.firstIndex(of: self.separator) {
            let part = self.rest[self.rest.startIndex..<index]
            self.rest = self.rest[(index + 1)...]
            if self.rest.isEmpty && self.separator == UInt8(ascii: "\n") { self.done = true }
            return part
        }
        self.done = true
        return self.rest
    }
}

/// Whitespace-separated fields of a byte slice, as slices.
public struct ByteFieldSequence: Sequence, IteratorProtocol {
    private var rest: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.rest = bytes
    }

    public mutating func next() -> ArraySlice<UInt8>? {
        var start = self.rest.startIndex
        let end = self.rest.endIndex
        while start < end, self.rest[start].isSpace { start += 1 }
        guard start < end else { return nil }
        var stop = start
        while stop < end, !self.rest[stop].isSpace { stop += 1 }
        let field = self.rest[start..<stop]
        self.rest = self.rest[stop..<end]
        return field
    }

    /// The remaining fields collected into an array (for lines with positional fields).
    public mutating func collect(max: Int = .max) -> [ArraySlice<UInt8>] {
        var all: [ArraySlice<UInt8>] = []
        while all.count < max, let field = self.next() { all.append(field) }
        return all
    }
}
