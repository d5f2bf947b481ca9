import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads a section of the configuration file (`journal:`, `forward:`) with typed getters. Every
/// mistake becomes a ``ConfigurationError`` naming the file, the line, the dotted key and the reason;
/// they are collected so that `vigil check-config` lists them all.
final class SectionParser {
    /// One mapping of the file and the keys read from it, so that unknown keys can be reported.
    final class Mapping {
        let path: String
        let line: Int
        fileprivate let entries: [(key: String, keyLine: Int, value: YAMLNode)]
        fileprivate var known: [String] = []

        fileprivate init(path: String, line: Int, entries: [(key: String, keyLine: Int, value: YAMLNode)]) {
            self.path = path
            self.line = line
            self.entries = entries
        }

        fileprivate func entry(_ key: String) -> (key: String, keyLine: Int, value: YAMLNode)? {
            self.known.append(key)
            guard let entry = self.entries.first(where: { $0.key == key }), !entry.value.isNull else { return nil }
            return entry
        }

        func has(_ key: String) -> Bool { self.entries.contains { $0.key == key && !$0.value.isNull } }

        func key(_ key: String) -> String { "\(self.path).\(key)" }

        /// The line of `key`, or of the mapping when the key is absent.
        func line(of key: String) -> Int { self.entries.first { $0.key == key }?.keyLine ?? self.line }
    }

    let file: String
    /// Where relative secret file names are looked up: systemd's `$CREDENTIALS_DIRECTORY`.
    let credentialsDirectory: String?
    private(set) var errors: [ConfigurationError] = []

    init(file: String, credentialsDirectory: String? = getenv("CREDENTIALS_DIRECTORY").map { String(cString: $0) }) {
        self.file = file
        self.credentialsDirectory = credentialsDirectory
    }

    func error(_ line: Int, _ key: String, _ reason: String) {
        self.errors.append(ConfigurationError(origin: .file(path: self.file, line: line), key: key, reason: reason))
    }

    /// Adds an error found elsewhere (a command-line flag of the same feature).
    func add(_ error: ConfigurationError) {
        self.errors.append(error)
    }

    func error(in mapping: Mapping, _ key: String, _ reason: String) {
        self.error(mapping.line(of: key), mapping.key(key), reason)
    }

    /// The node as a mapping; null is an empty mapping.
    func mapping(_ node: YAMLNode, path: String) -> Mapping? {
        switch node {
        case .mapping(let entries, let line):
            return Mapping(path: path, line: line, entries: entries)
        case _ where node.isNull:
            return Mapping(path: path, line: node.line, entries: [])
        default:
            self.error(node.line, path, "expects a mapping of settings, found \(node.kindDescription)")
            return nil
        }
    }

    /// Reports keys of the mapping that no getter asked for.
    func finish(_ mapping: Mapping) {
        for entry in mapping.entries where !mapping.known.contains(entry.key) {
            let hint = mapping.known.min { editDistance(entry.key, $0) < editDistance(entry.key, $1) }
                .flatMap { editDistance(entry.key, $0) <= 3 ? "; did you mean \($0)?" : nil }
            self.error(entry.keyLine, mapping.key(entry.key), "unknown key\(hint ?? "")")
        }
    }

    func string(_ mapping: Mapping, _ key: String) -> String? {
        guard let entry = mapping.entry(key) else { return nil }
        guard case .scalar(let text, _, _) = entry.value else {
            self.error(entry.keyLine, mapping.key(key), "expects a string, found \(entry.value.kindDescription)")
            return nil
        }
        return text
    }

    /// A list of strings; a single string counts as a list of one.
    func strings(_ mapping: Mapping, _ key: String) -> [String]? {
        guard let entry = mapping.entry(key) else { return nil }
        switch entry.value {
        case .scalar(let text, _, _):
            return [text]
        case .sequence(let items, _):
            var values: [String] = []
            for item in items {
                guard case .scalar(let text, _, _) = item else {
                    self.error(
                        item.line,
                        mapping.key(key),
                        "expects a list of strings, found \(item.kindDescription) in it"
                    )
                    return nil
                }
                values.append(text)
            }
            return values
        case .mapping:
            self.error(entry.keyLine, mapping.key(key), "expects a list of strings, found a mapping")
            return nil
        }
    }

    func bool(_ mapping: Mapping, _ key: String) -> Bool? {
        guard let text = self.string(mapping, key) else { return nil }
        guard let value = parseBool(text) else {
            self.error(in: mapping, key, "expects true or false, got \"\(text)\"")
            return nil
        }
        return value
    }

    /// An integer in `range`.
    func integer(_ mapping: Mapping, _ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let text = self.string(mapping, key) else { return nil }
        guard let value = Int(text) else {
            self.error(in: mapping, key, "expects an integer, got \"\(text)\"")
            return nil
        }
        guard range.contains(value) else {
            let upper = range.upperBound == .max ? "" : " and \(range.upperBound)"
            self.error(
                in: mapping,
                key,
                upper.isEmpty ? "must be at least \(range.lowerBound)" : "must be between \(range.lowerBound)\(upper)"
            )
            return nil
        }
        return value
    }

    /// A positive duration (`500ms`, `5s`, `1m30s`).
    func duration(_ mapping: Mapping, _ key: String) -> Duration? {
        guard let text = self.string(mapping, key) else { return nil }
        guard let value = parseDuration(text), value > .zero else {
            self.error(in: mapping, key, "expects a positive duration such as 500ms, 5s or 1m30s, got \"\(text)\"")
            return nil
        }
        return value
    }

    /// One of `choices`.
    func choice(_ mapping: Mapping, _ key: String, _ choices: [String]) -> String? {
        guard let text = self.string(mapping, key) else { return nil }
        guard choices.contains(text) else {
            self.error(in: mapping, key, "must be one of \(choices.joined(separator: ", ")), got \"\(text)\"")
            return nil
        }
        return text
    }

    func child(_ mapping: Mapping, _ key: String) -> Mapping? {
        guard let entry = mapping.entry(key) else { return nil }
        return self.mapping(entry.value, path: mapping.key(key))
    }

    /// A list whose items are read by `item` (with their dotted path `key[index]`).
    func list<T>(_ mapping: Mapping, _ key: String, _ item: (YAMLNode, String) -> T?) -> [T]? {
        guard let entry = mapping.entry(key) else { return nil }
        guard case .sequence(let items, _) = entry.value else {
            self.error(entry.keyLine, mapping.key(key), "expects a list, found \(entry.value.kindDescription)")
            return nil
        }
        return items.enumerated().compactMap { item($1, "\(mapping.key(key))[\($0)]") }
    }

    /// A secret given inline (`key`) or in a file (`key_file`): the file's content without a final line
    /// break. A relative file name is looked up in `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`)
    /// when that is set.
    func secret(_ mapping: Mapping, _ key: String) -> String? {
        let fileKey = key + "_file"
        let inline = self.string(mapping, key)
        guard let name = self.string(mapping, fileKey) else { return inline }
        guard inline == nil else {
            self.error(in: mapping, fileKey, "give either \(key) or \(fileKey), not both")
            return nil
        }
        var path = name
        if !name.hasPrefix("/"), let directory = self.credentialsDirectory {
            path = directory + "/" + name
        }
        let bytes: [UInt8]
        do {
            bytes = try readWholeFile(path)
        } catch {
            self.error(in: mapping, fileKey, "cannot read the file: \(error)")
            return nil
        }
        var text = bytes[...]
        if text.last == 0x0A { text = text.dropLast() }
        if text.last == 0x0D { text = text.dropLast() }
        guard !text.isEmpty else {
            self.error(in: mapping, fileKey, "the file \(path) is empty")
            return nil
        }
        return String(decoding: text, as: UTF8.self)
    }
}
