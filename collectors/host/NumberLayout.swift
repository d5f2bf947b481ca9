import Synchronization
import VigilCore

/// What each number in a set of statistics files means, for files whose text stays the same between
/// reads except for the numbers (`/proc/net/netstat`, `snmp`, `snmp6`; `sockstat`, `sockstat6`).
///
/// Working out the families (splitting header lines, building names, matching a fields regex,
/// dropping duplicates across files) happens once, from the files' ``NumberShape`` (their text with
/// the numbers blanked out). A scrape then walks the files once, checking that they still have that
/// shape and writing each number as the sample of the families the layout gives it.
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

    /// The shape the layout was made from.
    private let shape: [UInt8]
    /// The families of all numbers, number after number.
    private var all: [Family] = []
    /// Where each number's families start in `all` (and, one past the last number, where they end).
    private var starts: [Int] = [0]
    /// Problems found while working out the layout (unmatched lines, counts that differ); recorded
    /// again on every scrape that reads this shape.
    var problems: [String] = []

    /// An empty layout for `shape`, for the maker to add the families of its numbers to.
    init(shape: NumberShape) {
        self.shape = shape.bytes
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

    /// Writes the families of every number of `files` if the files still have the shape the layout
    /// was made from; false, having written nothing, if they do not.
    ///
    /// One pass both checks the shape and picks out the values, so that an unchanged shape costs no
    /// shape of its own.
    func write(_ files: [ArraySlice<UInt8>], into writer: inout MetricWriter) -> Bool {
        var values: [(number: Int, value: Double)] = []
        values.reserveCapacity(64)
        var number = 0
        let matches = self.shape.withUnsafeBufferPointer { shape in
            var cursor = 0
            for (index, file) in files.enumerated() {
                if index > 0 {
                    guard cursor < shape.count, shape[cursor] == 0 else { return false }
                    cursor += 1
                }
                let complete = forEachField(of: file) { field, offset, endsLine in
                    if isNumber(field) {
                        guard cursor < shape.count, shape[cursor] == UInt8(ascii: "#"),
                            number + 1 < self.starts.count
                        else { return false }
                        cursor += 1
                        if self.starts[number] < self.starts[number + 1] {
                            let start = file.startIndex + offset
                            if let value = file[start..<start + field.count].parseDouble() {
                                values.append((number, value))
                            }
                        }
                        number += 1
                    } else {
                        guard cursor < shape.count else { return false }
                        if field.first == UInt8(ascii: "#") {
                            guard shape[cursor] == UInt8(ascii: "#") else { return false }
                            cursor += 1
                        }
                        guard cursor + field.count <= shape.count else { return false }
                        for byte in field {
                            guard shape[cursor] == (byte == 0 ? UInt8(ascii: "?") : byte) else { return false }
                            cursor += 1
                        }
                    }
                    guard cursor < shape.count, shape[cursor] == (endsLine ? UInt8(ascii: "\n") : UInt8(ascii: " "))
                    else { return false }
                    cursor += 1
                    return true
                }
                guard complete else { return false }
            }
            return cursor == shape.count
        }
        guard matches && number == self.numberCount else { return false }
        for (number, value) in values {
            for family in self.families(ofNumber: number) {
                writer.family(family.family)
                writer.sample(value * family.scale)
            }
        }
        return true
    }
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
    private var fileCount = 0

    init(capacity: Int = 8192) {
        self.bytes.reserveCapacity(capacity)
    }

    /// Adds one file (an empty one for a file that does not exist).
    mutating func append(file: ArraySlice<UInt8>) {
        if self.fileCount > 0 { self.bytes.append(0) }
        self.fileCount += 1
        forEachField(of: file) { field, _, endsLine in
            if isNumber(field) {
                self.bytes.append(UInt8(ascii: "#"))
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
            return true
        }
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
func isNumberField(_ field: ArraySlice<UInt8>) -> Bool {
    field.withUnsafeBufferPointer(isNumber)
}

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
/// (or the end) follows it, until `body` returns false; over the raw bytes, as this runs for every
/// field of every scrape. Returns whether every field was visited.
@discardableResult
private func forEachField(
    of bytes: ArraySlice<UInt8>,
    _ body: (UnsafeBufferPointer<UInt8>, Int, Bool) -> Bool
) -> Bool {
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
            guard body(UnsafeBufferPointer(rebasing: buffer[start..<index]), start, endsLine) else { return false }
        }
        return true
    }
}

@inline(__always)
private func isSeparator(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
}
