/// The type of a metric family, as declared on its `# TYPE` line.
public enum MetricType: Sendable {
    case counter
    case gauge
    /// node_exporter exposes netstat, vmstat and a few others untyped; kept for dashboard parity.
    case untyped
    case histogram
    /// Quantiles plus `_sum` and `_count` (textfile metrics keep the type their producer declared).
    case summary
}

/// The exposition formats vigil serves, chosen per request from the `Accept` header.
public enum ExpositionFormat: Sendable, Equatable {
    /// Prometheus text format 0.0.4.
    case text
    /// OpenMetrics text format 1.0.0.
    case openMetrics

    public var contentType: String {
        switch self {
        case .text: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// Picks the format a scraper asked for: OpenMetrics only when its `Accept` header names it
    /// without refusing it (`q=0`), the classic text format otherwise.
    public static func negotiate(accept: String?) -> ExpositionFormat {
        guard let accept else { return .text }
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";")
            guard let mediaType = parts.first, mediaType.trimmingSpaces() == "application/openmetrics-text" else {
                continue
            }
            let refused = parts.dropFirst().contains { parameter in
                let p = parameter.trimmingSpaces()
                return p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            }
            if !refused { return .openMetrics }
        }
        return .text
    }
}

/// A value that can be written as a label value, escaped as the exposition formats require.
public protocol LabelValue {
    func appendEscapedLabelValue(to bytes: inout [UInt8])
}

/// Writes metric families straight into a byte buffer in the Prometheus text or OpenMetrics format.
///
/// A collector declares a family, then writes its samples:
///
///     writer.family("node_load1", help: "1m load average.", type: .gauge)
///     writer.sample(0.42)
///     writer.family("node_cpu_seconds_total", help: "…", type: .counter)
///     writer.sample(123.4, ("cpu", "0"), ("mode", "user"))
///
/// Labels are given as (name, value) pairs; nothing is collected into intermediate arrays.
public struct MetricWriter {
    public let format: ExpositionFormat
    // Internal but inlinable: `sample` is generic over its labels and must be specialised in the
    // collectors' module, or every call looks up tuple metadata at run time.
    @usableFromInline internal var storage: [UInt8]
    /// What has been written so far.
    public var bytes: [UInt8] { self.storage }
    /// How many bytes have been written so far.
    public var count: Int { self.storage.count }
    /// Families left to be written while the response is sent; they follow ``bytes``.
    public private(set) var streamed: (any StreamedFamilies)?
    /// The current family's name, followed by the sample-name suffix being written.
    @usableFromInline internal var name: [UInt8] = []

    /// - Parameter buffer: storage to write into, emptied first. It is taken over, not copied: a
    ///   buffer still referenced elsewhere would be emptied into new storage of its capacity.
    public init(format: ExpositionFormat, reusing buffer: consuming [UInt8] = []) {
        self.format = format
        buffer.removeAll(keepingCapacity: true)
        self.storage = buffer
        self.name.reserveCapacity(64)
    }

    /// Hands the buffer back (for reuse) and leaves the writer empty.
    public mutating func takeBytes() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &self.storage)
        return taken
    }

    /// Empties the buffer, keeping its storage and the family being written: a streamed family goes on
    /// in the next chunk.
    public mutating func removeAll() {
        self.storage.removeAll(keepingCapacity: true)
    }

    /// Leaves `families` to be written while the response is sent, after everything written so far:
    /// the last thing a collector writes.
    public mutating func writeWhileSending(_ families: some StreamedFamilies) {
        precondition(self.streamed == nil, "one StreamedFamilies per writer")
        self.streamed = families
    }

    /// Hands over the families left to be written while sending (``writeWhileSending(_:)``).
    public mutating func takeStreamed() -> (any StreamedFamilies)? {
        defer { self.streamed = nil }
        return self.streamed
    }

    /// Appends bytes that are already valid exposition text (another writer's output).
    public mutating func append(contentsOf other: [UInt8]) {
        self.storage.append(contentsOf: other)
    }

    /// Starts a family: writes its `# HELP` and `# TYPE` lines.
    ///
    /// In OpenMetrics a counter's family name carries no `_total` (its samples do); a counter whose
    /// name does not end in `_total` cannot be expressed there and is declared `unknown`.
    public mutating func family(_ familyName: String, help: String, type: MetricType) {
        self.name.removeAll(keepingCapacity: true)
        appendUTF8(familyName, to: &self.name)
        writeHeader(name: self.name, help: help, type: type, format: self.format, to: &self.storage)
    }

    /// Starts a family whose header was rendered once (see ``MetricFamily``): the cheap path for
    /// families written on every scrape.
    public mutating func family(_ family: MetricFamily) {
        self.name = family.name
        self.storage.append(contentsOf: self.format == .text ? family.textHeader : family.openMetricsHeader)
    }

    /// Writes a family whose only sample has no labels (a `/proc/meminfo` field): its header and
    /// `name value`. The bytes are copied from the family without holding on to it, as statistics
    /// files write hundreds of such families per scrape.
    public mutating func family(_ family: MetricFamily, onlySample value: Double) {
        // A sample written next without its own family would otherwise take this one's name.
        self.name.removeAll(keepingCapacity: true)
        if self.format == .text {
            family.textHeader.withUnsafeBufferPointer { self.storage.append(contentsOf: $0) }
        } else {
            family.openMetricsHeader.withUnsafeBufferPointer { self.storage.append(contentsOf: $0) }
        }
        family.name.withUnsafeBufferPointer { self.storage.append(contentsOf: $0) }
        self.storage.append(UInt8(ascii: " "))
        appendFloat(value, to: &self.storage)
        self.storage.append(UInt8(ascii: "\n"))
    }

    // One overload per number of labels rather than a parameter pack: a pack's tuple element types are
    // looked up at run time even in specialised code, which cost a locked metadata lookup per sample.
    // Only the counts some collector uses exist (0–7, 9 and 12).

    /// Writes one sample of the current family (or, with `suffix`, of its `_bucket`/`_sum`/`_count`).
    @inlinable
    public mutating func sample(suffix: StaticString = "", _ value: Double) {
        self.beginSample(suffix)
        self.endSample(value, labelled: false)
    }

    @inlinable
    public mutating func sample<A: LabelValue>(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<A: LabelValue, B: LabelValue>(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.appendLabel(l1, first: false)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<A: LabelValue, B: LabelValue, C: LabelValue>(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B),
        _ l2: (StaticString, C)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.appendLabel(l1, first: false)
        self.appendLabel(l2, first: false)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<A: LabelValue, B: LabelValue, C: LabelValue, D: LabelValue>(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B),
        _ l2: (StaticString, C),
        _ l3: (StaticString, D)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.appendLabel(l1, first: false)
        self.appendLabel(l2, first: false)
        self.appendLabel(l3, first: false)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<A: LabelValue, B: LabelValue, C: LabelValue, D: LabelValue, E: LabelValue>(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B),
        _ l2: (StaticString, C),
        _ l3: (StaticString, D),
        _ l4: (StaticString, E)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.appendLabel(l1, first: false)
        self.appendLabel(l2, first: false)
        self.appendLabel(l3, first: false)
        self.appendLabel(l4, first: false)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<
        A: LabelValue,
        B: LabelValue,
        C: LabelValue,
        D: LabelValue,
        E: LabelValue,
        F: LabelValue
    >(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B),
        _ l2: (StaticString, C),
        _ l3: (StaticString, D),
        _ l4: (StaticString, E),
        _ l5: (StaticString, F)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.appendLabel(l1, first: false)
        self.appendLabel(l2, first: false)
        self.appendLabel(l3, first: false)
        self.appendLabel(l4, first: false)
        self.appendLabel(l5, first: false)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<
        A: LabelValue,
        B: LabelValue,
        C: LabelValue,
        D: LabelValue,
        E: LabelValue,
        F: LabelValue,
        G: LabelValue
    >(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B),
        _ l2: (StaticString, C),
        _ l3: (StaticString, D),
        _ l4: (StaticString, E),
        _ l5: (StaticString, F),
        _ l6: (StaticString, G)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.appendLabel(l1, first: false)
        self.appendLabel(l2, first: false)
        self.appendLabel(l3, first: false)
        self.appendLabel(l4, first: false)
        self.appendLabel(l5, first: false)
        self.appendLabel(l6, first: false)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<
        A: LabelValue,
        B: LabelValue,
        C: LabelValue,
        D: LabelValue,
        E: LabelValue,
        F: LabelValue,
        G: LabelValue,
        H: LabelValue,
        I: LabelValue
    >(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B),
        _ l2: (StaticString, C),
        _ l3: (StaticString, D),
        _ l4: (StaticString, E),
        _ l5: (StaticString, F),
        _ l6: (StaticString, G),
        _ l7: (StaticString, H),
        _ l8: (StaticString, I)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.appendLabel(l1, first: false)
        self.appendLabel(l2, first: false)
        self.appendLabel(l3, first: false)
        self.appendLabel(l4, first: false)
        self.appendLabel(l5, first: false)
        self.appendLabel(l6, first: false)
        self.appendLabel(l7, first: false)
        self.appendLabel(l8, first: false)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<
        A: LabelValue,
        B: LabelValue,
        C: LabelValue,
        D: LabelValue,
        E: LabelValue,
        F: LabelValue,
        G: LabelValue,
        H: LabelValue,
        I: LabelValue,
        J: LabelValue,
        K: LabelValue,
        L: LabelValue
    >(
        suffix: StaticString = "",
        _ value: Double,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B),
        _ l2: (StaticString, C),
        _ l3: (StaticString, D),
        _ l4: (StaticString, E),
        _ l5: (StaticString, F),
        _ l6: (StaticString, G),
        _ l7: (StaticString, H),
        _ l8: (StaticString, I),
        _ l9: (StaticString, J),
        _ l10: (StaticString, K),
        _ l11: (StaticString, L)
    ) {
        self.beginSample(suffix)
        self.appendLabel(l0, first: true)
        self.appendLabel(l1, first: false)
        self.appendLabel(l2, first: false)
        self.appendLabel(l3, first: false)
        self.appendLabel(l4, first: false)
        self.appendLabel(l5, first: false)
        self.appendLabel(l6, first: false)
        self.appendLabel(l7, first: false)
        self.appendLabel(l8, first: false)
        self.appendLabel(l9, first: false)
        self.appendLabel(l10, first: false)
        self.appendLabel(l11, first: false)
        self.endSample(value, labelled: true)
    }

    /// Writes one sample whose first labels were rendered once for many samples (a container's `id`,
    /// `name`, `image`…), followed by up to four more (the counts the collectors use).
    @inlinable
    public mutating func sample(_ value: Double, _ rendered: RenderedLabels) {
        self.beginSample("")
        self.appendRendered(rendered)
        self.endSample(value, labelled: !rendered.bytes.isEmpty)
    }

    @inlinable
    public mutating func sample<A: LabelValue>(_ value: Double, _ rendered: RenderedLabels, _ l0: (StaticString, A)) {
        self.beginSample("")
        self.appendRendered(rendered)
        self.appendLabel(l0, first: rendered.bytes.isEmpty)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<A: LabelValue, B: LabelValue>(
        _ value: Double,
        _ rendered: RenderedLabels,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B)
    ) {
        self.beginSample("")
        self.appendRendered(rendered)
        self.appendLabel(l0, first: rendered.bytes.isEmpty)
        self.appendLabel(l1, first: false)
        self.endSample(value, labelled: true)
    }

    @inlinable
    public mutating func sample<A: LabelValue, B: LabelValue, C: LabelValue, D: LabelValue>(
        _ value: Double,
        _ rendered: RenderedLabels,
        _ l0: (StaticString, A),
        _ l1: (StaticString, B),
        _ l2: (StaticString, C),
        _ l3: (StaticString, D)
    ) {
        self.beginSample("")
        self.appendRendered(rendered)
        self.appendLabel(l0, first: rendered.bytes.isEmpty)
        self.appendLabel(l1, first: false)
        self.appendLabel(l2, first: false)
        self.appendLabel(l3, first: false)
        self.endSample(value, labelled: true)
    }

    // Arrays are appended through their buffers: appending one array to another retains and
    // releases the source's storage, once per sample.
    @inlinable
    mutating func beginSample(_ suffix: StaticString) {
        self.name.withUnsafeBufferPointer { self.storage.append(contentsOf: $0) }
        suffix.withUTF8Buffer { self.storage.append(contentsOf: $0) }
    }

    @inlinable
    mutating func appendRendered(_ rendered: RenderedLabels) {
        guard !rendered.bytes.isEmpty else { return }
        self.storage.append(UInt8(ascii: "{"))
        rendered.bytes.withUnsafeBufferPointer { self.storage.append(contentsOf: $0) }
    }

    @inlinable
    mutating func appendLabel<V: LabelValue>(_ label: (StaticString, V), first: Bool) {
        self.storage.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
        label.0.withUTF8Buffer { self.storage.append(contentsOf: $0) }
        self.storage.append(UInt8(ascii: "="))
        self.storage.append(UInt8(ascii: "\""))
        label.1.appendEscapedLabelValue(to: &self.storage)
        self.storage.append(UInt8(ascii: "\""))
    }

    @inlinable
    mutating func endSample(_ value: Double, labelled: Bool) {
        if labelled { self.storage.append(UInt8(ascii: "}")) }
        self.storage.append(UInt8(ascii: " "))
        appendFloat(value, to: &self.storage)
        self.storage.append(UInt8(ascii: "\n"))
    }

    /// Writes a sample whose labels are only known at run time (textfile metrics, container labels),
    /// named the family name plus `suffix`.
    public mutating func sample(
        suffix: StaticString = "",
        _ value: Double,
        dynamicLabels: [(name: String, value: String)]
    ) {
        self.beginSample(suffix)
        for (index, label) in dynamicLabels.enumerated() {
            self.storage.append(index == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
            appendUTF8(label.name, to: &self.storage)
            self.storage.append(UInt8(ascii: "="))
            self.storage.append(UInt8(ascii: "\""))
            label.value.appendEscapedLabelValue(to: &self.storage)
            self.storage.append(UInt8(ascii: "\""))
        }
        if !dynamicLabels.isEmpty { self.storage.append(UInt8(ascii: "}")) }
        self.storage.append(UInt8(ascii: " "))
        appendFloat(value, to: &self.storage)
        self.storage.append(UInt8(ascii: "\n"))
    }

    /// Ends the exposition: OpenMetrics requires a final `# EOF` line.
    public mutating func finish() {
        if self.format == .openMetrics {
            self.storage.append(contentsOf: "# EOF\n".utf8)
        }
    }
}

/// Label pairs escaped once and written before the other labels of many samples, so that a container's
/// `id`, `name` and `image` are not escaped again for each of its series.
public struct RenderedLabels: Sendable, Equatable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Adds `name="value"`.
    public mutating func append(_ name: StaticString, _ value: some LabelValue) {
        if !self.bytes.isEmpty { self.bytes.append(UInt8(ascii: ",")) }
        name.withUTF8Buffer { self.bytes.append(contentsOf: $0) }
        self.bytes.append(UInt8(ascii: "="))
        self.bytes.append(UInt8(ascii: "\""))
        value.appendEscapedLabelValue(to: &self.bytes)
        self.bytes.append(UInt8(ascii: "\""))
    }
}

/// Appends label-value bytes, escaping `\\`, `"` and newline; runs without them are copied in bulk.
func appendEscapedLabelValue(_ utf8: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) {
    var runStart = 0
    for index in 0..<utf8.count {
        let byte = utf8[index]
        guard byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\n") else { continue }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
        bytes.append(UInt8(ascii: "\\"))
        bytes.append(byte == UInt8(ascii: "\n") ? UInt8(ascii: "n") : byte)
        runStart = index + 1
    }
    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
}

/// Appends a string's UTF-8 without going through its generic `utf8` view.
@inline(__always)
func appendUTF8(_ string: String, to bytes: inout [UInt8]) {
    if string.utf8.withContiguousStorageIfAvailable({ bytes.append(contentsOf: $0) }) == nil {
        bytes.append(contentsOf: string.utf8)
    }
}

extension String: LabelValue {
    public func appendEscapedLabelValue(to bytes: inout [UInt8]) {
        if self.utf8.withContiguousStorageIfAvailable({ VigilCore.appendEscapedLabelValue($0, to: &bytes) }) == nil {
            var copy = self
            copy.withUTF8 { VigilCore.appendEscapedLabelValue($0, to: &bytes) }
        }
    }
}

extension Substring: LabelValue {
    public func appendEscapedLabelValue(to bytes: inout [UInt8]) {
        String(self).appendEscapedLabelValue(to: &bytes)
    }
}

extension ArraySlice: LabelValue where Element == UInt8 {
    /// Bytes read from a file; invalid UTF-8 is replaced so that the output stays valid text.
    public func appendEscapedLabelValue(to bytes: inout [UInt8]) {
        if self.isValidUTF8 {
            self.withUnsafeBufferPointer { VigilCore.appendEscapedLabelValue($0, to: &bytes) }
        } else {
            String(decoding: self, as: UTF8.self).appendEscapedLabelValue(to: &bytes)
        }
    }
}

extension Int: LabelValue {
    public func appendEscapedLabelValue(to bytes: inout [UInt8]) {
        appendDecimal(Int64(self), to: &bytes)
    }
}

extension ArraySlice where Element == UInt8 {
    var isValidUTF8: Bool {
        var ascii = true
        for byte in self where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii { return true }
        var iterator = self.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}

extension Substring {
    /// The text without leading and trailing spaces and tabs.
    public func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}

/// A metric family's name, HELP and TYPE, rendered once into the header bytes of both formats.
///
/// Families written on every scrape should be built once (`static let`, or cached per field name for
/// families named after file contents) and written with ``MetricWriter/family(_:)``.
public struct MetricFamily: Sendable {
    public let type: MetricType
    let name: [UInt8]
    let textHeader: [UInt8]
    let openMetricsHeader: [UInt8]

    public init(_ name: String, help: String, type: MetricType) {
        var nameBytes: [UInt8] = []
        appendUTF8(name, to: &nameBytes)
        self.type = type
        self.name = nameBytes
        var text: [UInt8] = []
        writeHeader(name: nameBytes, help: help, type: type, format: .text, to: &text)
        self.textHeader = text
        var openMetrics: [UInt8] = []
        writeHeader(name: nameBytes, help: help, type: type, format: .openMetrics, to: &openMetrics)
        self.openMetricsHeader = openMetrics
    }

    /// The family name.
    public var nameString: String { String(decoding: self.name, as: UTF8.self) }
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
private func writeHeader(
    name: [UInt8],
    help: String,
    type: MetricType,
    format: ExpositionFormat,
    to bytes: inout [UInt8]
) {
    var declaredName = name[...]
    let declaredType: StaticString
    switch (type, format) {
    case (.counter, .text): declaredType = "counter"
    case (.counter, .openMetrics):
        if name.count > 6 && name.suffix(6).elementsEqual("_total".utf8) {
            declaredName = name.dropLast(6)
            declaredType = "counter"
        } else {
            declaredType = "unknown"
        }
    case (.gauge, _): declaredType = "gauge"
    case (.untyped, .text): declaredType = "untyped"
    case (.untyped, .openMetrics): declaredType = "unknown"
    case (.histogram, _): declaredType = "histogram"
    case (.summary, _): declaredType = "summary"
    }
    appendStatic("# HELP ", to: &bytes)
    bytes.append(contentsOf: declaredName)
    bytes.append(UInt8(ascii: " "))
    appendEscapedHelp(help, format: format, to: &bytes)
    appendStatic("\n# TYPE ", to: &bytes)
    bytes.append(contentsOf: declaredName)
    bytes.append(UInt8(ascii: " "))
    appendStatic(declaredType, to: &bytes)
    bytes.append(UInt8(ascii: "\n"))
}

@inline(__always)
private func appendStatic(_ text: StaticString, to bytes: inout [UInt8]) {
    text.withUTF8Buffer { bytes.append(contentsOf: $0) }
}

/// HELP escapes `\\` and newline (OpenMetrics also `"`); runs without them are copied in bulk.
private func appendEscapedHelp(_ help: String, format: ExpositionFormat, to bytes: inout [UInt8]) {
    var help = help
    help.withUTF8 { utf8 in
        var runStart = 0
        for index in 0..<utf8.count {
            let byte = utf8[index]
            let escaped: UInt8
            switch byte {
            case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
            case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
            case UInt8(ascii: "\"") where format == .openMetrics: escaped = UInt8(ascii: "\"")
            default: continue
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(escaped)
            runStart = index + 1
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
    }
}
