public import NIOCore
import VigilCore

/// Encodes a batch as one forward-protocol request: PackedForward
/// `[tag, bin entries, {"size": n, "chunk": id}]`, or CompressedPackedForward with the entries gzipped
/// and `"compressed": "gzip"` in the option map. The `chunk` option makes the server ack.
public enum ForwardFrame {
    public static func encode(_ batch: ForwardBatch, compression: ForwardConfiguration.Compression) -> [UInt8] {
        var buffer = self.buffer(batch, compression: compression)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    /// The request ready to write to a channel; the entries (about 1 MB) are copied once.
    public static func buffer(_ batch: ForwardBatch, compression: ForwardConfiguration.Compression) -> ByteBuffer {
        let entries = compression == .gzip ? Gzip.compress(batch.entries) : batch.entries
        var head = MessagePackWriter(capacity: batch.tag.utf8.count + 16)
        head.writeArrayHeader(3)
        head.writeString(batch.tag)
        head.writeBinaryHeader(entries.count)
        var option = MessagePackWriter(capacity: batch.chunkID.utf8.count + 32)
        option.writeMapHeader(compression == .gzip ? 3 : 2)
        option.writeString("size")
        option.writeInt(Int64(batch.count))
        option.writeString("chunk")
        option.writeString(batch.chunkID)
        if compression == .gzip {
            option.writeString("compressed")
            option.writeString("gzip")
        }
        var buffer = ByteBufferAllocator().buffer(capacity: head.bytes.count + entries.count + option.bytes.count)
        buffer.writeBytes(head.bytes)
        buffer.writeBytes(entries)
        buffer.writeBytes(option.bytes)
        return buffer
    }
}
