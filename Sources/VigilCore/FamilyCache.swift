import Synchronization

/// Families named after what a file contains (`node_memory_<field>`, `node_netstat_<proto>_<field>`),
/// built once per field name and reused on every scrape, so that a scrape builds no Strings for them.
///
/// Lookups hash the field's bytes in place: no allocation once a name has been seen.
public final class FamilyCache: Sendable {
    private struct Entry {
        let key: [UInt8]
        let family: MetricFamily?
    }

    private let buckets = Mutex<[UInt64: [Entry]]>([:])

    public init() {}

    /// The family for `key`, built by `make` the first time `key` is seen; nil when `make` returned
    /// nil for it (a field to skip, e.g. filtered out), which is remembered too.
    public func family(for key: ArraySlice<UInt8>, make: (ArraySlice<UInt8>) -> MetricFamily?) -> MetricFamily? {
        let hash = fnv1a(key)
        if let entry = self.buckets.withLock({ $0[hash]?.first { $0.key.elementsEqual(key) } }) {
            return entry.family
        }
        let family = make(key)
        self.buckets.withLock { buckets in
            // Names come from kernel files; a cap keeps a misbehaving file from growing the cache forever.
            if buckets.count > 4096 { buckets.removeAll() }
            buckets[hash, default: []].append(Entry(key: Array(key), family: family))
        }
        return family
    }
}

private func fnv1a(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
    }
    return hash
}
