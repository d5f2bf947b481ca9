/// A record tag with journal field expansions: `journal.${_SYSTEMD_UNIT}`, `app.${SYSLOG_IDENTIFIER:-other}`.
///
/// `${FIELD}` expands to the entry's first value of `FIELD`; when the field is absent, empty or not
/// valid UTF-8, to the expansion's own default (`${FIELD:-default}`) or else to the configured default.
public struct TagTemplate: Sendable, Equatable {
    enum Part: Sendable, Equatable {
        case literal([UInt8])
        /// Index into ``fields``, and the default bytes.
        case field(Int, default: [UInt8])
    }

    /// A template that cannot be parsed, with the reason.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    let parts: [Part]
    /// The journal field names the template expands, each once.
    let fields: [String]

    /// The tag when the template expands no field.
    var constant: String? {
        guard self.fields.isEmpty else { return nil }
        return String(
            decoding: self.parts.flatMap { part -> [UInt8] in
                if case .literal(let bytes) = part { return bytes }
                return []
            },
            as: UTF8.self
        )
    }

    public init(_ template: String, defaultValue: String = "unknown") throws(ParseError) {
        var parts: [Part] = []
        var fields: [String] = []
        var literal: [UInt8] = []
        let bytes = Array(template.utf8)
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "$"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "{")
            else {
                literal.append(bytes[index])
                index += 1
                continue
            }
            guard let close = bytes[(index + 2)...].firstIndex(of: UInt8(ascii: "}")) else {
                throw ParseError(description: "\"${\" without a closing \"}\" in the tag \"\(template)\"")
            }
            let body = bytes[(index + 2)..<close]
            var name = body
            var fallback = Array(defaultValue.utf8)
            if let colon = body.firstIndex(of: UInt8(ascii: ":")) {
                guard colon + 1 < body.endIndex, body[colon + 1] == UInt8(ascii: "-") else {
                    throw ParseError(description: "expected \":-\" after the field name in the tag \"\(template)\"")
                }
                name = body[..<colon]
                fallback = Array(body[(colon + 2)...])
            }
            let fieldName = String(decoding: name, as: UTF8.self)
            guard JournalConfiguration.isValidFieldName(fieldName) else {
                throw ParseError(
                    description:
                        "\"\(fieldName)\" in the tag \"\(template)\" is not a journal field name (A-Z, 0-9, _)"
                )
            }
            if !literal.isEmpty {
                parts.append(.literal(literal))
                literal = []
            }
            let fieldIndex = fields.firstIndex(of: fieldName) ?? fields.count
            if fieldIndex == fields.count { fields.append(fieldName) }
            parts.append(.field(fieldIndex, default: fallback))
            index = close + 1
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
        self.fields = fields
    }
}
