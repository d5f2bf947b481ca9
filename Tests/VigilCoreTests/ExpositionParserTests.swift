import Testing
import VigilCore

@Suite struct ExpositionParserTests {
    @Test func readsFamiliesSamplesAndTimestamps() throws {
        let families = try parseExposition(
            """
            # HELP requests_total Requests.
            # TYPE requests_total counter
            requests_total{code="200",path="/"} 10
            requests_total{code="500",path="/"} 1 1700000000000
            # A comment that is neither HELP nor TYPE
            untyped_metric 3.5e+06

            """
        )
        #expect(families.map(\.name) == ["requests_total", "untyped_metric"])
        #expect(families[0].type == "counter")
        #expect(families[0].samples[1].timestamp == 1_700_000_000_000)
        #expect(families[1].samples[0].value == 3_500_000)
    }

    @Test func groupsHistogramSamplesIntoTheirFamily() throws {
        let families = try parseExposition(
            """
            # TYPE latency histogram
            latency_bucket{le="0.1"} 1
            latency_bucket{le="+Inf"} 2
            latency_sum 0.3
            latency_count 2

            """
        )
        #expect(families.count == 1)
        #expect(families[0].samples.count == 4)
        #expect(families[0].samples[1].value == 2)
    }

    @Test(arguments: [
        ("metric{label=\"unterminated} 1", 1),
        ("# TYPE m counter\nm 1\n# TYPE m counter", 3),
        ("m 1\n# TYPE m gauge", 2),
        ("m not-a-number", 1),
        ("m{1abc=\"x\"} 1", 1),
        ("m 1 2 3", 1),
        ("# TYPE m nonsense", 1),
        ("m{a=\"1\",a=\"2\"} 1", 1),
    ])
    func reportsSyntaxErrorsWithTheirLine(_ text: String, _ line: Int) {
        #expect {
            _ = try parseExposition(text)
        } throws: { error in
            (error as? ExpositionSyntaxError)?.line == line
        }
    }
}
