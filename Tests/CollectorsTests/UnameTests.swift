import Testing
import VigilCore

@testable import Collectors

@Suite struct UnameTests {
    /// The kernel publishes the same strings under /proc/sys/kernel: a second source to check against.
    @Test func labelsAreTheKernelsUtsname() throws {
        let collected = try collect(UnameCollector.descriptor, roots: PathRoots())
        let reader = FileReader()
        func kernel(_ name: String) throws -> String { try reader.readTrimmed("/proc/sys/kernel/" + name).string }
        let labels = [
            "sysname": try kernel("ostype"),
            "release": try kernel("osrelease"),
            "version": try kernel("version"),
            "nodename": try kernel("hostname"),
            "domainname": try kernel("domainname"),
        ]
        #expect(collected.value("node_uname_info", labels) == 1)
        let sample = try #require(collected[family: "node_uname_info"]?.samples.first)
        #expect(sample.labels.map(\.name) == ["domainname", "machine", "nodename", "release", "sysname", "version"])
        #expect(["x86_64", "aarch64", "armv7l", "ppc64le", "s390x", "riscv64"].contains(sample[label: "machine"]!))
        #expect(
            collected[family: "node_uname_info"]?.help
                == "Labeled system information as provided by the uname system call."
        )
    }
}
