/// Writes MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md) into a byte buffer: the
/// encoding of forward-protocol frames and of journal records.
///
/// Integers take their smallest encoding; strings are `str`, raw bytes `bin`; the forward protocol's
/// EventTime is ext type 0 as fixext8 (never the msgpack Timestamp, ext type −1, which fluentd rejects).
public struct MessagePackWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 0) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    public mutating func writeNil() { self.bytes.append(0xC0) }

    public mutating func writeBool(_ value: Bool) { self.bytes.append(value ? 0xC3 : 0xC2) }

    public mutating func writeArrayHeader(_ count: Int) {
        if count < 16 {
            self.bytes.append(0x90 | UInt8(count))
        } else if count <= 0xFFFF {
            self.bytes.append(0xDC)
            self.appendBigEndian(UInt16(count))
        } else {
            self.bytes.append(0xDD)
            self.appendBigEndian(UInt32(count))
        }
    }

    public mutating func writeMapHeader(_ count: Int) {
        if count < 16 {
            self.bytes.append(0x80 | UInt8(count))
        } else if count <= 0xFFFF {
            self.bytes.append(0xDE)
            self.appendBigEndian(UInt16(count))
        } else {
            self.bytes.append(0xDF)
            self.appendBigEndian(UInt32(count))
        }
    }

    public mutating func writeInt(_ value: Int64) {
        if value >= 0 {
            self.writeUInt(UInt64(value))
        } else if value >= -32 {
            self.bytes.append(UInt8(bitPattern: Int8(value)))
        } else if value >= Int64(Int8.min) {
            self.bytes.append(0xD0)
            self.bytes.append(UInt8(bitPattern: Int8(value)))
        } else if value >= Int64(Int16.min) {
            self.bytes.append(0xD1)
            self.appendBigEndian(UInt16(bitPattern: Int16(value)))
        } else if value >= Int64(Int32.min) {
            self.bytes.append(0xD2)
            self.appendBigEndian(UInt32(bitPattern: Int32(value)))
        } else {
            self.bytes.append(0xD3)
            self.appendBigEndian(UInt64(bitPattern: value))
        }
    }

    public mutating func writeUInt(_ value: UInt64) {
        if value < 128 {
            self.bytes.append(UInt8(value))
        } else if value <= 0xFF {
            self.bytes.append(0xCC)
            self.bytes.append(UInt8(value))
        } else if value <= 0xFFFF {
            self.bytes.append(0xCD)
            self.appendBigEndian(UInt16(value))
        } else if value <= 0xFFFF_FFFF {
            self.bytes.append(0xCE)
            self.appendBigEndian(UInt32(value))
        } else {
            self.bytes.append(0xCF)
            self.appendBigEndian(value)
        }
    }

    /// Writes a float 64.
    public mutating func writeDouble(_ value: Double) {
        self.bytes.append(0xCB)
        self.appendBigEndian(value.bitPattern)
    }

    public mutating func writeString(_ value: String) {
        var value = value
        value.withUTF8 { self.writeString(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// Writes bytes known to be valid UTF-8 as `str`.
    public mutating func writeString(utf8: UnsafeRawBufferPointer) {
        let count = utf8.count
        if count < 32 {
            self.bytes.append(0xA0 | UInt8(count))
        } else if count <= 0xFF {
            self.bytes.append(0xD9)
            self.bytes.append(UInt8(count))
        } else if count <= 0xFFFF {
            self.bytes.append(0xDA)
            self.appendBigEndian(UInt16(count))
        } else {
            self.bytes.append(0xDB)
            self.appendBigEndian(UInt32(count))
        }
        self.bytes.append(contentsOf: utf8)
    }

    /// Writes raw bytes as `bin`.
    public mutating func writeBinary(_ value: UnsafeRawBufferPointer) {
        self.writeBinaryHeader(value.count)
        self.bytes.append(contentsOf: value)
    }

    public mutating func writeBinary(_ value: [UInt8]) {
        value.withUnsafeBytes { self.writeBinary($0) }
    }

    /// Writes the header of a `bin` whose `count` bytes the caller appends next.
    public mutating func writeBinaryHeader(_ count: Int) {
        if count <= 0xFF {
            self.bytes.append(0xC4)
            self.bytes.append(UInt8(count))
        } else if count <= 0xFFFF {
            self.bytes.append(0xC5)
            self.appendBigEndian(UInt16(count))
        } else {
            self.bytes.append(0xC6)
            self.appendBigEndian(UInt32(count))
        }
    }

    /// Writes the forward protocol's EventTime: ext type 0, fixext8, seconds and nanoseconds big-endian.
    public mutating func writeEventTime(seconds: UInt32, nanoseconds: UInt32) {
        self.bytes.append(0xD7)
        self.bytes.append(0x00)
        self.appendBigEndian(seconds)
        self.appendBigEndian(nanoseconds)
    }

    public mutating func writeEventTime(_ time: EventTime) {
        self.writeEventTime(seconds: time.seconds, nanoseconds: time.nanoseconds)
    }

    /// Writes an extension value of `type` in its smallest form (fixext when the size allows).
    public mutating func writeExtension(type: Int8, data: [UInt8]) {
        switch data.count {
        case 1: self.bytes.append(0xD4)
        case 2: self.bytes.append(0xD5)
        case 4: self.bytes.append(0xD6)
        case 8: self.bytes.append(0xD7)
        case 16: self.bytes.append(0xD8)
        case ..<0x100:
            self.bytes.append(0xC7)
            self.bytes.append(UInt8(data.count))
        case ..<0x1_0000:
            self.bytes.append(0xC8)
            self.appendBigEndian(UInt16(data.count))
        default:
            self.bytes.append(0xC9)
            self.appendBigEndian(UInt32(data.count))
        }
        self.bytes.append(UInt8(bitPattern: type))
        self.bytes.append(contentsOf: data)
    }

    private mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { self.bytes.append(contentsOf: $0) }
    }
}
