import CZlib
import Synchronization

/// gzip (RFC 1952) through the system's zlib: scrape responses for clients that accept it, and
/// CompressedPackedForward entries.
public enum Gzip {
    /// Compresses `input` into one gzip member.
    ///
    /// - Parameter level: zlib level; 1 is much cheaper than the default and compresses exposition text
    ///   almost as well.
    public static func compress(_ input: [UInt8], level: Int32 = 1) -> [UInt8] {
        var output: [UInt8] = []
        self.compress(input, into: &output, level: level)
        return output
    }

    /// Compresses `input` into `output` (replacing its contents, reusing its storage).
    ///
    /// Deflate state is kept between calls (setting it up costs more than compressing a small scrape).
    public static func compress(_ input: [UInt8], into output: inout [UInt8], level: Int32 = 1) {
        self.compress([input], into: &output, level: level)
    }

    /// Compresses the concatenation of `parts` into one gzip member in `output`, without joining them.
    public static func compress(_ parts: [[UInt8]], into output: inout [UInt8], level: Int32 = 1) {
        let deflater = deflaters.withLock { $0.popLast() } ?? Deflater()
        deflater.compress(parts, into: &output, level: level)
        deflaters.withLock { pool in
            if pool.count < 2 { pool.append(deflater) }
        }
    }

    /// An error decompressing gzip data.
    public struct DecompressionError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Decompresses gzip data, including several concatenated members; refuses output beyond `limit`.
    public static func decompress(_ input: [UInt8], limit: Int = 256 << 20) throws(DecompressionError) -> [UInt8] {
        var output: [UInt8] = []
        var offset = 0
        while offset < input.count {
            var stream = z_stream()
            guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw DecompressionError(description: "inflateInit2 failed")
            }
            defer { inflateEnd(&stream) }
            var chunk = [UInt8](repeating: 0, count: 65536)
            var status: Int32 = Z_OK
            let consumed = input.withUnsafeBufferPointer { source -> Int in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress! + offset)
                stream.avail_in = uInt(source.count - offset)
                repeat {
                    let produced = chunk.withUnsafeMutableBufferPointer { destination -> Int in
                        stream.next_out = destination.baseAddress
                        stream.avail_out = uInt(destination.count)
                        status = inflate(&stream, Z_NO_FLUSH)
                        return destination.count - Int(stream.avail_out)
                    }
                    output.append(contentsOf: chunk[0..<produced])
                    if output.count > limit { status = Z_MEM_ERROR }
                } while status == Z_OK && (stream.avail_in > 0 || stream.avail_out == 0)
                return source.count - offset - Int(stream.avail_in)
            }
            guard status == Z_STREAM_END else {
                throw DecompressionError(
                    description: output.count > limit
                        ? "decompressed size exceeds \(limit) bytes" : "invalid gzip data (zlib status \(status))"
                )
            }
            offset += consumed
        }
        return output
    }
}

private let deflaters = Mutex<[Deflater]>([])

/// A zlib deflate stream, reset between uses.
private final class Deflater: @unchecked Sendable {
    // @unchecked: used by one caller at a time (taken from and returned to the pool).
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private var level: Int32 = -100

    init() {
        self.stream.initialize(to: z_stream())
    }

    deinit {
        if self.level != -100 { deflateEnd(self.stream) }
        self.stream.deallocate()
    }

    func compress(_ parts: [[UInt8]], into output: inout [UInt8], level: Int32) {
        if self.level != level {
            if self.level != -100 { deflateEnd(self.stream) }
            // windowBits 15 + 16 selects the gzip wrapper.
            let status = deflateInit2_(
                self.stream,
                level,
                Z_DEFLATED,
                15 + 16,
                8,
                Z_DEFAULT_STRATEGY,
                ZLIB_VERSION,
                Int32(MemoryLayout<z_stream>.size)
            )
            precondition(status == Z_OK, "deflateInit2 failed: \(status)")
            self.level = level
        } else {
            deflateReset(self.stream)
        }
        let total = parts.reduce(0) { $0 + $1.count }
        let bound = Int(deflateBound(self.stream, uLong(total))) + 64 * parts.count
        if output.count < bound {
            output.reserveCapacity(bound)
            output.append(contentsOf: repeatElement(0, count: bound - output.count))
        }
        let written = output.withUnsafeMutableBufferPointer { destination -> Int in
            self.stream.pointee.next_out = destination.baseAddress
            self.stream.pointee.avail_out = uInt(destination.count)
            for (index, part) in parts.enumerated() {
                let flush = index == parts.count - 1 ? Z_FINISH : Z_NO_FLUSH
                part.withUnsafeBufferPointer { source in
                    self.stream.pointee.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                    self.stream.pointee.avail_in = uInt(source.count)
                    let result = deflate(self.stream, flush)
                    precondition(
                        result == (flush == Z_FINISH ? Z_STREAM_END : Z_OK)
                            || (result == Z_BUF_ERROR && source.isEmpty),
                        "deflate into a deflateBound buffer must not run out of room: \(result)"
                    )
                }
            }
            if parts.isEmpty { _ = deflate(self.stream, Z_FINISH) }
            return destination.count - Int(self.stream.pointee.avail_out)
        }
        output.removeSubrange(written...)
    }
}
