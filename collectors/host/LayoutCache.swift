import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a header line means (which columns hold which families), worked out once per distinct header.
///
/// Header lines of `/proc/net/dev` or `/proc/net/stat/nf_conntrack` change only with the kernel, so a
/// scrape compares the header bytes with the remembered ones instead of splitting and naming every
/// column again.
final class LayoutCache<Layout: Sendable>: Sendable {
    private let entries = Mutex<[(header: [UInt8], layout: Layout)]>([])
    /// More distinct headers than this means something is unusual; start over rather than grow.
    private let capacity: Int

    init(capacity: Int = 32) {
        self.capacity = capacity
    }

    /// The layout for `header`, from `make` the first time the header is seen.
    func layout(for header: ArraySlice<UInt8>, make: (ArraySlice<UInt8>) -> Layout) -> Layout {
        let known = self.entries.withLock { entries in
            entries.first { sameBytes($0.header, header) }?.layout
        }
        if let known { return known }
        let layout = make(header)
        self.entries.withLock { entries in
            if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            entries.append((Array(header), layout))
        }
        return layout
    }
}

private func sameBytes(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    return a.withUnsafeBytes { a in
        b.withUnsafeBytes { b in a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
    }
}
