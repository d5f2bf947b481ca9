import CIsal
import Synchronization

/// gzip (RFC 1952): scrape responses for clients that accept it, and CompressedPackedForward entries.
///
/// Compression uses Intel's ISA-L (igzip) at its level 1: five times cheaper than zlib's fastest level
/// for exposition text, at a slightly better ratio — on every scrape of every node, that matters.
public enum Gzip {
    /// Compresses `input` into one gzip member.
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        self.compress([input], into: &output)
        return output
    }

    /// Compresses the concatenation of `parts` into one gzip member in `output` (replacing its contents,
    /// reusing its storage), without joining the parts first.
    public static func compress(_ parts: [[UInt8]], into output: inout [UInt8]) {
        output.removeAll(keepingCapacity: true)
        let stream = Stream()
        let inputs = parts.isEmpty ? [[]] : parts
        for (index, part) in inputs.enumerated() {
            stream.compress(part, final: index == inputs.count - 1, appendingTo: &output)
        }
    }

    /// One gzip member compressed a piece at a time (a response sent in chunks).
    public final class Stream {
        private let deflater: Deflater

        public init() {
            self.deflater = deflaters.withLock { $0.popLast() } ?? Deflater()
            self.deflater.begin()
        }

        deinit {
            deflaters.withLock { pool in
                if pool.count < 2 { pool.append(self.deflater) }
            }
        }

        /// Compresses `input`, appending what it produces to `output`; `final` ends the member.
        public func compress(_ input: [UInt8], final: Bool, appendingTo output: inout [UInt8]) {
            self.deflater.compress(input, final: final, appendingTo: &output)
        }
    }

    /// An error decompressing gzip data.
    public struct DecompressionError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Decompresses gzip data, including several concatenated members; refuses output beyond `limit`.
    public static func decompress(_ input: [UInt8], limit: Int = 256 << 20) throws(DecompressionError) -> [UInt8] {
        guard !input.isEmpty else { return [] }
        let state = UnsafeMutablePointer<inflate_state>.allocate(capacity: 1)
        defer { state.deallocate() }
        isal_inflate_init(state)
        state.pointee.crc_flag = UInt32(ISAL_GZIP)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        return try input.withUnsafeBufferPointer { (source) throws(DecompressionError) -> [UInt8] in
            state.pointee.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            state.pointee.avail_in = UInt32(source.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { destination in
                    state.pointee.next_out = destination.baseAddress
                    state.pointee.avail_out = UInt32(destination.count)
                    let status = isal_inflate(state)
                    return (status, destination.count - Int(state.pointee.avail_out))
                }
                guard status >= 0 else {
                    throw DecompressionError(description: "invalid gzip data (ISA-L status \(status))")
                }
                output.append(contentsOf: chunk[0..<produced])
                guard output.count <= limit else {
                    throw DecompressionError(description: "decompressed size exceeds \(limit) bytes")
                }
                if state.pointee.block_state == ISAL_BLOCK_FINISH {
                    // One member done; another may follow.
                    guard state.pointee.avail_in > 0 else { return output }
                    let next = state.pointee.next_in
                    let remaining = state.pointee.avail_in
                    isal_inflate_reset(state)
                    state.pointee.crc_flag = UInt32(ISAL_GZIP)
                    state.pointee.next_in = next
                    state.pointee.avail_in = remaining
                } else if produced == 0 && state.pointee.avail_in == 0 {
                    throw DecompressionError(description: "truncated gzip data")
                }
            }
        }
    }
}

private let deflaters = Mutex<[Deflater]>([])

/// An igzip stream, its level-1 working buffer and the buffer it compresses into, reused between uses.
private final class Deflater: @unchecked Sendable {
    // @unchecked: used by one caller at a time (taken from and returned to the pool).
    private let stream = UnsafeMutablePointer<isal_zstream>.allocate(capacity: 1)
    private let levelBufferSize = Int(CIsal_level1BufferSize())
    private let levelBuffer: UnsafeMutablePointer<UInt8>
    /// Compressed output is copied from here to the caller's array: growing that array for igzip to
    /// write into would first fill it with zeros.
    private static let scratchSize = 32 << 10
    private let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: Deflater.scratchSize)

    init() {
        self.levelBuffer = .allocate(capacity: self.levelBufferSize)
    }

    deinit {
        self.stream.deallocate()
        self.levelBuffer.deallocate()
        self.scratch.deallocate()
    }

    func begin() {
        isal_deflate_init(self.stream)
        self.stream.pointee.level = 1
        self.stream.pointee.level_buf = self.levelBuffer
        self.stream.pointee.level_buf_size = UInt32(self.levelBufferSize)
        self.stream.pointee.gzip_flag = UInt16(IGZIP_GZIP)
        self.stream.pointee.flush = UInt16(NO_FLUSH)
    }

    func compress(_ input: [UInt8], final: Bool, appendingTo output: inout [UInt8]) {
        self.stream.pointee.end_of_stream = final ? 1 : 0
        input.withUnsafeBufferPointer { source in
            self.stream.pointee.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            self.stream.pointee.avail_in = UInt32(source.count)
            while true {
                self.stream.pointee.next_out = self.scratch
                self.stream.pointee.avail_out = UInt32(Self.scratchSize)
                let status = isal_deflate(self.stream)
                precondition(status == COMP_OK, "isal_deflate failed: \(status)")
                let produced = Self.scratchSize - Int(self.stream.pointee.avail_out)
                output.append(contentsOf: UnsafeBufferPointer(start: self.scratch, count: produced))
                let done =
                    final
                    ? self.stream.pointee.internal_state.state == ZSTATE_END
                    : self.stream.pointee.avail_in == 0
                if done { break }
            }
        }
    }
}
