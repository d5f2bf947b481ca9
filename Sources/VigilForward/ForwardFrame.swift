import VigilCore

/// Encodes a batch as one forward-protocol request: PackedForward
/// `[tag, bin entries, {"size": n, "chunk": id}]`, or CompressedPackedForward with the entries gzipped
/// and `"compressed": "gzip"` in the option map. The `chunk` option makes the server ack.
public enum ForwardFrame {
    public static func encode(_ batch: ForwardBatch, compression: ForwardConfiguration.Compression) -> [UInt8] {
        let entries = compression == .gzip ? Gzip.compress(batch.entries) : batch.entries
        var writer = MessagePackWriter(capacity: entries.count + batch.tag.utf8.count + batch.chunkID.utf8.count + 48)
        writer.writeArrayHeader(3)
        writer.writeString(batch.tag)
        writer.writeBinary(entries)
        writer.writeMapHeader(compression == .gzip ? 3 : 2)
        writer.writeString("size")
        writer.writeInt(Int64(batch.count))
        writer.writeString("chunk")
        writer.writeString(batch.chunkID)
        if compression == .gzip {
            writer.writeString("compressed")
            writer.writeString("gzip")
        }
        return writer.bytes
    }
}
