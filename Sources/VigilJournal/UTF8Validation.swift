/// Whether `bytes` are well-formed UTF-8 (no overlong forms, surrogates or code points above
/// U+10FFFF), the test that decides between msgpack `str` and `bin` for a journal value.
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    let count = bytes.count
    var index = 0
    while index < count {
        // ASCII runs, eight bytes at a time: most journal values are ASCII.
        while index + 8 <= count,
            base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
        {
            index += 8
        }
        guard index < count else { return true }
        let lead = base.load(fromByteOffset: index, as: UInt8.self)
        if lead < 0x80 {
            index += 1
            continue
        }
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            upper = 0x9F
        case 0xF0:
            length = 4
            lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            upper = 0x8F
        default: return false
        }
        guard index + length <= count else { return false }
        let second = base.load(fromByteOffset: index + 1, as: UInt8.self)
        guard second >= lower && second <= upper else { return false }
        var offset = 2
        while offset < length {
            guard base.load(fromByteOffset: index + offset, as: UInt8.self) & 0xC0 == 0x80 else { return false }
            offset += 1
        }
        index += length
    }
    return true
}
