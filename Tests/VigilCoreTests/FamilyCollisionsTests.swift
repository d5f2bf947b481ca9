import Testing

@testable import VigilCore

@Suite struct FamilyCollisionsTests {
    private static let text = Array(
        """
        # HELP a_total A.
        # TYPE a_total counter
        a_total{x="# HELP not_a_family"} 1
        # HELP b B.
        # TYPE b gauge
        b 2
        # HELP c C.
        # TYPE c gauge
        c 3

        """.utf8
    )

    @Test func namesAreThoseOfTheHelpLines() {
        #expect(
            FamilyCollisions.names(in: Self.text).map { String(decoding: $0, as: UTF8.self) } == ["a_total", "b", "c"]
        )
        #expect(FamilyCollisions.names(in: []).isEmpty)
    }

    @Test func findsDeclaredNamesOnHelpLinesOnly() {
        let wanted: Set<ArraySlice<UInt8>> = [
            ArraySlice("b".utf8), ArraySlice("not_a_family".utf8), ArraySlice("a".utf8), ArraySlice("zz".utf8),
        ]
        #expect(FamilyCollisions.declared(wanted, in: Self.text).map { String(decoding: $0, as: UTF8.self) } == ["b"])
        #expect(FamilyCollisions.declared(wanted, in: Array("# HELP b".utf8)).count == 1)
        #expect(FamilyCollisions.declared(wanted, in: Array("# HELP ".utf8)).isEmpty)
        #expect(FamilyCollisions.declared(wanted, in: []).isEmpty)
        #expect(FamilyCollisions.declared([], in: Self.text).isEmpty)
    }

    @Test func removesWholeFamiliesOnly() {
        let result = FamilyCollisions.removing(from: Self.text) { $0.elementsEqual("b".utf8) }
        #expect(result.removed == ["b"])
        #expect(
            String(decoding: result.bytes, as: UTF8.self) == """
                # HELP a_total A.
                # TYPE a_total counter
                a_total{x="# HELP not_a_family"} 1
                # HELP c C.
                # TYPE c gauge
                c 3

                """
        )
        let last = FamilyCollisions.removing(from: Self.text) { $0.elementsEqual("c".utf8) }
        #expect(String(decoding: last.bytes, as: UTF8.self).hasSuffix("b 2\n"))
    }
}
