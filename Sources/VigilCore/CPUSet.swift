import CThreads

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A set of CPUs that threads may run on (`sched_setaffinity(2)`), of up to `CPU_SETSIZE` (1024) CPUs.
public struct CPUSet: Sendable, Equatable {
    private var bits = cpu_set_t()

    /// The set of the listed CPUs.
    public init(_ cpus: some Sequence<Int>) {
        withUnsafeMutableBytes(of: &self.bits) { bytes in
            for cpu in cpus where cpu >= 0 && cpu < bytes.count * 8 {
                bytes[cpu / 8] |= 1 << UInt8(cpu % 8)
            }
        }
    }

    private init(bits: cpu_set_t) {
        self.bits = bits
    }

    /// The CPUs the calling thread may run on; nil when the kernel does not say (more CPUs than the set
    /// holds).
    public static func ofCurrentThread() -> CPUSet? {
        Self.of(thread: 0)
    }

    /// The CPUs vigil was started with (its unit's `CPUAffinity=`, its cgroup's cpuset): those of the
    /// process's main thread, which vigil never confines.
    public static func ofProcess() -> CPUSet? {
        Self.of(thread: getpid())
    }

    private static func of(thread: pid_t) -> CPUSet? {
        var bits = cpu_set_t()
        guard sched_getaffinity(thread, MemoryLayout<cpu_set_t>.size, &bits) == 0 else { return nil }
        return CPUSet(bits: bits)
    }

    /// The CPUs in the set, in ascending order.
    public var cpus: [Int] {
        withUnsafeBytes(of: self.bits) { bytes in
            (0..<bytes.count * 8).filter { bytes[$0 / 8] & (1 << UInt8($0 % 8)) != 0 }
        }
    }

    /// The set of its first `count` CPUs; nil when `count` is 0 or the set has no more than `count`
    /// (nothing to confine).
    public func first(_ count: Int) -> CPUSet? {
        let cpus = self.cpus
        guard count > 0, count < cpus.count else { return nil }
        return CPUSet(cpus.prefix(count))
    }

    /// Makes the calling thread run on these CPUs only. Fails (returning the errno) when none of them
    /// is allowed to the process any more (its cpuset changed), which leaves the thread where it was.
    @discardableResult
    public func confineCurrentThread() -> Int32? {
        var bits = self.bits
        return sched_setaffinity(0, MemoryLayout<cpu_set_t>.size, &bits) == 0 ? nil : errno
    }

    public static func == (lhs: CPUSet, rhs: CPUSet) -> Bool {
        withUnsafeBytes(of: lhs.bits) { left in withUnsafeBytes(of: rhs.bits) { right in left.elementsEqual(right) } }
    }
}
