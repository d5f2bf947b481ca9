import Testing
import VigilCore

@testable import Collectors

@Suite struct NFSTests {
    /// A recent kernel's file: no `proc2` line (no NFSv2), 69 NFSv4 procedures of which node_exporter
    /// names the first 59.
    @Test func matchesNodeExporterOnARecentKernel() throws {
        let collected = try collect(NFSCollector.descriptor, roots: fixtureRoots("nfs"))
        expectSameFamilies(collected.families, try golden("nfs"))
        #expect(collected.failures.isEmpty)
        #expect(collected.value("node_nfs_requests_total", ["proto": "3", "method": "Read"]) == 238_530)
        #expect(collected.value("node_nfs_requests_total", ["proto": "2", "method": "Read"]) == 0)
    }

    @Test func fewerVersion4ProceduresCountAsZeros() {
        let statistics = parseNFSClientStatistics(
            ArraySlice("proc2 18 \(Array(repeating: "1", count: 18).joined(separator: " "))\nproc4 3 5 6 7\n".utf8)
        )
        #expect(statistics.procedures["2"] == Array(repeating: 1, count: 18))
        #expect(statistics.procedures["4"] == [5, 6, 7] + Array(repeating: 0, count: 56))
        #expect(statistics.broken.isEmpty)
    }

    @Test func aLineThatCannotBeReadCostsOnlyItsOwnSeries() throws {
        let tree = try TemporaryTree(files: [
            "proc/net/rpc/nfs": """
            net 10 0 10 2
            rpc 7 1
            proc3 22 1 2 x
            proc4 2 4 5
            xprt future line
            """
        ])
        let collected = try collect(NFSCollector.descriptor, roots: tree.roots)
        #expect(collected.value("node_nfs_connections_total") == 2)
        #expect(collected[family: "node_nfs_rpcs_total"] == nil)
        let versions = Set(collected[family: "node_nfs_requests_total"]?.samples.map { $0[label: "proto"]! } ?? [])
        #expect(versions == ["2", "4"])
        #expect(collected.value("node_nfs_requests_total", ["proto": "4", "method": "Read"]) == 5)
        #expect(collected.failures.count == 2)  // rpc and proc3; the unknown `xprt` line is ignored
    }

    @Test func noNFSClientIsNoData() throws {
        expectNoData(NFSCollector.descriptor, roots: fixtureRoots("debian12"))
    }
}
