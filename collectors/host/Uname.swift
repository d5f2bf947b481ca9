import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `node_uname_info`: the kernel's `uname(2)` as labels.
struct UnameCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "uname",
        enabledByDefault: true,
        help: "system information from uname(2)"
    ) { _ in
        UnameCollector()
    }

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        var names = utsname()
        guard uname(&names) == 0 else { throw CollectorError.failed("uname: errno \(errno)") }
        writer.family(unameFamily)
        writer.sample(
            1,
            ("domainname", utsField(names.__domainname)),
            ("machine", utsField(names.machine)),
            ("nodename", utsField(names.nodename)),
            ("release", utsField(names.release)),
            ("sysname", utsField(names.sysname)),
            ("version", utsField(names.version))
        )
    }
}

private let unameFamily = MetricFamily(
    "node_uname_info",
    help: "Labeled system information as provided by the uname system call.",
    type: .gauge
)

/// A NUL-terminated `utsname` field (a fixed-size C array imported as a tuple).
private func utsField<T>(_ field: T) -> String {
    withUnsafeBytes(of: field) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}
