public import VigilForward

#if canImport(Glibc)
import Glibc
#endif

/// Turns the fields of one journal entry into a forward-protocol event, `[EventTime, record]`, written
/// straight into a ``MessagePackWriter``.
///
/// Fields are copied into one reused arena as they are enumerated (libsystemd's pointers only live
/// until the next field), then written: keys as `str`, values as `str` when they are valid UTF-8 and
/// as `bin` otherwise, a key that occurs several times as one key with an array of its values (in
/// journal order). After the first entries nothing is allocated per entry.
public struct EntryEncoder: Sendable {
    private struct Slot {
        var keyStart: Int
        var keyLength: Int
        var valueStart: Int
        var valueLength: Int
        var keyHash: UInt64
        /// The next slot with the same key, or -1; on a group's first slot also the last and the count.
        var next: Int = -1
        var last: Int = -1
        var count: Int = 1
        var isHead = true
    }

    /// What a configured field name stands for.
    private struct NameRole {
        let name: [UInt8]
        var include = false
        var exclude = false
        var tagField: Int?
    }

    private let format: JournalConfiguration.RecordFormat
    private let roles: [UInt64: [NameRole]]
    private let filtersByName: Bool
    private let tagFieldCount: Int
    private var arena: [UInt8] = []
    private var slots: [Slot] = []
    private var table: [Int32] = []
    /// Arena ranges of each tag field's first value, for the current entry.
    private var tagValues: [(start: Int, length: Int)?]

    /// Fields of the current entry left out because of `maxFields`.
    public private(set) var droppedFields = 0
    /// Bytes of field data in the current entry, as libsystemd returned them.
    public private(set) var fieldBytes = 0

    /// - Parameters:
    ///   - format: key transformation, field selection and limits.
    ///   - tagFields: journal fields whose values the tag expands (captured even when excluded).
    public init(format: JournalConfiguration.RecordFormat, tagFields: [String] = []) {
        self.format = format
        var roles: [UInt64: [NameRole]] = [:]
        func update(_ name: String, _ change: (inout NameRole) -> Void) {
            let bytes = Array(name.utf8)
            let hash = bytes.withUnsafeBytes { fnv1a($0) }
            var list = roles[hash] ?? []
            if let index = list.firstIndex(where: { $0.name == bytes }) {
                change(&list[index])
            } else {
                var role = NameRole(name: bytes)
                change(&role)
                list.append(role)
            }
            roles[hash] = list
        }
        for name in format.includeFields { update(name) { $0.include = true } }
        for name in format.excludeFields { update(name) { $0.exclude = true } }
        for (index, name) in tagFields.enumerated() { update(name) { $0.tagField = index } }
        self.roles = roles
        self.filtersByName = !roles.isEmpty
        self.tagFieldCount = tagFields.count
        self.tagValues = Array(repeating: nil, count: tagFields.count)
    }

    /// Starts a new entry.
    public mutating func begin() {
        self.arena.removeAll(keepingCapacity: true)
        self.slots.removeAll(keepingCapacity: true)
        for index in self.tagValues.indices { self.tagValues[index] = nil }
        self.droppedFields = 0
        self.fieldBytes = 0
    }

    /// Adds one field of the entry, `NAME=value` as libsystemd returns it. Data without `=` is ignored.
    public mutating func add(field data: UnsafeRawBufferPointer) {
        guard let base = data.baseAddress else { return }
        self.fieldBytes += data.count
        var nameHash: UInt64 = fnvOffset
        var equals = -1
        for index in 0..<data.count {
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            if byte == UInt8(ascii: "=") {
                equals = index
                break
            }
            nameHash = (nameHash ^ UInt64(byte)) &* fnvPrime
        }
        guard equals > 0 else { return }
        let name = UnsafeRawBufferPointer(start: base, count: equals)
        let value = UnsafeRawBufferPointer(start: base + equals + 1, count: data.count - equals - 1)
        var keep = self.format.includeFields.isEmpty
        var tagField: Int?
        if self.filtersByName, let role = self.roles[nameHash]?.first(where: { $0.name.elementsEqual(name) }) {
            if role.include { keep = true }
            if role.exclude { keep = false }
            if let field = role.tagField, self.tagValues[field] == nil { tagField = field }
        }
        if keep && self.slots.count >= self.format.maxFields {
            self.droppedFields += 1
            keep = false
        }
        guard keep else {
            // A field left out of the record may still name the tag.
            if let tagField {
                self.tagValues[tagField] = (self.arena.count, value.count)
                self.arena.append(contentsOf: value)
            }
            return
        }
        let keyStart = self.arena.count
        var keyHash: UInt64 = fnvOffset
        let keyLength: Int
        let valueStart: Int
        if !self.format.stripUnderscores && !self.format.lowercase {
            // The key is the field name as it is: the whole field in one copy (the `=` stays between key
            // and value), and the key's hash is the name's.
            self.arena.append(contentsOf: data)
            keyHash = nameHash
            keyLength = equals
            valueStart = keyStart + equals + 1
        } else {
            var skip = self.format.stripUnderscores && name.first == UInt8(ascii: "_")
            for var byte in name {
                if skip {
                    skip = false
                    continue
                }
                if self.format.lowercase, byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte += 0x20 }
                self.arena.append(byte)
                keyHash = (keyHash ^ UInt64(byte)) &* fnvPrime
            }
            keyLength = self.arena.count - keyStart
            valueStart = self.arena.count
            self.arena.append(contentsOf: value)
        }
        if let tagField { self.tagValues[tagField] = (valueStart, value.count) }
        self.slots.append(
            Slot(
                keyStart: keyStart,
                keyLength: keyLength,
                valueStart: valueStart,
                valueLength: value.count,
                keyHash: keyHash
            )
        )
    }

    /// Writes `[EventTime, record]` for the current entry; `realtime` is `__REALTIME_TIMESTAMP` in
    /// microseconds.
    public mutating func write(realtime: UInt64, into writer: inout MessagePackWriter) {
        let distinct = self.groupKeys()
        writer.writeArrayHeader(2)
        writer.writeEventTime(
            seconds: UInt32(truncatingIfNeeded: realtime / 1_000_000),
            nanoseconds: UInt32(realtime % 1_000_000) * 1000
        )
        writer.writeMapHeader(distinct)
        self.arena.withUnsafeBytes { arena in
            for slot in self.slots where slot.isHead {
                writer.writeString(
                    utf8: UnsafeRawBufferPointer(rebasing: arena[slot.keyStart..<(slot.keyStart + slot.keyLength)])
                )
                if slot.count == 1 {
                    writeValue(arena, start: slot.valueStart, length: slot.valueLength, &writer)
                    continue
                }
                writer.writeArrayHeader(slot.count)
                var member: Slot? = slot
                while let current = member {
                    writeValue(arena, start: current.valueStart, length: current.valueLength, &writer)
                    member = current.next >= 0 ? self.slots[current.next] : nil
                }
            }
        }
    }

    /// Appends the expansion of `template` for the current entry to `tag`.
    public func renderTag(_ template: TagTemplate, into tag: inout [UInt8]) {
        for part in template.parts {
            switch part {
            case .literal(let bytes):
                tag.append(contentsOf: bytes)
            case .field(let index, let fallback):
                guard let range = self.tagValues[index], range.length > 0 else {
                    tag.append(contentsOf: fallback)
                    continue
                }
                let valid = self.arena.withUnsafeBytes {
                    isValidUTF8(UnsafeRawBufferPointer(rebasing: $0[range.start..<(range.start + range.length)]))
                }
                if valid {
                    tag.append(contentsOf: self.arena[range.start..<(range.start + range.length)])
                } else {
                    tag.append(contentsOf: fallback)
                }
            }
        }
    }

    /// Links slots with equal keys (open addressing on the key hash); returns the number of keys.
    private mutating func groupKeys() -> Int {
        let count = self.slots.count
        guard count > 1 else { return count }
        var size = 16
        while size < count * 2 { size <<= 1 }
        if self.table.count != size {
            self.table = [Int32](repeating: 0, count: size)
        } else {
            for index in 0..<size { self.table[index] = 0 }
        }
        let mask = size - 1
        var distinct = 0
        self.arena.withUnsafeBytes { arena in
            for index in 0..<count {
                var position = Int(truncatingIfNeeded: self.slots[index].keyHash) & mask
                while true {
                    let occupant = Int(self.table[position]) - 1
                    if occupant < 0 {
                        self.table[position] = Int32(index + 1)
                        self.slots[index].last = index
                        distinct += 1
                        break
                    }
                    if self.sameKey(occupant, index, arena) {
                        let last = self.slots[occupant].last
                        self.slots[last].next = index
                        self.slots[occupant].last = index
                        self.slots[occupant].count += 1
                        self.slots[index].isHead = false
                        break
                    }
                    position = (position + 1) & mask
                }
            }
        }
        return distinct
    }

    private func sameKey(_ a: Int, _ b: Int, _ arena: UnsafeRawBufferPointer) -> Bool {
        let first = self.slots[a]
        let second = self.slots[b]
        guard first.keyHash == second.keyHash, first.keyLength == second.keyLength else { return false }
        return memcmp(arena.baseAddress! + first.keyStart, arena.baseAddress! + second.keyStart, first.keyLength) == 0
    }
}

/// Writes a value as `str` when it is valid UTF-8, else as `bin`.
private func writeValue(
    _ arena: UnsafeRawBufferPointer,
    start: Int,
    length: Int,
    _ writer: inout MessagePackWriter
) {
    let value = UnsafeRawBufferPointer(rebasing: arena[start..<(start + length)])
    if isValidUTF8(value) {
        writer.writeString(utf8: value)
    } else {
        writer.writeBinary(value)
    }
}

private let fnvOffset: UInt64 = 0xCBF2_9CE4_8422_2325
private let fnvPrime: UInt64 = 0x0000_0100_0000_01B3

/// FNV-1a, the hash of field names (short, so a simple byte loop is the fastest choice).
func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash = fnvOffset
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* fnvPrime }
    return hash
}
