import CYAML

/// A YAML document as a tree of scalars, mappings and sequences, each with the line it starts on, so
/// that configuration errors can point at the line. Read through libyaml (Yams would pull Foundation
/// into the binary).
indirect enum YAMLNode: Sendable {
    case scalar(String, line: Int, plain: Bool)
    case mapping([(key: String, keyLine: Int, value: YAMLNode)], line: Int)
    case sequence([YAMLNode], line: Int)

    var line: Int {
        switch self {
        case .scalar(_, let line, _), .mapping(_, let line), .sequence(_, let line): line
        }
    }

    /// A plain (unquoted) scalar that YAML reads as null: empty, `~`, `null`.
    var isNull: Bool {
        if case .scalar(let text, _, let plain) = self {
            return plain && (text.isEmpty || text == "~" || text == "null")
        }
        return false
    }

    var kindDescription: String {
        switch self {
        case .scalar: "a scalar"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }
}

/// A YAML syntax error, with its position.
struct YAMLError: Error, CustomStringConvertible {
    let line: Int
    let reason: String
    var description: String { "line \(self.line): \(self.reason)" }
}

/// Parses one YAML document; an empty document is an empty mapping.
func parseYAML(_ bytes: [UInt8]) throws(YAMLError) -> YAMLNode {
    var parser = yaml_parser_t()
    guard yaml_parser_initialize(&parser) == 1 else { throw YAMLError(line: 0, reason: "cannot initialise libyaml") }
    defer { yaml_parser_delete(&parser) }
    return try bytes.withUnsafeBufferPointer { (input) throws(YAMLError) -> YAMLNode in
        yaml_parser_set_input_string(&parser, input.baseAddress, input.count)
        var builder = YAMLBuilder()
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
                let context = parser.context.map { String(cString: $0) + ": " } ?? ""
                throw YAMLError(line: Int(parser.problem_mark.line) + 1, reason: context + problem)
            }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT { break }
            try builder.consume(&event)
        }
        return builder.document ?? .mapping([], line: 1)
    }
}

private struct YAMLBuilder {
    private enum Open {
        case mapping(
            [(key: String, keyLine: Int, value: YAMLNode)],
            line: Int,
            pendingKey: (String, Int)?,
            anchor: String?
        )
        case sequence([YAMLNode], line: Int, anchor: String?)
    }

    private var stack: [Open] = []
    private var anchors: [String: YAMLNode] = [:]
    private(set) var document: YAMLNode?

    mutating func consume(_ event: inout yaml_event_t) throws(YAMLError) {
        let line = Int(event.start_mark.line) + 1
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = String(
                decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length),
                as: UTF8.self
            )
            let node = YAMLNode.scalar(text, line: line, plain: scalar.plain_implicit == 1)
            if let anchor = scalar.anchor { self.anchors[String(cString: anchor)] = node }
            try self.add(node)
        case YAML_ALIAS_EVENT:
            let name = String(cString: event.data.alias.anchor)
            guard let node = self.anchors[name] else { throw YAMLError(line: line, reason: "unknown alias *\(name)") }
            try self.add(node)
        case YAML_MAPPING_START_EVENT:
            let anchor = event.data.mapping_start.anchor.map { String(cString: $0) }
            self.stack.append(.mapping([], line: line, pendingKey: nil, anchor: anchor))
        case YAML_SEQUENCE_START_EVENT:
            let anchor = event.data.sequence_start.anchor.map { String(cString: $0) }
            self.stack.append(.sequence([], line: line, anchor: anchor))
        case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
            guard let open = self.stack.popLast() else { return }
            let node: YAMLNode
            let anchor: String?
            switch open {
            case .mapping(let entries, let line, _, let a):
                node = .mapping(entries, line: line)
                anchor = a
            case .sequence(let items, let line, let a):
                node = .sequence(items, line: line)
                anchor = a
            }
            if let anchor { self.anchors[anchor] = node }
            try self.add(node)
        default:
            break
        }
    }

    private mutating func add(_ node: YAMLNode) throws(YAMLError) {
        guard let top = self.stack.popLast() else {
            self.document = node
            return
        }
        switch top {
        case .sequence(var items, let line, let anchor):
            items.append(node)
            self.stack.append(.sequence(items, line: line, anchor: anchor))
        case .mapping(var entries, let line, let pendingKey, let anchor):
            if let (key, keyLine) = pendingKey {
                if entries.contains(where: { $0.key == key }) {
                    throw YAMLError(line: keyLine, reason: "duplicate key \"\(key)\"")
                }
                entries.append((key: key, keyLine: keyLine, value: node))
                self.stack.append(.mapping(entries, line: line, pendingKey: nil, anchor: anchor))
            } else {
                guard case .scalar(let key, let keyLine, _) = node else {
                    throw YAMLError(line: node.line, reason: "mapping keys must be scalars")
                }
                self.stack.append(.mapping(entries, line: line, pendingKey: (key, keyLine), anchor: anchor))
            }
        }
    }
}
