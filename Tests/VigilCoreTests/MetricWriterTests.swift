import Testing
import VigilCore

@Suite struct MetricWriterTests {
    @Test func writesHelpTypeAndLabelledSamples() {
        var writer = MetricWriter(format: .text)
        writer.family("node_cpu_seconds_total", help: "Seconds the CPUs spent in each mode.", type: .counter)
        writer.sample(12.5, ("cpu", "0"), ("mode", "user"))
        writer.family("node_load1", help: "1m load average.", type: .gauge)
        writer.sample(0.25)
        writer.finish()
        #expect(
            String(decoding: writer.takeBytes(), as: UTF8.self) == """
                # HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
                # TYPE node_cpu_seconds_total counter
                node_cpu_seconds_total{cpu="0",mode="user"} 12.5
                # HELP node_load1 1m load average.
                # TYPE node_load1 gauge
                node_load1 0.25

                """
        )
    }

    /// A scrape's buffers come back from the last one: writing into one must not put it aside for new
    /// storage (garbage of every collector's output size, at every scrape).
    @Test func writesIntoTheBufferItReuses() {
        var buffer = [UInt8](repeating: UInt8(ascii: "x"), count: 100)
        buffer.reserveCapacity(4096)
        let storage = buffer.withUnsafeBufferPointer { $0.baseAddress }
        var writer = MetricWriter(format: .text, reusing: consume buffer)
        writer.family("node_load1", help: "1m load average.", type: .gauge)
        writer.sample(0.25)
        let bytes = writer.takeBytes()
        #expect(bytes.withUnsafeBufferPointer { $0.baseAddress } == storage)
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("# HELP node_load1 "))
    }

    @Test func writesSummariesAndSuffixedSamplesWithRunTimeLabels() throws {
        var writer = MetricWriter(format: .text)
        writer.family("rpc_seconds", help: "RPC latency.", type: .summary)
        writer.sample(0.25, dynamicLabels: [("job", "a"), ("quantile", "0.5")])
        writer.sample(suffix: "_sum", 12, dynamicLabels: [("job", "a")])
        writer.sample(suffix: "_count", 40, dynamicLabels: [("job", "a")])
        let text = String(decoding: writer.takeBytes(), as: UTF8.self)
        #expect(
            text == """
                # HELP rpc_seconds RPC latency.
                # TYPE rpc_seconds summary
                rpc_seconds{job="a",quantile="0.5"} 0.25
                rpc_seconds_sum{job="a"} 12
                rpc_seconds_count{job="a"} 40

                """
        )
        let family = try #require(try parseExposition(text).first)
        #expect(family.type == "summary" && family.samples.count == 3)
    }

    @Test func escapesLabelValuesAndHelp() throws {
        var writer = MetricWriter(format: .text)
        writer.family("x", help: "back\\slash and\nnewline", type: .untyped)
        writer.sample(1, ("path", "C:\\dir \"quoted\"\nnext"))
        let text = String(decoding: writer.takeBytes(), as: UTF8.self)
        #expect(text.contains(#"# HELP x back\\slash and\nnewline"#))
        #expect(text.contains(#"x{path="C:\\dir \"quoted\"\nnext"} 1"#))
        let parsed = try parseExposition(text)
        #expect(parsed[0].samples[0][label: "path"] == "C:\\dir \"quoted\"\nnext")
        #expect(parsed[0].help == "back\\slash and\nnewline")
    }

    @Test func invalidUTF8InFileBytesStaysValidText() {
        var writer = MetricWriter(format: .text)
        writer.family("x", help: "h", type: .gauge)
        writer.sample(1, ("device", ArraySlice<UInt8>([0x65, 0xFF, 0x66])))
        let text = String(decoding: writer.takeBytes(), as: UTF8.self)
        #expect(text.contains("x{device=\"e\u{FFFD}f\"} 1"))
    }

    @Test func openMetricsNamesCountersWithoutTotalAndEndsWithEOF() {
        var writer = MetricWriter(format: .openMetrics)
        writer.family("node_forks_total", help: "Total number of forks.", type: .counter)
        writer.sample(7)
        writer.family("node_netstat_Tcp_CurrEstab", help: "Statistic TcpCurrEstab.", type: .untyped)
        writer.sample(3)
        writer.family("odd_counter", help: "A counter without _total.", type: .counter)
        writer.sample(1)
        writer.finish()
        #expect(
            String(decoding: writer.takeBytes(), as: UTF8.self) == """
                # HELP node_forks Total number of forks.
                # TYPE node_forks counter
                node_forks_total 7
                # HELP node_netstat_Tcp_CurrEstab Statistic TcpCurrEstab.
                # TYPE node_netstat_Tcp_CurrEstab unknown
                node_netstat_Tcp_CurrEstab 3
                # HELP odd_counter A counter without _total.
                # TYPE odd_counter unknown
                odd_counter 1
                # EOF

                """
        )
    }

    @Test(
        arguments: [
            (nil, ExpositionFormat.text),
            ("text/plain;version=0.0.4", .text),
            ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", .openMetrics),
            ("application/openmetrics-text; version=0.0.1; q=0.75, text/plain;q=0.5", .openMetrics),
            ("application/openmetrics-text;q=0, text/plain", .text),
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", .text),
        ] as [(String?, ExpositionFormat)]
    )
    func negotiatesTheFormat(_ accept: String?, _ expected: ExpositionFormat) {
        #expect(ExpositionFormat.negotiate(accept: accept) == expected)
    }
}
