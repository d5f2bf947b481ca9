/// A metric family read from Prometheus text format.
public struct ParsedFamily: Sendable, Equatable {
    public var name: String
    public var help: String?
    /// `counter`, `gauge`, `untyped`, `histogram` or `summary`; `untyped` when no TYPE line was given.
    public var type: String
    public var samples: [ParsedSample]
}

/// One sample line.
public struct ParsedSample: Sendable, Equatable {
    public var name: String
    public var labels: [Label]
    public var value: Double
    /// Milliseconds since the epoch, when the line carried a timestamp.
    public var timestamp: Int64?

    public struct Label: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The value of a label, or nil when the sample does not have it.
    public subscript(label name: String) -> String? {
        self.labels.first { $0.name == name }?.value
    }

    public static func == (lhs: ParsedSample, rhs: ParsedSample) -> Bool {
        lhs.name == rhs.name && lhs.labels == rhs.labels && lhs.timestamp == rhs.timestamp
            && (lhs.value == rhs.value || (lhs.value.isNaN && rhs.value.isNaN))
    }
}

/// A syntax error in Prometheus text format, with its line number.
public struct ExpositionSyntaxError: Error, CustomStringConvertible, Equatable {
    public let line: Int
    public let reason: String

    public var description: String { "text format parsing error in line \(self.line): \(self.reason)" }
}

/// Parses the Prometheus text format (0.0.4) as Prometheus' own parser does: HELP and TYPE lines,
/// samples with escaped label values, optional timestamps; a family's TYPE must precede its samples and
/// appear once; histogram and summary samples (`_bucket`, `_sum`, `_count`) belong to their family.
///
/// The textfile collector reads `*.prom` files with it; tests read vigil's own output with it.
public func parseExposition(_ text: ArraySlice<UInt8>) throws(ExpositionSyntaxError) -> [ParsedFamily] {
    var parser = ExpositionParser()
    var lineNumber = 0
    for line in text.lines {
        lineNumber += 1
        try parser.consume(line.trimmed(), lineNumber: lineNumber)
    }
    return parser.families
}

/// Parses text given as a String (tests, small inputs).
public func parseExposition(_ text: String) throws(ExpositionSyntaxError) -> [ParsedFamily] {
    try parseExposition(ArraySlice(text.utf8))
}

private struct ExpositionParser {
    var families: [ParsedFamily] = []
    var indexByName: [String: Int] = [:]
    var typed: Set<String> = []

    mutating func familyIndex(for name: String) -> Int {
        if let index = self.indexByName[name] { return index }
        self.families.append(ParsedFamily(name: name, help: nil, type: "untyped", samples: []))
        self.indexByName[name] = self.families.count - 1
        return self.families.count - 1
    }

    mutating func consume(_ line: ArraySlice<UInt8>, lineNumber: Int) throws(ExpositionSyntaxError) {
        if line.isEmpty { return }
        if line.first == UInt8(ascii: "#") {
            try self.consumeComment(line.dropFirst(), lineNumber: lineNumber)
            return
        }
        let sample = try parseSample(line, lineNumber: lineNumber)
        var familyName = sample.name
        for suffix in ["_bucket", "_sum", "_count"] where sample.name.hasSuffix(suffix) {
            let base = String(sample.name.dropLast(suffix.count))
            if let index = self.indexByName[base],
                self.families[index].type == "histogram" || self.families[index].type == "summary"
            {
                familyName = base
            }
        }
        self.families[self.familyIndex(for: familyName)].samples.append(sample)
    }

    mutating func consumeComment(_ comment: ArraySlice<UInt8>, lineNumber: Int) throws(ExpositionSyntaxError) {
        var fields = comment.fields
        guard let keyword = fields.next(), keyword.equals("HELP") || keyword.equals("TYPE") else { return }
        guard let nameBytes = fields.next(), isValidMetricName(nameBytes) else {
            throw ExpositionSyntaxError(line: lineNumber, reason: "invalid metric name in comment")
        }
        let name = nameBytes.string
        let rest = comment[nameBytes.endIndex...].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        let index = self.familyIndex(for: name)
        if keyword.equals("HELP") {
            if self.families[index].help != nil {
                throw ExpositionSyntaxError(line: lineNumber, reason: "second HELP line for metric name \"\(name)\"")
            }
            self.families[index].help = unescapeHelp(rest)
            return
        }
        let type = rest.trimmed().string
        guard ["counter", "gauge", "untyped", "histogram", "summary"].contains(type) else {
            throw ExpositionSyntaxError(line: lineNumber, reason: "unknown metric type \"\(type)\"")
        }
        if self.typed.contains(name) || !self.families[index].samples.isEmpty {
            throw ExpositionSyntaxError(
                line: lineNumber,
                reason: "second TYPE line for metric name \"\(name)\", or TYPE reported after samples"
            )
        }
        self.typed.insert(name)
        self.families[index].type = type
    }
}

private func parseSample(_ line: ArraySlice<UInt8>, lineNumber: Int) throws(ExpositionSyntaxError) -> ParsedSample {
    var index = line.startIndex
    while index < line.endIndex, isNameByte(line[index], first: index == line.startIndex) { index += 1 }
    let nameBytes = line[line.startIndex..<index]
    guard isValidMetricName(nameBytes) else {
        throw ExpositionSyntaxError(line: lineNumber, reason: "invalid metric name")
    }
    var labels: [ParsedSample.Label] = []
    if index < line.endIndex, line[index] == UInt8(ascii: "{") {
        index += 1
        while true {
            while index < line.endIndex, line[index] == UInt8(ascii: " ") { index += 1 }
            guard index < line.endIndex else {
                throw ExpositionSyntaxError(line: lineNumber, reason: "unexpected end of label set")
            }
            if line[index] == UInt8(ascii: "}") {
                index += 1
                break
            }
            let labelStart = index
            while index < line.endIndex, isLabelNameByte(line[index], first: index == labelStart) { index += 1 }
            guard index > labelStart else {
                throw ExpositionSyntaxError(
                    line: lineNumber,
                    reason: "invalid label name for metric \"\(nameBytes.string)\""
                )
            }
            let labelName = line[labelStart..<index].string
            while index < line.endIndex, line[index] == UInt8(ascii: " ") { index += 1 }
            guard index < line.endIndex, line[index] == UInt8(ascii: "=") else {
                throw ExpositionSyntaxError(
                    line: lineNumber,
                    reason: "expected '=' after label name, found \(describe(line, index))"
                )
            }
            index += 1
            while index < line.endIndex, line[index] == UInt8(ascii: " ") { index += 1 }
            guard index < line.endIndex, line[index] == UInt8(ascii: "\"") else {
                throw ExpositionSyntaxError(
                    line: lineNumber,
                    reason: "expected '\"' at start of label value, found \(describe(line, index))"
                )
            }
            index += 1
            var value: [UInt8] = []
            var closed = false
            while index < line.endIndex {
                let byte = line[index]
                index += 1
                if byte == UInt8(ascii: "\"") {
                    closed = true
                    break
                }
                if byte == UInt8(ascii: "\\") {
                    guard index < line.endIndex else { break }
                    let escaped = line[index]
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\\"): value.append(UInt8(ascii: "\\"))
                    case UInt8(ascii: "\""): value.append(UInt8(ascii: "\""))
                    case UInt8(ascii: "n"): value.append(UInt8(ascii: "\n"))
                    default:
                        throw ExpositionSyntaxError(
                            line: lineNumber,
                            reason: "invalid escape sequence '\\\(Character(Unicode.Scalar(escaped)))'"
                        )
                    }
                    continue
                }
                value.append(byte)
            }
            guard closed else {
                throw ExpositionSyntaxError(line: lineNumber, reason: "unterminated label value")
            }
            if labels.contains(where: { $0.name == labelName }) {
                throw ExpositionSyntaxError(line: lineNumber, reason: "duplicate label name \"\(labelName)\"")
            }
            labels.append(ParsedSample.Label(name: labelName, value: String(decoding: value, as: UTF8.self)))
            while index < line.endIndex, line[index] == UInt8(ascii: " ") { index += 1 }
            guard index < line.endIndex else {
                throw ExpositionSyntaxError(line: lineNumber, reason: "unexpected end of label set")
            }
            if line[index] == UInt8(ascii: ",") {
                index += 1
            } else if line[index] != UInt8(ascii: "}") {
                throw ExpositionSyntaxError(
                    line: lineNumber,
                    reason: "unexpected \(describe(line, index)) in label set"
                )
            }
        }
    }
    var fields = line[index...].fields
    guard let valueBytes = fields.next() else {
        throw ExpositionSyntaxError(line: lineNumber, reason: "expected a value for metric \"\(nameBytes.string)\"")
    }
    guard let value = valueBytes.parseDouble() else {
        throw ExpositionSyntaxError(line: lineNumber, reason: "expected float as value, got \"\(valueBytes.string)\"")
    }
    var timestamp: Int64? = nil
    if let timestampBytes = fields.next() {
        guard let parsed = timestampBytes.parseInt64() else {
            throw ExpositionSyntaxError(
                line: lineNumber,
                reason: "expected integer as timestamp, got \"\(timestampBytes.string)\""
            )
        }
        timestamp = parsed
    }
    if let extra = fields.next() {
        throw ExpositionSyntaxError(line: lineNumber, reason: "spurious string after timestamp: \"\(extra.string)\"")
    }
    return ParsedSample(name: nameBytes.string, labels: labels, value: value, timestamp: timestamp)
}

private func describe(_ line: ArraySlice<UInt8>, _ index: Int) -> String {
    index < line.endIndex ? "\"\(Character(Unicode.Scalar(line[index])))\"" : "end of line"
}

private func isNameByte(_ byte: UInt8, first: Bool) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"),
        UInt8(ascii: ":"):
        true
    case UInt8(ascii: "0")...UInt8(ascii: "9"): !first
    default: false
    }
}

private func isLabelNameByte(_ byte: UInt8, first: Bool) -> Bool {
    byte != UInt8(ascii: ":") && isNameByte(byte, first: first)
}

/// Whether the bytes form a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
public func isValidMetricName(_ name: ArraySlice<UInt8>) -> Bool {
    guard !name.isEmpty else { return false }
    var first = true
    for byte in name {
        guard isNameByte(byte, first: first) else { return false }
        first = false
    }
    return true
}

/// Whether the string is a valid metric name.
public func isValidMetricName(_ name: String) -> Bool { isValidMetricName(ArraySlice(name.utf8)) }

private func unescapeHelp(_ text: ArraySlice<UInt8>) -> String {
    var bytes: [UInt8] = []
    var escaping = false
    for byte in text {
        if escaping {
            switch byte {
            case UInt8(ascii: "n"): bytes.append(UInt8(ascii: "\n"))
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
            default: bytes.append(contentsOf: [UInt8(ascii: "\\"), byte])
            }
            escaping = false
        } else if byte == UInt8(ascii: "\\") {
            escaping = true
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
