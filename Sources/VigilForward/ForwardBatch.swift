/// A batch of events for one tag, ready to send as PackedForward.
public struct ForwardBatch: Sendable {
    /// The forward-protocol tag (`journal.nginx.service`).
    public let tag: String
    /// Concatenated MessagePack `[EventTime, record]` arrays, without an outer array header.
    public let entries: [UInt8]
    /// Number of events in `entries` (the `size` option).
    public let count: Int
    /// Base64 of a 16-byte id, the `chunk` option; the same on every resend of this batch, so that the
    /// ack of a resend matches.
    public let chunkID: String

    public init(tag: String, entries: [UInt8], count: Int, chunkID: String) {
        self.tag = tag
        self.entries = entries
        self.count = count
        self.chunkID = chunkID
    }

    /// A batch whose chunk id is derived from its content (Fluent Bit's way): the first 16 bytes of the
    /// SHA-512 of tag and entries, so that a batch rebuilt from the same journal entries after a restart
    /// carries the same id.
    public init(tag: String, entries: [UInt8], count: Int) {
        self.init(tag: tag, entries: entries, count: count, chunkID: Self.contentChunkID(tag: tag, entries: entries))
    }

    /// Base64 of the first 16 bytes of SHA-512(tag ‖ 0x00 ‖ entries).
    public static func contentChunkID(tag: String, entries: [UInt8]) -> String {
        var hasher = SHA512()
        hasher.update(tag)
        hasher.update([0])
        hasher.update(entries)
        return base64Encode(hasher.finalize().prefix(16))
    }
}

/// Where the log pipeline hands its batches: forward targets, or the dry-run printer.
public protocol BatchSink: Sendable {
    /// Delivers a batch and returns once a receiver has acknowledged it. It retries (with backoff,
    /// across targets) for as long as it takes; it throws when the agent shuts down
    /// (`CancellationError`), in which case the batch counts as not delivered, and for a batch it can
    /// never send (``ForwardOutput`` refuses entries above `maxBatchBytes`: a bug in the caller).
    func deliver(_ batch: ForwardBatch) async throws
}

/// Standard Base64 (RFC 4648, with padding, no line breaks), for chunk ids.
public func base64Encode(_ bytes: some Collection<UInt8>) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var output: [UInt8] = []
    output.reserveCapacity((bytes.count + 2) / 3 * 4)
    var iterator = bytes.makeIterator()
    while let first = iterator.next() {
        let second = iterator.next()
        let third = iterator.next()
        let value = UInt32(first) << 16 | UInt32(second ?? 0) << 8 | UInt32(third ?? 0)
        output.append(alphabet[Int(value >> 18 & 63)])
        output.append(alphabet[Int(value >> 12 & 63)])
        output.append(second == nil ? UInt8(ascii: "=") : alphabet[Int(value >> 6 & 63)])
        output.append(third == nil ? UInt8(ascii: "=") : alphabet[Int(value & 63)])
    }
    return String(decoding: output, as: UTF8.self)
}
