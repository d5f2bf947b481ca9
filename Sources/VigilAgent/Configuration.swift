public import VigilCore

#if canImport(Glibc)
import Glibc
#endif

/// Several configuration mistakes, reported together.
public struct ConfigurationErrors: Error, CustomStringConvertible {
    public let errors: [ConfigurationError]
    public var description: String { self.errors.map(\.description).joined(separator: "\n") }
}

/// What the command line asks vigil to do.
public enum Invocation {
    case run(LoadedConfiguration)
    case checkConfig(LoadedConfiguration)
    case help(String)
    case version(String)
}

/// The effective configuration: defaults, then the configuration file, then the command line.
public struct LoadedConfiguration: Sendable {
    public var settings: Settings
    /// Notes for the log at start-up (node_exporter flags accepted but not implemented, …).
    public var warnings: [String] = []
    /// The configuration file, if one was given.
    public var file: String?
    /// Top-level sections of the file that other components read (`journal`, `forward`).
    var sections: [String: YAMLNode] = [:]
}

/// A setting given on the command line before its value is applied.
private struct Assignment {
    let name: String
    let value: OptionValue
}

/// Reads vigil's command line (node_exporter's flag syntax: `--name=value`, `--name value`, `--flag`,
/// `--no-flag`, repeatable lists) and configuration file into one ``LoadedConfiguration``.
public struct ConfigurationLoader {
    /// Top-level file sections that belong to other components and are not flag-shaped.
    static let sectionNames: Set<String> = ["journal", "forward"]

    let specs: [OptionSpec]
    private let specsByName: [String: OptionSpec]

    public init() {
        self.init(specs: AgentOption.allSpecs)
    }

    init(specs: [OptionSpec]) {
        self.specs = specs
        var byName: [String: OptionSpec] = [:]
        for spec in specs {
            byName[spec.name] = spec
            for alias in spec.aliases { byName[alias] = spec }
        }
        self.specsByName = byName
    }

    /// Interprets the arguments (without the program name).
    public func invocation(arguments: [String]) throws(ConfigurationErrors) -> Invocation {
        var arguments = arguments[...]
        var checkConfigFile: String?
        if arguments.first == "check-config" {
            arguments = arguments.dropFirst()
            guard let file = arguments.first, !file.hasPrefix("-") else {
                throw ConfigurationErrors(errors: [
                    ConfigurationError(
                        origin: .commandLine,
                        key: "check-config",
                        reason: "expects the configuration file to check: vigil check-config FILE"
                    )
                ])
            }
            checkConfigFile = file
            arguments = arguments.dropFirst()
        }
        var assignments: [Assignment] = []
        var warnings: [String] = []
        var errors: [ConfigurationError] = []
        while let argument = arguments.popFirst() {
            switch argument {
            case "-h", "--help", "--help-long", "--help-man": return .help(self.helpText())
            case "--version": return .version(versionText)
            default: break
            }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                errors.append(ConfigurationError(origin: .commandLine, key: argument, reason: "unexpected argument"))
                continue
            }
            let flag = argument.dropFirst(2)
            let name: String
            var inlineValue: String?
            if let equals = flag.firstIndex(of: "=") {
                name = String(flag[..<equals])
                inlineValue = String(flag[flag.index(after: equals)...])
            } else {
                name = String(flag)
            }
            do {
                if let assignment = try self.parseFlag(
                    name: name,
                    inlineValue: inlineValue,
                    arguments: &arguments,
                    warnings: &warnings
                ) {
                    assignments.append(assignment)
                }
            } catch {
                errors.append(error)
            }
        }
        if let file = checkConfigFile {
            assignments.append(Assignment(name: AgentOption.configFile, value: .string(file)))
        }
        guard errors.isEmpty else { throw ConfigurationErrors(errors: errors) }
        var configuration = try self.load(commandLine: assignments)
        configuration.warnings.insert(contentsOf: warnings, at: 0)
        return checkConfigFile == nil ? .run(configuration) : .checkConfig(configuration)
    }

    private func parseFlag(
        name: String,
        inlineValue: String?,
        arguments: inout ArraySlice<String>,
        warnings: inout [String]
    ) throws(ConfigurationError) -> Assignment? {
        if name.hasPrefix("no-"), let spec = self.specsByName[String(name.dropFirst(3))], case .bool = spec.defaultValue
        {
            guard inlineValue == nil else {
                throw ConfigurationError(origin: .commandLine, key: name, reason: "takes no value")
            }
            return Assignment(name: spec.name, value: .bool(false))
        }
        if let spec = self.specsByName[name] {
            if case .bool = spec.defaultValue {
                guard let inlineValue else { return Assignment(name: spec.name, value: .bool(true)) }
                guard let value = parseBool(inlineValue) else {
                    throw ConfigurationError(
                        origin: .commandLine,
                        key: name,
                        reason: "expects true or false, got \"\(inlineValue)\""
                    )
                }
                return Assignment(name: spec.name, value: .bool(value))
            }
            guard let text = inlineValue ?? arguments.popFirst() else {
                throw ConfigurationError(origin: .commandLine, key: name, reason: "expects a value")
            }
            let value = try convertText(text, like: spec.defaultValue) { reason in
                ConfigurationError(origin: .commandLine, key: name, reason: reason)
            }
            return Assignment(name: spec.name, value: value)
        }
        // node_exporter flags vigil does not implement are accepted, so that its units keep working.
        let collectorName =
            name.hasPrefix("no-collector.")
            ? String(name.dropFirst(13)) : name.hasPrefix("collector.") ? String(name.dropFirst(10)) : nil
        if let collectorName, NodeExporterCompatibility.collectors.contains(collectorName) {
            if !name.hasPrefix("no-") {
                warnings.append("vigil has no \(collectorName) collector; --\(name) is ignored")
            }
            return nil
        }
        let plainName = name.hasPrefix("no-") ? String(name.dropFirst(3)) : name
        if NodeExporterCompatibility.boolFlags.contains(plainName) {
            warnings.append("--\(name) is a node_exporter flag vigil does not implement; ignored")
            return nil
        }
        if NodeExporterCompatibility.valueFlags.contains(name) {
            if inlineValue == nil { _ = arguments.popFirst() }
            warnings.append("--\(name) is a node_exporter flag vigil does not implement; ignored")
            return nil
        }
        throw ConfigurationError(origin: .commandLine, key: name, reason: "unknown flag\(self.suggestion(for: name))")
    }

    /// Applies the configuration file (named by `config.file` among the assignments) and then the
    /// command line to the defaults.
    private func load(commandLine: [Assignment]) throws(ConfigurationErrors) -> LoadedConfiguration {
        var settings = Settings(specs: self.specs)
        var errors: [ConfigurationError] = []
        var configuration = LoadedConfiguration(settings: settings)
        let fileName = commandLine.last { $0.name == AgentOption.configFile }.map { assignment -> String in
            if case .string(let file) = assignment.value { return file }
            return ""
        }
        if let fileName, !fileName.isEmpty {
            configuration.file = fileName
            do {
                let bytes = try readWholeFile(fileName)
                let document = try parseYAML(bytes)
                self.apply(document, file: fileName, to: &settings, sections: &configuration.sections, errors: &errors)
            } catch let error as FileError {
                errors.append(
                    ConfigurationError(
                        origin: .file(path: fileName, line: 0),
                        key: "config.file",
                        reason: "cannot read the file: \(error)"
                    )
                )
            } catch let error as YAMLError {
                errors.append(
                    ConfigurationError(
                        origin: .file(path: fileName, line: error.line),
                        key: "(syntax)",
                        reason: error.reason
                    )
                )
            } catch {
                errors.append(
                    ConfigurationError(origin: .file(path: fileName, line: 0), key: "config.file", reason: "\(error)")
                )
            }
        }
        // Repeated list flags on the command line replace the file's list; they do not extend it.
        var listsFromCommandLine: [String: [String]] = [:]
        for assignment in commandLine {
            if case .strings(let values) = assignment.value {
                listsFromCommandLine[assignment.name, default: []].append(contentsOf: values)
                settings.set(assignment.name, .strings(listsFromCommandLine[assignment.name]!), origin: .commandLine)
            } else {
                settings.set(assignment.name, assignment.value, origin: .commandLine)
            }
        }
        if settings.bool(AgentOption.disableDefaults) {
            for spec in self.specs where spec.name.hasPrefix("collector.") && isCollectorSwitch(spec) {
                if !settings.isExplicit(spec.name) { settings.set(spec.name, .bool(false), origin: .defaultValue) }
            }
        }
        errors.append(contentsOf: validateAgentSettings(settings))
        guard errors.isEmpty else { throw ConfigurationErrors(errors: errors) }
        configuration.settings = settings
        return configuration
    }

    /// Walks the file's mappings: nested keys join with dots into setting names (`web: {listen-address:
    /// …}` is `web.listen-address`); a switch that also has sub-settings is written `enabled`
    /// (`collector: {cpu: {enabled: true, …}}`).
    private func apply(
        _ document: YAMLNode,
        file: String,
        to settings: inout Settings,
        sections: inout [String: YAMLNode],
        errors: inout [ConfigurationError]
    ) {
        guard case .mapping(let entries, _) = document else {
            if !document.isNull {
                errors.append(
                    ConfigurationError(
                        origin: .file(path: file, line: document.line),
                        key: "(document)",
                        reason: "expected a mapping of settings, found \(document.kindDescription)"
                    )
                )
            }
            return
        }
        func walk(_ entries: [(key: String, keyLine: Int, value: YAMLNode)], prefix: String) {
            for entry in entries {
                var name = prefix.isEmpty ? entry.key : prefix + "." + entry.key
                if prefix.isEmpty && Self.sectionNames.contains(entry.key) {
                    sections[entry.key] = entry.value
                    continue
                }
                if entry.key == "enabled", !prefix.isEmpty, self.specsByName[prefix] != nil { name = prefix }
                let origin = SettingOrigin.file(path: file, line: entry.keyLine)
                if let spec = self.specsByName[name] {
                    if case .mapping(let children, _) = entry.value, name != prefix {
                        walk(children, prefix: name)
                        continue
                    }
                    if name == AgentOption.configFile {
                        errors.append(
                            ConfigurationError(
                                origin: origin,
                                key: name,
                                reason: "can only be given on the command line"
                            )
                        )
                        continue
                    }
                    do {
                        let value = try self.convert(entry.value, like: spec.defaultValue) { reason in
                            ConfigurationError(origin: origin, key: name, reason: reason)
                        }
                        settings.set(spec.name, value, origin: origin)
                    } catch {
                        errors.append(error)
                    }
                    continue
                }
                if case .mapping(let children, _) = entry.value, self.isPrefix(name) {
                    walk(children, prefix: name)
                    continue
                }
                errors.append(
                    ConfigurationError(origin: origin, key: name, reason: "unknown key\(self.suggestion(for: name))")
                )
            }
        }
        walk(entries, prefix: "")
    }

    private func isPrefix(_ name: String) -> Bool {
        let dotted = name + "."
        return self.specs.contains { $0.name.hasPrefix(dotted) }
    }

    private func convert(
        _ node: YAMLNode,
        like defaultValue: OptionValue,
        error: (String) -> ConfigurationError
    ) throws(ConfigurationError) -> OptionValue {
        switch (node, defaultValue) {
        case (.sequence(let items, _), .strings):
            var values: [String] = []
            for item in items {
                guard case .scalar(let text, _, _) = item else {
                    throw error("expects a list of strings, found \(item.kindDescription) in it")
                }
                values.append(text)
            }
            return .strings(values)
        case (.scalar(let text, _, _), _):
            return try convertText(text, like: defaultValue, error: error)
        default:
            throw error("expects \(defaultValue.kindDescription), found \(node.kindDescription)")
        }
    }

    private func suggestion(for name: String) -> String {
        var best: (name: String, distance: Int)?
        for spec in self.specs {
            let distance = editDistance(name, spec.name)
            if distance <= max(2, name.count / 8), distance < (best?.distance ?? .max) { best = (spec.name, distance) }
        }
        return best.map { "; did you mean \($0.name)?" } ?? ""
    }

    /// The `--help` text: every flag with its default and help.
    func helpText() -> String {
        var text = """
            usage: vigil [<flags>]
                   vigil check-config FILE

            vigil serves host, container and systemd unit metrics on one Prometheus endpoint and forwards
            the journal to Fluentd forward-protocol targets. Flags are node_exporter's; every flag can also
            be set in the YAML file given with --config.file (nested keys: web: {listen-address: [...]}).

            Flags:
              -h, --help     Show this help.
                  --version  Show the version.

            """
        for spec in self.specs {
            var line = "      --\(spec.name)"
            switch spec.defaultValue {
            case .bool(let value): if value { line = "      --[no-]\(spec.name)" }
            case .string(let value), .regex(let value): line += "=\"\(value)\""
            case .strings(let values):
                line += values.isEmpty ? "=..." : values.map { "=\"\($0)\"" }.joined(separator: " ")
            case .duration(let value): line += "=\(formatDuration(value))"
            case .integer(let value): line += "=\(value)"
            }
            text += line + "\n          " + spec.help + "\n"
        }
        return text
    }
}

private func isCollectorSwitch(_ spec: OptionSpec) -> Bool {
    guard case .bool = spec.defaultValue else { return false }
    return spec.name.split(separator: ".").count == 2 && spec.name != AgentOption.disableDefaults
}

/// Converts a textual value to the kind of a setting's default.
private func convertText(
    _ text: String,
    like defaultValue: OptionValue,
    error: (String) -> ConfigurationError
) throws(ConfigurationError) -> OptionValue {
    switch defaultValue {
    case .bool:
        guard let value = parseBool(text) else { throw error("expects true or false, got \"\(text)\"") }
        return .bool(value)
    case .string:
        return .string(text)
    case .strings:
        return .strings([text])
    case .regex:
        do {
            _ = try GoRegex(text)
        } catch let regexError {
            throw error("invalid regular expression \"\(text)\": \(regexError)")
        }
        return .regex(text)
    case .duration:
        guard let value = parseDuration(text) else {
            throw error("expects a duration such as 5s or 1m30s, got \"\(text)\"")
        }
        return .duration(value)
    case .integer:
        guard let value = Int(text) else { throw error("expects an integer, got \"\(text)\"") }
        return .integer(value)
    }
}

func parseBool(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "true", "yes", "on", "1": true
    case "false", "no", "off", "0": false
    default: nil
    }
}

/// Checks the agent settings whose valid values are narrower than their type.
private func validateAgentSettings(_ settings: Settings) -> [ConfigurationError] {
    var errors: [ConfigurationError] = []
    for address in settings.strings(AgentOption.listenAddress) where ListenAddress(address) == nil {
        errors.append(settings.error(AgentOption.listenAddress, "\"\(address)\" is not HOST:PORT"))
    }
    if !settings.string(AgentOption.telemetryPath).hasPrefix("/") {
        errors.append(settings.error(AgentOption.telemetryPath, "must start with /"))
    }
    if settings.integer(AgentOption.maxRequests) < 0 {
        errors.append(settings.error(AgentOption.maxRequests, "must be 0 (unlimited) or more"))
    }
    if settings.integer(AgentOption.gomaxprocs) < 0 {
        errors.append(settings.error(AgentOption.gomaxprocs, "must be 0 (where the kernel puts them) or more"))
    }
    if settings.duration(AgentOption.collectorTimeout) <= .zero {
        errors.append(settings.error(AgentOption.collectorTimeout, "must be positive"))
    }
    if LogLevelName(rawValue: settings.string(AgentOption.logLevel)) == nil {
        errors.append(settings.error(AgentOption.logLevel, "must be one of debug, info, warn, error"))
    }
    if !["logfmt", "json"].contains(settings.string(AgentOption.logFormat)) {
        errors.append(settings.error(AgentOption.logFormat, "must be logfmt or json"))
    }
    return errors
}

func formatDuration(_ duration: Duration) -> String {
    let seconds = duration.seconds
    if seconds >= 1, seconds == seconds.rounded() { return "\(Int(seconds))s" }
    return "\(Int((seconds * 1000).rounded()))ms"
}

/// Levenshtein distance, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8)
    let b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// Reads a regular file completely.
func readWholeFile(_ path: String) throws(FileError) -> [UInt8] {
    Array(try FileReader().read(path))
}
