import VigilCore

/// Malformed JSON, including a document that stops early (a runtime's state file caught while being
/// written): the caller skips the file and tries again at the next scrape.
struct JSONError: Error, Equatable, CustomStringConvertible {
    var offset: Int
    var reason: String

    var description: String { "invalid JSON at byte \(self.offset): \(self.reason)" }
}

/// A small, strict pull reader for JSON bytes: the caller walks the objects it cares about and skips
/// every other value, so extracting a few keys from a runtime's state file builds nothing else.
///
/// Strict means the full grammar is checked, including the parts that are skipped, and the document
/// must end after its value: a truncated file is an error, never a partial answer.
struct JSONReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int
    private var depth = 0
    private static let maxDepth = 64

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    /// Reads an object, calling `body` with each key; `body` must consume the value (read or skip it).
    mutating func readObject(_ body: (String, inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
        try self.expect(UInt8(ascii: "{"))
        try self.enter()
        self.skipWhitespace()
        if self.peekByte() == UInt8(ascii: "}") {
            self.index += 1
            self.depth -= 1
            return
        }
        while true {
            self.skipWhitespace()
            let key = try self.readString()
            self.skipWhitespace()
            try self.expect(UInt8(ascii: ":"))
            self.skipWhitespace()
            try body(key, &self)
            self.skipWhitespace()
            guard let byte = self.peekByte() else { throw self.error("unterminated object") }
            self.index += 1
            if byte == UInt8(ascii: "}") { break }
            guard byte == UInt8(ascii: ",") else { throw self.error("expected , or } in object") }
        }
        self.depth -= 1
    }

    /// Reads an object of string values (labels, annotations); values of other types are skipped.
    mutating func readStringMap() throws(JSONError) -> [String: String] {
        var map: [String: String] = [:]
        try self.readObject { (key, reader) throws(JSONError) in
            if reader.peekByte() == UInt8(ascii: "\"") {
                map[key] = try reader.readString()
            } else {
                try reader.skipValue()
            }
        }
        return map
    }

    /// Reads a string value; `null` reads as nil.
    mutating func readOptionalString() throws(JSONError) -> String? {
        if self.peekByte() == UInt8(ascii: "n") {
            try self.skipValue()
            return nil
        }
        return try self.readString()
    }

    /// Reads a string, decoding its escapes.
    mutating func readString() throws(JSONError) -> String {
        try self.expect(UInt8(ascii: "\""))
        let start = self.index
        // Fast path: no escapes.
        while self.index < self.bytes.endIndex {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\"") {
                let text = self.bytes[start..<self.index].string
                self.index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw self.error("control character in string") }
            self.index += 1
        }
        var decoded = Array(self.bytes[start..<self.index])
        while self.index < self.bytes.endIndex {
            let byte = self.bytes[self.index]
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try self.readEscape(into: &decoded)
            case 0..<0x20:
                throw self.error("control character in string")
            default:
                decoded.append(byte)
            }
        }
        throw self.error("unterminated string")
    }

    /// Reads an integer (a number without fraction or exponent within Int64).
    mutating func readInteger() throws(JSONError) -> Int64 {
        let start = self.index
        try self.skipNumber()
        guard let value = self.bytes[start..<self.index].parseInt64() else {
            throw JSONError(offset: start - self.bytes.startIndex, reason: "expected an integer")
        }
        return value
    }

    /// Skips any value, checking its syntax.
    mutating func skipValue() throws(JSONError) {
        guard let byte = self.peekByte() else { throw self.error("expected a value") }
        switch byte {
        case UInt8(ascii: "{"):
            try self.readObject { (_, reader) throws(JSONError) in try reader.skipValue() }
        case UInt8(ascii: "["):
            self.index += 1
            try self.enter()
            self.skipWhitespace()
            if self.peekByte() == UInt8(ascii: "]") {
                self.index += 1
            } else {
                while true {
                    self.skipWhitespace()
                    try self.skipValue()
                    self.skipWhitespace()
                    guard let next = self.peekByte() else { throw self.error("unterminated array") }
                    self.index += 1
                    if next == UInt8(ascii: "]") { break }
                    guard next == UInt8(ascii: ",") else { throw self.error("expected , or ] in array") }
                }
            }
            self.depth -= 1
        case UInt8(ascii: "\""):
            _ = try self.readString()
        case UInt8(ascii: "t"): try self.expectLiteral("true")
        case UInt8(ascii: "f"): try self.expectLiteral("false")
        case UInt8(ascii: "n"): try self.expectLiteral("null")
        default: try self.skipNumber()
        }
    }

    /// Checks that nothing but whitespace follows the document's value.
    mutating func finish() throws(JSONError) {
        self.skipWhitespace()
        guard self.index == self.bytes.endIndex else { throw self.error("unexpected data after the document") }
    }

    func peekByte() -> UInt8? {
        self.index < self.bytes.endIndex ? self.bytes[self.index] : nil
    }

    private mutating func enter() throws(JSONError) {
        self.depth += 1
        guard self.depth <= Self.maxDepth else { throw self.error("nested too deeply") }
    }

    private mutating func skipWhitespace() {
        while self.index < self.bytes.endIndex {
            switch self.bytes[self.index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): self.index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws(JSONError) {
        guard self.peekByte() == byte else {
            throw self.error(self.peekByte() == nil ? "unexpected end" : "expected \(Unicode.Scalar(byte))")
        }
        self.index += 1
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let matches = literal.withUTF8Buffer { expected in
            self.bytes.endIndex - self.index >= expected.count
                && self.bytes[self.index..<(self.index + expected.count)].elementsEqual(expected)
        }
        guard matches else { throw self.error("invalid literal") }
        self.index += literal.utf8CodeUnitCount
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    private mutating func skipNumber() throws(JSONError) {
        if self.peekByte() == UInt8(ascii: "-") { self.index += 1 }
        guard let first = self.peekByte(), first.isDigit else { throw self.error("expected a value") }
        self.index += 1
        if first != UInt8(ascii: "0") { self.skipDigits() }
        if self.peekByte() == UInt8(ascii: ".") {
            self.index += 1
            guard self.peekByte()?.isDigit == true else { throw self.error("expected digits after .") }
            self.skipDigits()
        }
        if self.peekByte() == UInt8(ascii: "e") || self.peekByte() == UInt8(ascii: "E") {
            self.index += 1
            if self.peekByte() == UInt8(ascii: "+") || self.peekByte() == UInt8(ascii: "-") { self.index += 1 }
            guard self.peekByte()?.isDigit == true else { throw self.error("expected an exponent") }
            self.skipDigits()
        }
        // A number runs up to a delimiter; anything else glued to it is garbage (`12x`) — or the
        // end of a truncated document, which the enclosing value reports.
        if let next = self.peekByte(), !(next.isJSONDelimiter) { throw self.error("invalid number") }
    }

    private mutating func skipDigits() {
        while self.peekByte()?.isDigit == true { self.index += 1 }
    }

    private mutating func readEscape(into decoded: inout [UInt8]) throws(JSONError) {
        guard let byte = self.peekByte() else { throw self.error("unterminated escape") }
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(byte)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try self.readHex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate pairs with a following `\uDC00`–`\uDFFF`; alone it is replaced.
                if self.bytes.endIndex - self.index >= 6, self.bytes[self.index] == UInt8(ascii: "\\"),
                    self.bytes[self.index + 1] == UInt8(ascii: "u")
                {
                    self.index += 2
                    let low = try self.readHex4()
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        appendScalar(0xFFFD, to: &decoded)
                        scalar = low
                    }
                } else {
                    scalar = 0xFFFD
                }
            }
            appendScalar((0xDC00..<0xE000).contains(scalar) ? 0xFFFD : scalar, to: &decoded)
        default:
            throw self.error("invalid escape")
        }
    }

    private mutating func readHex4() throws(JSONError) -> UInt32 {
        guard self.bytes.endIndex - self.index >= 4,
            let value = self.bytes[self.index..<(self.index + 4)].parseHex()
        else { throw self.error("invalid \\u escape") }
        self.index += 4
        return UInt32(value)
    }

    private func error(_ reason: String) -> JSONError {
        JSONError(offset: self.index - self.bytes.startIndex, reason: reason)
    }
}

private func appendScalar(_ value: UInt32, to bytes: inout [UInt8]) {
    let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
    bytes.append(contentsOf: String(Character(scalar)).utf8)
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }

    fileprivate var isJSONDelimiter: Bool {
        switch self {
        case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: " "), UInt8(ascii: "\t"),
            UInt8(ascii: "\n"), UInt8(ascii: "\r"):
            true
        default: false
        }
    }
}
