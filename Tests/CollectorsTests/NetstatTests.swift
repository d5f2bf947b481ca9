import Testing
import VigilCore

@testable import Collectors

@Suite struct NetstatTests {
    /// Every `Proto_Field` of a tree's netstat, snmp and snmp6 files with its value, worked out here.
    private func statistics(_ tree: String) throws -> [String: Double] {
        var result: [String: Double] = [:]
        for file in ["proc/net/netstat", "proc/net/snmp"] {
            let lines = try fixtureText(tree + "/" + file).split(separator: "\n")
            for pair in stride(from: 0, to: lines.count - 1, by: 2) {
                let names = words(lines[pair])
                let values = words(lines[pair + 1])
                let proto = names[0].dropLast()
                for (name, value) in zip(names.dropFirst(), values.dropFirst()) {
                    result["\(proto)_\(name)"] = Double(value)
                }
            }
        }
        for line in (try? fixtureText(tree + "/proc/net/snmp6"))?.split(separator: "\n") ?? [] {
            let parts = words(line)
            let six = parts[0].firstIndex(of: "6")!
            result["\(parts[0][...six])_\(parts[0][parts[0].index(after: six)...])"] = Double(parts[1])
        }
        return result
    }

    private let defaultFields = try! Regex(
        "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
    )

    @Test func collectsTheSelectedFieldsOfARecordedHost() throws {
        let collected = try collect(NetstatCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.failures.isEmpty)
        let expected = try self.statistics("debian12").filter {
            (try? self.defaultFields.wholeMatch(in: $0.key)) != nil
        }
        #expect(expected.count > 30)
        #expect(Set(collected.families.map(\.name)) == Set(expected.keys.map { "node_netstat_" + $0 }))
        for (key, value) in expected {
            #expect(collected.value("node_netstat_" + key) == value, "\(key)")
            #expect(collected[family: "node_netstat_" + key]?.type == "untyped")
            #expect(collected[family: "node_netstat_" + key]?.help == "Statistic \(key.replacing("_", with: "")).")
        }
    }

    @Test func matchesNodeExporter() throws {
        let collected = try collect(NetstatCollector.descriptor, roots: fixtureRoots("debian12"))
        // 1.12.1's default fields (the reference) add these two to 1.5.0's.
        let newer: Set = ["node_netstat_TcpExt_TCPOFOQueue", "node_netstat_TcpExt_TCPRcvQDrop"]
        #expect(newer.allSatisfy { collected[family: $0] != nil })
        expectSameFamilies(collected.families.dropping(newer), try golden("debian12-netstat"))
    }

    @Test func theFieldsOptionSelects() throws {
        let collected = try collect(
            NetstatCollector.descriptor,
            roots: fixtureRoots("debian12"),
            settings: ["collector.netstat.fields": .regex(".*")]
        )
        let all = try self.statistics("debian12")
        #expect(collected.families.count == all.count)
        #expect(collected.value("node_netstat_Tcp_MaxConn") == all["Tcp_MaxConn"])
        #expect(all["Tcp_MaxConn"] == -1)
    }

    @Test func brokenLinesCostTheirOwnSamples() throws {
        let collected = try collect(
            NetstatCollector.descriptor,
            roots: fixtureRoots("net-odd"),
            settings: ["collector.netstat.fields": .regex(".*")]
        )
        // IpExt has more names than values, MPTcpExt no values line, Udp_InErrors is not a number;
        // there is no snmp6 (IPv6 disabled).
        #expect(collected.failures.count == 3)
        #expect(collected.failures.contains { $0.contains("IpExt") })
        #expect(collected.failures.contains { $0.contains("Udp_InErrors") })
        #expect(collected[family: "node_netstat_IpExt_InOctets"] == nil)
        #expect(collected.value("node_netstat_TcpExt_TCPTimeouts") == Double(UInt64.max))
        #expect(collected.value("node_netstat_Ip_InReceives") == 9_007_199_254_740_992)
        #expect(collected.value("node_netstat_Tcp_MaxConn") == -1)
        #expect(collected.value("node_netstat_Udp_NoPorts") == 6)
        #expect(collected[family: "node_netstat_Udp_InErrors"] == nil)
        #expect(!collected.families.contains { $0.name.hasPrefix("node_netstat_Ip6") })
        #expect(collected.families.count == 4 + 4 + 4 + 2)
    }

    @Test func shapesDifferOnlyWhenTheNamesDo() {
        func shape(_ files: String...) -> [UInt8] {
            var shape = NumberShape()
            for file in files { shape.append(file: ArraySlice(file.utf8)) }
            return shape.bytes
        }
        #expect(shape("Tcp: A B\nTcp: 1 2\n") == shape("Tcp:  A B\nTcp: 100 -2"))
        #expect(shape("Tcp: A B\nTcp: 1 2\n") != shape("Tcp: A C\nTcp: 1 2\n"))
        #expect(shape("Tcp: A B\n", "Tcp: 1 2\n") != shape("Tcp: A B\nTcp: 1 2\n"))
        // A name that looks like the number placeholder stays apart from a number.
        #expect(shape("x # 1") != shape("x 2 1"))
        #expect(shape("", "a 1") != shape("a 1", ""))
    }
}
