import Testing
import VigilCore

@testable import Collectors

@Suite struct CpufreqTests {
    /// Three CPUs with intel_pstate, cpu2 without a cpufreq directory; only cpu0 has `cpuinfo_cur_freq`.
    @Test func matchesNodeExporterOnTheFixtureCPUs() throws {
        let collected = try collect(CpufreqCollector.descriptor, roots: fixtureRoots("cpufreq"))
        expectSameFamilies(collected.families, try golden("cpufreq"))
        #expect(collected.failures.isEmpty)
    }

    @Test func offlineCPUsAndUnreadableValuesAreLeftOut() throws {
        var files = ["sys/devices/system/cpu/offline": "1\n"]
        for cpu in 0...2 {
            files["sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_cur_freq"] = cpu == 2 ? "garbage\n" : "1000\n"
            files["sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_max_freq"] = "2000\n"
        }
        let tree = try TemporaryTree(files: files)
        let collected = try collect(CpufreqCollector.descriptor, roots: tree.roots)
        let current = collected[family: "node_cpu_scaling_frequency_hertz"]?.samples
        #expect(current?.map { $0[label: "cpu"]! } == ["0"])
        #expect(current?.first?.value == 1_000_000)
        #expect(
            collected[family: "node_cpu_scaling_frequency_max_hertz"]?.samples.map { $0[label: "cpu"]! } == ["0", "2"]
        )
        #expect(collected.failures.count == 1)
    }

    /// The quick check for a driver looks at CPU 0 and the policies: a host whose CPU 0 has none (an
    /// offline CPU 0) still has its other CPUs' frequencies.
    @Test func cpusBesidesCPU0AreFoundThroughThePolicies() throws {
        let tree = try TemporaryTree(files: [
            "sys/devices/system/cpu/cpu0/online": "0\n",
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq": "1500\n",
            "sys/devices/system/cpu/cpufreq/policy1/scaling_cur_freq": "1500\n",
        ])
        let collected = try collect(CpufreqCollector.descriptor, roots: tree.roots)
        #expect(collected.value("node_cpu_scaling_frequency_hertz", ["cpu": "1"]) == 1_500_000)
    }

    @Test func noCpufreqDriverGivesNoSeries() throws {
        let collected = try collect(CpufreqCollector.descriptor, roots: fixtureRoots("debian12"))
        #expect(collected.families.isEmpty)
        #expect(collected.failures.isEmpty)
    }
}
