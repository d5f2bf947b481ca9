/// The forward protocol's EventTime: seconds and nanoseconds since the epoch, MessagePack ext type 0.
public struct EventTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var seconds: UInt32
    public var nanoseconds: UInt32

    public init(seconds: UInt32, nanoseconds: UInt32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// From a journal timestamp (`__REALTIME_TIMESTAMP`, microseconds since the epoch).
    public init(microseconds: UInt64) {
        self.seconds = UInt32(truncatingIfNeeded: microseconds / 1_000_000)
        self.nanoseconds = UInt32(microseconds % 1_000_000) * 1000
    }

    public static func < (lhs: EventTime, rhs: EventTime) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    public var description: String {
        let fraction = String(self.nanoseconds)
        return "\(self.seconds).\(String(repeating: "0", count: 9 - fraction.count))\(fraction)"
    }
}
