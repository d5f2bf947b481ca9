import Testing
import VigilCore

@testable import Collectors

@Suite struct VmstatTests {
    @Test func reportsTheSelectedFieldsOfARecordedHost() throws {
        let collected = try collect(VmstatCollector.descriptor, roots: fixtureRoots("debian12"))
        let selected = try Regex("^(oom_kill|pgpg|pswp|pg.*fault).*")
        var expected: [String: Double] = [:]
        for line in try fixtureText("debian12/proc/vmstat").split(separator: "\n") {
            let fields = line.split(separator: " ")
            if (try selected.firstMatch(in: String(fields[0]))) != nil {
                expected["node_vmstat_" + fields[0]] = Double(fields[1])
            }
        }
        #expect(expected.count >= 7)
        #expect(Set(collected.families.map(\.name)) == Set(expected.keys))
        for (family, value) in expected {
            #expect(collected.value(family) == value, "\(family)")
            #expect(collected[family: family]?.type == "untyped")
        }
        #expect(collected[family: "node_vmstat_pgfault"]?.help == "/proc/vmstat information field pgfault.")
    }

    @Test(arguments: ["debian12", "handmade"])
    func matchesNodeExporter(tree: String) throws {
        let collected = try collect(VmstatCollector.descriptor, roots: fixtureRoots(tree))
        expectSameFamilies(collected.families, try golden("\(tree)-vmstat"))
    }

    @Test func fieldsAreChosenByRegularExpression() throws {
        let collected = try collect(
            VmstatCollector.descriptor,
            roots: fixtureRoots("handmade"),
            settings: ["collector.vmstat.fields": .regex("^nr_|free")]
        )
        #expect(collected.families.map(\.name) == ["node_vmstat_nr_free_pages", "node_vmstat_pgfree"])
        #expect(throws: ConfigurationError.self) {
            try collect(
                VmstatCollector.descriptor,
                roots: fixtureRoots("handmade"),
                settings: ["collector.vmstat.fields": .regex("(")]
            )
        }
    }

    @Test func followsAChangingFieldList() throws {
        let tree = try TemporaryTree(files: [:])
        let collector = try makeCollector(
            VmstatCollector.descriptor,
            roots: tree.roots,
            settings: ["collector.vmstat.fields": .regex("^pg")]
        )
        func families(_ vmstat: String) throws -> (names: [String], failures: Int) {
            try tree.write("proc/vmstat", vmstat)
            let collected = try collect(collector, roots: tree.roots)
            return (collected.families.map { "\($0.name)=\($0.samples[0].value)" }, collected.failures.count)
        }
        #expect(try families("pgin 1\nnr_x 2\npgout 3\n").names == ["node_vmstat_pgin=1.0", "node_vmstat_pgout=3.0"])
        #expect(try families("pgin 4\nnr_x 5\npgout 6\n").names == ["node_vmstat_pgin=4.0", "node_vmstat_pgout=6.0"])
        // Other fields from the middle on, then fewer lines: what was remembered there is decided again.
        #expect(try families("pgin 9\npgmid 1\npgout 10\n").names.count == 3)
        #expect(try families("pgin 9\nnr_x 1\n").names == ["node_vmstat_pgin=9.0"])
        // A kernel with other fields: the decisions remembered follow the names, not the positions.
        #expect(try families("nr_y 1\npgin 7\npgnew 8\n").names == ["node_vmstat_pgin=7.0", "node_vmstat_pgnew=8.0"])
        // Garbage: a value that is not a number, a name that is not a metric name, a repeated field.
        let odd = try families("pgin x\npg-bad 1\npgout 18446744073709551615\npgout 2\n\npgmore\n")
        #expect(odd.names == ["node_vmstat_pgout=1.8446744073709552e+19"])
        #expect(odd.failures == 1)
        #expect(try families("").names == [])
    }
}
