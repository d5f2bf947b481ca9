import Synchronization
import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What each number in a set of statistics files means, for files whose text stays the same between
/// reads except for the numbers (`/proc/net/netstat`, `snmp`, `snmp6`; `sockstat`, `sockstat6`;
/// `/proc/meminfo`, `/proc/vmstat`).
///
/// Working out the families (splitting header lines, building names, matching a fields regex,
/// dropping duplicates across files) happens once, from the files' ``NumberShape`` (their text with
/// the numbers blanked out). A scrape then checks that the files still have the text the layout was
/// made from around their numbers (``NumberTemplate``) while picking the numbers out, and writes each
/// as the sample of the families the layout gives it.
struct NumberLayout: Sendable {
    /// A family with a single unlabelled sample: the number times `scale`.
    struct Family: Sendable {
        var family: MetricFamily
        var scale: Double = 1

        init(_ name: String, help: String, type: MetricType, scale: Double = 1) {
            self.family = MetricFamily(name, help: help, type: type)
            self.scale = scale
        }

        var name: String { self.family.nameString }
    }

    /// The text of the files the layout was made from, around their numbers.
    private let template: NumberTemplate
    /// The families of all numbers, number after number.
    private var all: [Family] = []
    /// Where each number's families start in `all` (and, one past the last number, where they end).
    private var starts: [Int] = [0]
    /// Problems found while working out the layout (unmatched lines, counts that differ); recorded
    /// again on every scrape that reads this shape.
    var problems: [String] = []

    /// An empty layout for `shape`, for the maker to add the families of its numbers to.
    init(shape: NumberShape) {
        self.template = shape.template
    }

    /// How many numbers the layout knows.
    var numberCount: Int { self.starts.count - 1 }

    /// Whether no number is the sample of a family.
    var hasNoFamilies: Bool { self.all.isEmpty }

    /// The families the k-th number of the files (counted across files in order) is the sample of.
    func families(ofNumber index: Int) -> ArraySlice<Family> {
        self.all[self.starts[index]..<self.starts[index + 1]]
    }

    /// Notes the families of the next number.
    mutating func add(_ families: [Family]) {
        self.all.append(contentsOf: families)
        self.starts.append(self.all.count)
    }

    /// Notes that the numbers of `line` (of a shape) are samples of no family.
    mutating func skipNumbers(in line: ArraySlice<UInt8>) {
        for field in line.fields where field.isShapeNumber { self.starts.append(self.all.count) }
    }

    /// Writes the families of every number of `files` if the files still have the text the layout was
    /// made from around their numbers; false, having written nothing, if they do not.
    func write(_ files: [ArraySlice<UInt8>], into writer: inout MetricWriter) -> Bool {
        var values: [Double] = []
        values.reserveCapacity(self.numberCount)
        guard self.template.numbers(in: files, into: &values), values.count == self.numberCount else { return false }
        // Borrowed, not copied: a copied family is three retains and releases, and there are hundreds.
        self.all.withUnsafeBufferPointer { all in
            self.starts.withUnsafeBufferPointer { starts in
                for (number, value) in values.enumerated() {
                    for index in starts[number]..<starts[number + 1] {
                        writer.family(all[index].family, onlySample: value * all[index].scale)
                    }
                }
            }
        }
        return true
    }
}

/// The text of statistics files with every number field, and the blanks before it, cut out. A later
/// read of the files has the same ``NumberShape`` when it has the same text around its numbers: a
/// scrape compares that text a piece at a time (`memcmp`) rather than field by field.
///
/// The blanks before a number are left out because the kernel pads numbers to a width
/// (`/proc/meminfo`'s `%8lu`): a value gaining a digit loses a blank.
struct NumberTemplate: Sendable {
    /// The pieces of text between numbers, one after the other; a file with n numbers has n + 1.
    private var text: [UInt8] = []
    /// Where each piece ends in `text`.
    private var pieceEnds: [Int] = []
    /// How many numbers each file has.
    private var numberCounts: [Int] = []

    /// Adds a file, given where its number fields are.
    mutating func append(file: ArraySlice<UInt8>, numbers: [Range<Int>]) {
        file.withUnsafeBufferPointer { bytes in
            var pieceStart = 0
            for number in numbers {
                var blanksStart = number.lowerBound
                while blanksStart > pieceStart, isBlank(bytes[blanksStart - 1]) { blanksStart -= 1 }
                self.text.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[pieceStart..<blanksStart]))
                self.pieceEnds.append(self.text.count)
                pieceStart = number.upperBound
            }
            self.text.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[pieceStart...]))
            self.pieceEnds.append(self.text.count)
        }
        self.numberCounts.append(numbers.count)
    }

    /// Appends the numbers of `files`, in order, to `values`; false when the files' text around their
    /// numbers differs from the template's (then `values` holds what was read up to there).
    func numbers(in files: [ArraySlice<UInt8>], into values: inout [Double]) -> Bool {
        guard files.count == self.numberCounts.count else { return false }
        return self.text.withUnsafeBufferPointer { text in
            self.pieceEnds.withUnsafeBufferPointer { pieceEnds in
                var piece = 0
                for (file, numberCount) in zip(files, self.numberCounts) {
                    let matches = file.withUnsafeBufferPointer { bytes in
                        var cursor = 0
                        for number in 0...numberCount {
                            let start = piece == 0 ? 0 : pieceEnds[piece - 1]
                            let length = pieceEnds[piece] - start
                            piece += 1
                            guard bytes.count - cursor >= length else { return false }
                            if length > 0 && memcmp(bytes.baseAddress! + cursor, text.baseAddress! + start, length) != 0
                            {
                                return false
                            }
                            cursor += length
                            guard number < numberCount else { break }
                            // A number is a field of its own: blanks, a line start or the file's start before it.
                            let blanksStart = cursor
                            while cursor < bytes.count, isBlank(bytes[cursor]) { cursor += 1 }
                            guard cursor > blanksStart || cursor == 0 || isSeparator(bytes[cursor - 1]),
                                let value = parseNumberField(bytes, at: &cursor)
                            else { return false }
                            values.append(value)
                        }
                        return cursor == bytes.count
                    }
                    guard matches else { return false }
                }
                return true
            }
        }
    }
}

/// The number field (`-`? digits, then a separator or the end) at `cursor`, which moves past it; nil
/// when the field there is not a number.
private func parseNumberField(_ bytes: UnsafeBufferPointer<UInt8>, at cursor: inout Int) -> Double? {
    let start = cursor
    let negative = cursor < bytes.count && bytes[cursor] == UInt8(ascii: "-")
    if negative { cursor += 1 }
    let digitsStart = cursor
    var magnitude: UInt64 = 0
    var overflow = false
    while cursor < bytes.count, bytes[cursor] &- UInt8(ascii: "0") < 10 {
        let (times10, overflow10) = magnitude.multipliedReportingOverflow(by: 10)
        let (sum, overflowSum) = times10.addingReportingOverflow(UInt64(bytes[cursor] &- UInt8(ascii: "0")))
        magnitude = sum
        overflow = overflow || overflow10 || overflowSum
        cursor += 1
    }
    guard cursor > digitsStart, cursor == bytes.count || isSeparator(bytes[cursor]) else { return nil }
    // Beyond 64 bits (no kernel counter is): parsed as text, rounded as Go rounds it.
    if overflow { return Array(UnsafeBufferPointer(rebasing: bytes[start..<cursor]))[...].parseDouble() }
    return negative ? -Double(magnitude) : Double(magnitude)
}

/// The layout a collector used last: the files' shape rarely changes, so it is tried first.
final class CurrentLayout: Sendable {
    private let layout = Mutex<NumberLayout?>(nil)

    /// Writes the samples of `files`, working out a new layout with `make` when their shape is not
    /// the current layout's; records the layout's problems. Returns the layout used.
    @discardableResult
    func write(
        _ files: [ArraySlice<UInt8>],
        into writer: inout MetricWriter,
        context: ScrapeContext,
        make: (NumberShape) -> NumberLayout
    ) -> NumberLayout {
        let current = self.layout.withLock { $0 }
        let layout: NumberLayout
        if let current, current.write(files, into: &writer) {
            layout = current
        } else {
            var shape = NumberShape(capacity: files.reduce(files.count) { $0 + $1.count })
            for file in files { shape.append(file: file) }
            layout = make(shape)
            self.layout.withLock { $0 = layout }
            _ = layout.write(files, into: &writer)
        }
        for problem in layout.problems { context.recordFailure(problem) }
        return layout
    }
}

/// The text of several files with every number field replaced by `#`: equal for two reads exactly
/// when they differ only in their numbers. Files are separated by a NUL byte.
struct NumberShape {
    private(set) var bytes: [UInt8] = []
    /// The files' own text around their numbers, for the layout made from this shape to match later
    /// reads against.
    private(set) var template = NumberTemplate()
    private var fileCount = 0

    init(capacity: Int = 8192) {
        self.bytes.reserveCapacity(capacity)
    }

    /// Adds one file (an empty one for a file that does not exist).
    mutating func append(file: ArraySlice<UInt8>) {
        if self.fileCount > 0 { self.bytes.append(0) }
        self.fileCount += 1
        var numbers: [Range<Int>] = []
        forEachField(of: file) { field, offset, endsLine in
            if isNumber(field) {
                self.bytes.append(UInt8(ascii: "#"))
                numbers.append(offset..<offset + field.count)
            } else {
                // Keep "#" meaning a number, and NUL separating files.
                if field.first == UInt8(ascii: "#") { self.bytes.append(UInt8(ascii: "#")) }
                if field.contains(0) {
                    for byte in field { self.bytes.append(byte == 0 ? UInt8(ascii: "?") : byte) }
                } else {
                    self.bytes.append(contentsOf: field)
                }
            }
            self.bytes.append(endsLine ? UInt8(ascii: "\n") : UInt8(ascii: " "))
        }
        self.template.append(file: file, numbers: numbers)
    }

    /// The files' shapes, in the order they were added.
    var files: [ArraySlice<UInt8>] {
        var files = Array(self.bytes[...].split(byte: 0))
        while files.count < self.fileCount { files.append([]) }
        return files
    }
}

extension ArraySlice where Element == UInt8 {
    /// Whether this field of a ``NumberShape`` stands for a number.
    var isShapeNumber: Bool { self.count == 1 && self.first == UInt8(ascii: "#") }
}

/// Whether a field is a (possibly negative) decimal integer: a value, not a name.
private func isNumber(_ field: UnsafeBufferPointer<UInt8>) -> Bool {
    var index = field.first == UInt8(ascii: "-") ? 1 : 0
    guard index < field.count else { return false }
    while index < field.count {
        guard field[index] &- UInt8(ascii: "0") < 10 else { return false }
        index += 1
    }
    return true
}

/// Calls `body` with each whitespace-separated field of `bytes`, its offset, and whether a newline
/// (or the end) follows it.
private func forEachField(
    of bytes: ArraySlice<UInt8>,
    _ body: (UnsafeBufferPointer<UInt8>, Int, Bool) -> Void
) {
    bytes.withUnsafeBufferPointer { buffer in
        var index = 0
        while index < buffer.count {
            if isSeparator(buffer[index]) {
                index += 1
                continue
            }
            let start = index
            while index < buffer.count, !isSeparator(buffer[index]) { index += 1 }
            var next = index
            while next < buffer.count, buffer[next] == UInt8(ascii: " ") || buffer[next] == UInt8(ascii: "\t") {
                next += 1
            }
            let endsLine = next == buffer.count || buffer[next] == UInt8(ascii: "\n")
            body(UnsafeBufferPointer(rebasing: buffer[start..<index]), start, endsLine)
        }
    }
}

@inline(__always)
private func isBlank(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
}

@inline(__always)
private func isSeparator(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
}
