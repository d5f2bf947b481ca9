import Testing
import VigilCore

@testable import Collectors

@Suite struct IPVSTests {
    /// Two TCP virtual servers, a UDP one and one by firewall mark.
    @Test func matchesNodeExporterOnTheFixtureServers() throws {
        let collected = try collect(IPVSCollector.descriptor, roots: fixtureRoots("ipvs"))
        expectSameFamilies(collected.families, try golden("ipvs"))
        #expect(collected.failures.isEmpty)
    }

    /// IPv6 addresses are written in full with brackets; an SCTP virtual server's backends are its own
    /// (node_exporter 1.5.0 skips the SCTP line and counts them under the server before it).
    @Test func ipv6AndSCTPServers() {
        let (backends, broken) = parseIPVSBackends(
            ArraySlice(
                """
                TCP  [2620:0000:0abc:0000:0000:0000:0000:0001]:0050 sh
                  -> [2620:0000:0abc:0000:0000:0000:0000:0002]:0050      Route   1      0          0
                SCTP  C0A80040:0BB8 rr
                  -> C0A83315:0BB8      Masq    1      3          0
                """.utf8
            )
        )
        #expect(broken.isEmpty)
        #expect(
            backends.map { [$0.proto, $0.localAddress, String($0.localPort), $0.remoteAddress] } == [
                ["TCP", "2620:0:abc::1", "80", "2620:0:abc::2"], ["SCTP", "192.168.0.64", "3000", "192.168.51.21"],
            ]
        )
        #expect(backends.last?.activeConnections == 3)
    }

    @Test func backendsDifferingOnlyInLabelsLeftOutAreSummed() throws {
        let collected = try collect(
            IPVSCollector.descriptor,
            roots: fixtureRoots("ipvs"),
            settings: ["collector.ipvs.backend-labels": .string("local_port,local_address")]
        )
        let active = try #require(collected[family: "node_ipvs_backend_connections_active"]).samples
        #expect(active.allSatisfy { Set($0.labels.map(\.name)) == ["local_address", "local_port"] })
        #expect(collected.value("node_ipvs_backend_connections_active", ["local_address": "192.168.0.22"]) == 744)
        #expect(
            collected.value(
                "node_ipvs_backend_connections_inactive",
                ["local_address": "192.168.0.57", "local_port": "3306"]
            ) == 0
        )
        #expect(collected.value("node_ipvs_backend_weight", ["local_address": "", "local_port": "0"]) == 0)
        #expect(active.count == 4)
    }

    @Test func anUnknownBackendLabelIsAConfigurationError() {
        #expect {
            try makeCollector(
                IPVSCollector.descriptor,
                roots: fixtureRoots("ipvs"),
                settings: ["collector.ipvs.backend-labels": .string("local_address,vip")]
            )
        } throws: { error in
            "\(error)".contains("collector.ipvs.backend-labels")
                && "\(error)".contains("unknown IPVS backend labels: vip")
        }
    }

    @Test func aLineThatCannotBeReadCostsOnlyItsOwnSeries() {
        let (backends, broken) = parseIPVSBackends(
            ArraySlice(
                """
                TCP  C0A8001:0CEA wlc
                  -> C0A85216:0CEA      Tunnel  100    248        2
                TCP  C0A80016:0CEA wlc
                  -> C0A85216:0CEA      Tunnel  100    x        2
                  -> C0A85217:0CEA      Tunnel  100    7        2
                """.utf8
            )
        )
        #expect(backends.map(\.remoteAddress) == ["192.168.82.23"])
        #expect(broken.count == 2)
    }

    @Test func ipv6AddressesAreWrittenAsGoWritesThem() {
        func format(_ text: String) -> String {
            formatIPv6(text.split(separator: ":", omittingEmptySubsequences: false).map { UInt16($0, radix: 16)! })
        }
        #expect(format("0:0:0:0:0:0:0:1") == "::1")
        #expect(format("0:0:0:0:0:0:0:0") == "::")
        #expect(format("2001:db8:0:0:0:0:0:1") == "2001:db8::1")
        #expect(format("2001:db8:0:1:1:1:1:1") == "2001:db8:0:1:1:1:1:1")
        #expect(format("2001:0:0:1:0:0:0:1") == "2001:0:0:1::1")
        #expect(format("1:0:0:1:0:0:1:1") == "1::1:0:0:1:1")
        #expect(format("fe80:0:0:0:0:0:0:0") == "fe80::")
        #expect(format("0:0:0:0:0:ffff:c0a8:1") == "192.168.0.1")
    }

    @Test func noIPVSModuleIsNoData() throws {
        expectNoData(IPVSCollector.descriptor, roots: fixtureRoots("debian12"))
    }
}
