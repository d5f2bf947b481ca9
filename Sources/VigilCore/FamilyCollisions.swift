#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Guards a scrape against a family written twice: a collector whose family names come from outside
/// vigil (the textfile collector) must not redefine a family another collector writes.
enum FamilyCollisions {
    /// The family names declared on `# HELP` lines (``MetricWriter`` starts every family with one).
    static func names(in bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var names: [ArraySlice<UInt8>] = []
        Self.forEachFamily(in: bytes) { name, _ in names.append(name) }
        return names
    }

    /// The names of `wanted` that `bytes` declares on a `# HELP` line.
    ///
    /// Runs on every scrape over the whole output, so it skips from `#` to `#` with `memchr` and hashes
    /// only names whose length some wanted name has.
    static func declared(_ wanted: Set<ArraySlice<UInt8>>, in bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        guard !wanted.isEmpty else { return [] }
        var lengths = [Bool](repeating: false, count: 256)
        for name in wanted { lengths[min(name.count, 255)] = true }
        var found: [ArraySlice<UInt8>] = []
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let count = buffer.count
            var offset = 0
            while offset < count, let hash = memchr(base + offset, Int32(UInt8(ascii: "#")), count - offset) {
                let at = base.distance(to: hash.assumingMemoryBound(to: UInt8.self))
                offset = at + 1
                let nameStart = at + 7
                guard at == 0 || buffer[at - 1] == UInt8(ascii: "\n"), nameStart < count,
                    memcmp(hash, "# HELP ", 7) == 0
                else { continue }
                var nameEnd = nameStart
                while nameEnd < count, buffer[nameEnd] != UInt8(ascii: " "), buffer[nameEnd] != UInt8(ascii: "\n") {
                    nameEnd += 1
                }
                guard lengths[min(nameEnd - nameStart, 255)] else { continue }
                let name = bytes[nameStart..<nameEnd]
                if wanted.contains(name) { found.append(name) }
            }
        }
        return found
    }

    /// Removes the families of `bytes` whose names `isTaken` accepts.
    ///
    /// - Returns: the remaining text, and the names removed.
    static func removing(
        from bytes: [UInt8],
        where isTaken: (ArraySlice<UInt8>) -> Bool
    ) -> (bytes: [UInt8], removed: [String]) {
        var kept: [UInt8] = []
        var removed: [String] = []
        Self.forEachFamily(in: bytes) { name, section in
            if isTaken(name) {
                removed.append(String(decoding: name, as: UTF8.self))
            } else {
                kept.append(contentsOf: section)
            }
        }
        return (kept, removed)
    }

    /// Calls `body` with each family's name and its whole section (HELP, TYPE and samples). Text before
    /// the first `# HELP` line belongs to no family and is skipped.
    private static func forEachFamily(
        in bytes: [UInt8],
        _ body: (_ name: ArraySlice<UInt8>, _ section: ArraySlice<UInt8>) -> Void
    ) {
        var starts: [Int] = []
        var lineStart = 0
        while lineStart < bytes.count {
            if bytes[lineStart...].starts(with: "# HELP ".utf8) { starts.append(lineStart) }
            guard let newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            lineStart = newline + 1
        }
        for (position, start) in starts.enumerated() {
            let end = position + 1 < starts.count ? starts[position + 1] : bytes.count
            let nameStart = start + 7
            var nameEnd = nameStart
            while nameEnd < end, bytes[nameEnd] != UInt8(ascii: " "), bytes[nameEnd] != UInt8(ascii: "\n") {
                nameEnd += 1
            }
            body(bytes[nameStart..<nameEnd], bytes[start..<end])
        }
    }
}
