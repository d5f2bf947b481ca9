import Testing
import VigilForward

@Suite struct SHA512Tests {
    // FIPS 180-4 example messages (NIST CSRC "SHA-512" examples) and their digests.
    @Test(
        arguments: [
            (
                "abc",
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
            ),
            (
                "",
                "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
            ),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c33596fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445"
            ),
            (
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"
            ),
        ]
    )
    func matchesFIPSVectors(_ message: String, _ digest: String) {
        #expect(SHA512.hex(SHA512.hash(Array(message.utf8))) == digest)
    }

    @Test func millionAs() {
        let expected =
            "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b"
        #expect(SHA512.hex(SHA512.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))) == expected)
    }

    /// Every padding boundary (111, 112, 127, 128 bytes …) and every way of splitting the input agrees
    /// with the one-shot digest.
    @Test func incrementalUpdatesMatchOneShot() {
        let message = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for length in [0, 1, 111, 112, 113, 127, 128, 129, 239, 240, 256, 300] {
            let whole = SHA512.hash(Array(message.prefix(length)))
            for split in stride(from: 0, through: length, by: 37) {
                var hasher = SHA512()
                hasher.update(message[0..<split])
                hasher.update(message[split..<length])
                #expect(hasher.finalize() == whole, "length \(length) split at \(split)")
            }
        }
    }
}
