import VigilCore
import VigilJournal

/// Reads the configuration file's `journal:` section into a ``JournalConfiguration``.
///
/// ```yaml
/// journal:
///   namespace: NAME            # or directory: PATH, or files: [PATH, …]; default: the local journal
///   units: [nginx.service]     # _SYSTEMD_UNIT matches ("nginx" means nginx.service)
///   identifiers: [sshd]        # SYSLOG_IDENTIFIER matches
///   priority: warning          # at least this severe: emerg … debug, or 0 … 7
///   matches: ["_TRANSPORT=kernel"]
///   read_from: head            # where to start without a saved cursor: head or tail
///   cursor_file: /var/lib/vigil/journal.cursor
///   tag: journal.${_SYSTEMD_UNIT}
///   tag_default: unknown
///   lowercase: false
///   strip_underscores: false
///   include_fields: []
///   exclude_fields: [_CMDLINE]
///   max_fields: 1024
///   batch: {max_entries: 5000, max_bytes: 1024000, max_wait: 1s}
///   window: 4
///   commit_interval: 1s
///   shutdown_grace: 5s
///   dry_run: false
/// ```
///
/// Filters combine as journalctl's: values of the same field are alternatives, different fields must
/// all match (see ``JournalConfiguration``).
func parseJournalSection(_ node: YAMLNode?, parser: SectionParser) -> (JournalConfiguration, dryRun: Bool) {
    var configuration = JournalConfiguration()
    guard let node, let section = parser.mapping(node, path: "journal") else { return (configuration, false) }

    let namespace = parser.string(section, "namespace")
    let directory = parser.string(section, "directory")
    let files = parser.strings(section, "files")
    let sources = [namespace != nil, directory != nil, files != nil].filter { $0 }.count
    if sources > 1 {
        parser.error(in: section, "namespace", "give at most one of namespace, directory and files")
    } else if let namespace {
        if isValidNamespace(namespace) {
            configuration.source = .namespace(namespace)
        } else {
            parser.error(
                in: section,
                "namespace",
                "\"\(namespace)\" is not a journal namespace name (A-Z, a-z, 0-9, _, -, .)"
            )
        }
    } else if let directory {
        configuration.source = .directory(directory)
    } else if let files {
        if files.isEmpty {
            parser.error(in: section, "files", "expects at least one journal file")
        } else {
            configuration.source = .files(files)
        }
    }

    if let units = parser.strings(section, "units") {
        configuration.units = units.map { $0.contains(".") ? $0 : $0 + ".service" }
        if units.contains(where: \.isEmpty) { parser.error(in: section, "units", "unit names must not be empty") }
    }
    if let identifiers = parser.strings(section, "identifiers") { configuration.identifiers = identifiers }
    if let priority = parser.string(section, "priority") {
        if let value = Int(priority), (0...7).contains(value) {
            configuration.maxPriority = value
        } else if let value = JournalConfiguration.priorityNames.firstIndex(of: priority.lowercased()) {
            configuration.maxPriority = value
        } else {
            parser.error(
                in: section,
                "priority",
                "expects 0 to 7 or one of \(JournalConfiguration.priorityNames.joined(separator: ", ")), got \"\(priority)\""
            )
        }
    }
    if let matches = parser.strings(section, "matches") {
        for match in matches {
            let name = match.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            guard match.contains("="), JournalConfiguration.isValidFieldName(name) else {
                parser.error(
                    in: section,
                    "matches",
                    "\"\(match)\" is not FIELD=value with a journal field name (A-Z, 0-9, _)"
                )
                continue
            }
            configuration.matches.append(match)
        }
    }
    if let start = parser.choice(section, "read_from", ["head", "tail"]) {
        configuration.startPosition = JournalConfiguration.StartPosition(rawValue: start) ?? .head
    }
    if let cursorFile = parser.string(section, "cursor_file") {
        if cursorFile.isEmpty || cursorFile.hasSuffix("/") {
            parser.error(in: section, "cursor_file", "expects the path of a file")
        } else {
            configuration.cursorFile = cursorFile
        }
    }

    if let tagDefault = parser.string(section, "tag_default") { configuration.tagDefault = tagDefault }
    if let tag = parser.string(section, "tag") {
        do {
            _ = try TagTemplate(tag, defaultValue: configuration.tagDefault)
            if tag.isEmpty {
                parser.error(in: section, "tag", "must not be empty")
            } else {
                configuration.tag = tag
            }
        } catch {
            parser.error(in: section, "tag", error.description)
        }
    }
    if let lowercase = parser.bool(section, "lowercase") { configuration.record.lowercase = lowercase }
    if let strip = parser.bool(section, "strip_underscores") { configuration.record.stripUnderscores = strip }
    for key in ["include_fields", "exclude_fields"] {
        guard let names = parser.strings(section, key) else { continue }
        for name in names where !JournalConfiguration.isValidFieldName(name) {
            parser.error(in: section, key, "\"\(name)\" is not a journal field name (A-Z, 0-9, _)")
        }
        if key == "include_fields" {
            configuration.record.includeFields = names
        } else {
            configuration.record.excludeFields = names
        }
    }
    if let maxFields = parser.integer(section, "max_fields", in: 1...65536) {
        configuration.record.maxFields = maxFields
    }

    if let batch = parser.child(section, "batch") {
        if let maxEntries = parser.integer(batch, "max_entries", in: 1...1_000_000) {
            configuration.batching.maxEntries = maxEntries
        }
        if let maxBytes = parser.integer(batch, "max_bytes", in: 1024...(256 << 20)) {
            configuration.batching.maxBytes = maxBytes
        }
        if let maxWait = parser.duration(batch, "max_wait") { configuration.batching.maxWait = maxWait }
        parser.finish(batch)
    }
    if let window = parser.integer(section, "window", in: 1...1024) { configuration.window = window }
    if let interval = parser.duration(section, "commit_interval") { configuration.commitInterval = interval }
    if let grace = parser.duration(section, "shutdown_grace") { configuration.shutdownGrace = grace }
    let dryRun = parser.bool(section, "dry_run") ?? false
    parser.finish(section)
    return (configuration, dryRun)
}

/// journald namespace names: letters, digits, `_`, `-` and `.`, not `.` or `..`, at most 64 bytes.
private func isValidNamespace(_ name: String) -> Bool {
    guard !name.isEmpty, name.utf8.count <= 64, name != ".", name != ".." else { return false }
    return name.utf8.allSatisfy { byte in
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }
}
