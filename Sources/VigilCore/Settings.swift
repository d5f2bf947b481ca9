import Synchronization

/// A value of a setting, from its default, the configuration file or the command line.
public enum OptionValue: Sendable, Equatable {
    case bool(Bool)
    case string(String)
    /// A repeatable setting (`--web.listen-address` given twice).
    case strings([String])
    /// A regular expression in Go's RE2 syntax, as node_exporter takes it.
    case regex(String)
    case duration(Duration)
    case integer(Int)

    /// The kind of value without the value, for messages ("expects a duration").
    public var kindDescription: String {
        switch self {
        case .bool: "true or false"
        case .string: "a string"
        case .strings: "a list of strings"
        case .regex: "a regular expression"
        case .duration: "a duration such as 5s or 1m30s"
        case .integer: "an integer"
        }
    }
}

/// A setting vigil understands: its dotted name (the command-line flag without `--`; nested keys in
/// the configuration file), default, help and hidden former names.
public struct OptionSpec: Sendable {
    public let name: String
    public let defaultValue: OptionValue
    public let help: String
    public let aliases: [String]

    public init(_ name: String, _ defaultValue: OptionValue, help: String, aliases: [String] = []) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
        self.aliases = aliases
    }
}

/// Where a setting's value came from, for error messages that name it.
public enum SettingOrigin: Sendable, Equatable {
    case defaultValue
    case file(path: String, line: Int)
    case commandLine
}

/// A mistake in the configuration: it names the place (file and line, or the command line), the key
/// and the reason.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let origin: SettingOrigin
    public let key: String
    public let reason: String

    public init(origin: SettingOrigin, key: String, reason: String) {
        self.origin = origin
        self.key = key
        self.reason = reason
    }

    public var description: String {
        switch self.origin {
        case .file(let path, let line): "\(path):\(line): \(self.key): \(self.reason)"
        case .commandLine: "command line: --\(self.key): \(self.reason)"
        case .defaultValue: "\(self.key): \(self.reason)"
        }
    }
}

/// The effective settings: every declared option with its value and origin.
public struct Settings: Sendable {
    private var values: [String: OptionValue] = [:]
    private var origins: [String: SettingOrigin] = [:]

    public init(specs: [OptionSpec]) {
        for spec in specs {
            self.values[spec.name] = spec.defaultValue
        }
    }

    public func isDeclared(_ name: String) -> Bool { self.values[name] != nil }

    public mutating func set(_ name: String, _ value: OptionValue, origin: SettingOrigin) {
        precondition(self.values[name] != nil, "undeclared setting \(name)")
        self.values[name] = value
        self.origins[name] = origin
    }

    public func value(_ name: String) -> OptionValue {
        guard let value = self.values[name] else { preconditionFailure("undeclared setting \(name)") }
        return value
    }

    public func origin(of name: String) -> SettingOrigin { self.origins[name] ?? .defaultValue }

    /// Whether the value was given in the file or on the command line rather than defaulted.
    public func isExplicit(_ name: String) -> Bool { self.origins[name] != nil }

    public func bool(_ name: String) -> Bool {
        if case .bool(let value) = self.value(name) { return value }
        preconditionFailure("setting \(name) is not a bool")
    }

    public func string(_ name: String) -> String {
        switch self.value(name) {
        case .string(let value), .regex(let value): return value
        default: preconditionFailure("setting \(name) is not a string")
        }
    }

    public func strings(_ name: String) -> [String] {
        if case .strings(let value) = self.value(name) { return value }
        preconditionFailure("setting \(name) is not a list")
    }

    public func duration(_ name: String) -> Duration {
        if case .duration(let value) = self.value(name) { return value }
        preconditionFailure("setting \(name) is not a duration")
    }

    public func integer(_ name: String) -> Int {
        if case .integer(let value) = self.value(name) { return value }
        preconditionFailure("setting \(name) is not an integer")
    }

    /// The compiled regular expression of a regex setting.
    public func regex(_ name: String) throws(ConfigurationError) -> GoRegex {
        do {
            return try GoRegex(self.string(name))
        } catch {
            throw self.error(name, "invalid regular expression \"\(self.string(name))\": \(error)")
        }
    }

    /// An error about a setting, placed where its value came from.
    public func error(_ name: String, _ reason: String) -> ConfigurationError {
        ConfigurationError(origin: self.origin(of: name), key: name, reason: reason)
    }
}

/// Parses a duration the way Go and Prometheus write them: `500ms`, `5s`, `1m30s`, `2h`.
public func parseDuration(_ text: String) -> Duration? {
    var total = Duration.zero
    var number = 0.0
    var fraction = 0.0
    var inFraction = false
    var sawDigit = false
    var index = text.utf8.startIndex
    let utf8 = text.utf8
    guard !text.isEmpty else { return nil }
    if text == "0" { return .zero }
    while index < utf8.endIndex {
        let byte = utf8[index]
        if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
            sawDigit = true
            if inFraction {
                fraction /= 10
                number += Double(byte - UInt8(ascii: "0")) * fraction
            } else {
                number = number * 10 + Double(byte - UInt8(ascii: "0"))
            }
            index = utf8.index(after: index)
            continue
        }
        if byte == UInt8(ascii: ".") && !inFraction {
            inFraction = true
            fraction = 1
            index = utf8.index(after: index)
            continue
        }
        guard sawDigit else { return nil }
        var unitEnd = index
        while unitEnd < utf8.endIndex, !(utf8[unitEnd] >= UInt8(ascii: "0") && utf8[unitEnd] <= UInt8(ascii: "9")) {
            unitEnd = utf8.index(after: unitEnd)
        }
        let unit = String(text[index..<unitEnd])
        let seconds: Double
        switch unit {
        case "ns": seconds = 1e-9
        case "us", "µs": seconds = 1e-6
        case "ms": seconds = 1e-3
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        case "d": seconds = 86400
        default: return nil
        }
        total += Duration.nanoseconds(Int64((number * seconds * 1e9).rounded()))
        number = 0
        inFraction = false
        sawDigit = false
        index = unitEnd
    }
    return sawDigit ? nil : total
}

/// Decides whether a device, mount point or unit name passes an include / exclude pair of regular
/// expressions (unanchored, as Go's `MatchString`, unless `wholeName`). Results are cached per name: the
/// set of names on a host is small and stable, and the regex engine is the slow part.
public final class NameFilter: Sendable {
    private let include: GoRegex?
    private let exclude: GoRegex?
    private let wholeName: Bool
    private let cache = Mutex<[String: Bool]>([:])

    /// - Parameter wholeName: match the whole name, as `^(?:…)$` (systemd_exporter's unit patterns).
    public init(include: GoRegex?, exclude: GoRegex?, wholeName: Bool = false) {
        self.include = include
        self.exclude = exclude
        self.wholeName = wholeName
    }

    /// Lets everything through.
    public static var all: NameFilter { NameFilter(include: nil, exclude: nil) }

    public func allows(_ name: String) -> Bool {
        if let known = self.cache.withLock({ $0[name] }) { return known }
        var allowed = true
        if let include = self.include, !self.matches(include, name) { allowed = false }
        if let exclude = self.exclude, self.matches(exclude, name) { allowed = false }
        self.cache.withLock { cache in
            if cache.count > 8192 { cache.removeAll(keepingCapacity: true) }
            cache[name] = allowed
        }
        return allowed
    }

    private func matches(_ regex: GoRegex, _ name: String) -> Bool {
        self.wholeName ? regex.matchesWhole(name) : regex.matches(name)
    }
}

/// A regular expression written in Go's RE2 syntax, matched as Go's `MatchString` does (unanchored).
public struct GoRegex: Sendable {
    public let pattern: String
    private let regex: RegexBox

    public init(_ pattern: String) throws {
        self.pattern = pattern
        self.regex = RegexBox(try Regex(pattern))
    }

    public func matches(_ text: String) -> Bool {
        self.regex.value.withLock { (try? $0.firstMatch(in: text)) != nil }
    }

    /// Whether the whole text matches (systemd_exporter anchors its unit patterns).
    public func matchesWhole(_ text: String) -> Bool {
        self.regex.value.withLock { (try? $0.wholeMatch(in: text)) != nil }
    }
}

/// `Regex` is not `Sendable`; all access goes through this lock.
private final class RegexBox: Sendable {
    let value: Mutex<Regex<AnyRegexOutput>>
    init(_ regex: sending Regex<AnyRegexOutput>) { self.value = Mutex(regex) }
}
