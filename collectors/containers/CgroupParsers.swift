import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Pure parsers for the cgroup files the containers collector reads: bytes in, values out. A line that
// does not parse costs only its own value.

/// Calls `body` with each `key value` line of a flat-keyed file (`memory.stat`, `cpu.stat`,
/// `memory.events`, `memory.oom_control`, `cpuacct.stat`); lines whose value is not a number are
/// skipped. Scans the bytes in place: these files are read for every container at every scrape.
func forEachKeyedValue(_ bytes: ArraySlice<UInt8>, _ body: (UnsafeBufferPointer<UInt8>, UInt64) -> Void) {
    bytes.withUnsafeBufferPointer { buffer in
        var index = 0
        let end = buffer.count
        while index < end {
            let keyStart = index
            while index < end, buffer[index] != UInt8(ascii: " "), buffer[index] != UInt8(ascii: "\n") { index += 1 }
            let keyEnd = index
            while index < end, buffer[index] == UInt8(ascii: " ") { index += 1 }
            // The value is the next field, all digits; anything after it on the line is ignored.
            var value: UInt64 = 0
            var digits = 0
            var valid = true
            while index < end, buffer[index] != UInt8(ascii: " "), buffer[index] != UInt8(ascii: "\n") {
                let digit = buffer[index] &- UInt8(ascii: "0")
                if digit < 10, valid {
                    let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
                    valid = !overflow1 && !overflow2
                    value = sum
                    digits += 1
                } else {
                    valid = false
                }
                index += 1
            }
            while index < end, buffer[index] != UInt8(ascii: "\n") { index += 1 }
            index += 1
            if valid, digits > 0, keyEnd > keyStart {
                body(UnsafeBufferPointer(rebasing: buffer[keyStart..<keyEnd]), value)
            }
        }
    }
}

extension UnsafeBufferPointer<UInt8> {
    func equals(_ text: StaticString) -> Bool {
        text.withUTF8Buffer { $0.count == self.count && memcmp($0.baseAddress!, self.baseAddress!, self.count) == 0 }
    }

    func hasPrefix(_ text: StaticString) -> Bool {
        text.withUTF8Buffer { $0.count <= self.count && memcmp($0.baseAddress!, self.baseAddress!, $0.count) == 0 }
    }
}

/// The value of one key of a flat-keyed file.
func keyedValue(_ bytes: ArraySlice<UInt8>, _ wanted: StaticString) -> UInt64? {
    var found: UInt64?
    forEachKeyedValue(bytes) { key, value in
        if found == nil, key.equals(wanted) { found = value }
    }
    return found
}

/// A file holding one number; `max` (no limit) reads as `UInt64.max`.
func parseSingleValue(_ bytes: ArraySlice<UInt8>) -> UInt64? {
    let text = bytes.trimmed()
    if text.equals("max") { return .max }
    return text.parseUInt64()
}

/// A signed one-number file (`cpu.cfs_quota_us` is -1 without quota).
func parseSignedValue(_ bytes: ArraySlice<UInt8>) -> Int64? {
    bytes.trimmed().parseInt64()
}

/// CPU figures of `cpu.stat` (v2 in microseconds; v1 keeps only the CFS ones, in nanoseconds).
struct CPUStat: Equatable {
    var usageMicroseconds: UInt64?
    var userMicroseconds: UInt64?
    var systemMicroseconds: UInt64?
    var periods: UInt64?
    var throttledPeriods: UInt64?
    /// v2 `throttled_usec`.
    var throttledMicroseconds: UInt64?
    /// v1 `throttled_time`.
    var throttledNanoseconds: UInt64?
}

func parseCPUStat(_ bytes: ArraySlice<UInt8>) -> CPUStat {
    var stat = CPUStat()
    forEachKeyedValue(bytes) { key, value in
        if key.equals("usage_usec") {
            stat.usageMicroseconds = value
        } else if key.equals("user_usec") {
            stat.userMicroseconds = value
        } else if key.equals("system_usec") {
            stat.systemMicroseconds = value
        } else if key.equals("nr_periods") {
            stat.periods = value
        } else if key.equals("nr_throttled") {
            stat.throttledPeriods = value
        } else if key.equals("throttled_usec") {
            stat.throttledMicroseconds = value
        } else if key.equals("throttled_time") {
            stat.throttledNanoseconds = value
        }
    }
    return stat
}

/// The memory.stat keys the collector uses, in both versions' spellings.
struct MemoryStatFile: Equatable {
    // v1 per-cgroup and hierarchical (`total_`) values
    var cache: UInt64?
    var rss: UInt64?
    var mappedFile: UInt64?
    var swap: UInt64?
    var totalCache: UInt64?
    var totalRSS: UInt64?
    var totalMappedFile: UInt64?
    var totalSwap: UInt64?
    var totalActiveFile: UInt64?
    var totalInactiveFile: UInt64?
    var totalPgfault: UInt64?
    var totalPgmajfault: UInt64?
    // v2
    var anon: UInt64?
    var file: UInt64?
    var fileMapped: UInt64?
    // both
    var activeFile: UInt64?
    var inactiveFile: UInt64?
    var pgfault: UInt64?
    var pgmajfault: UInt64?
}

func parseMemoryStat(_ bytes: ArraySlice<UInt8>) -> MemoryStatFile {
    var stat = MemoryStatFile()
    forEachKeyedValue(bytes) { key, value in
        if key.hasPrefix("total_") {
            let rest = UnsafeBufferPointer(rebasing: key.dropFirst(6))
            if rest.equals("cache") {
                stat.totalCache = value
            } else if rest.equals("rss") {
                stat.totalRSS = value
            } else if rest.equals("mapped_file") {
                stat.totalMappedFile = value
            } else if rest.equals("swap") {
                stat.totalSwap = value
            } else if rest.equals("active_file") {
                stat.totalActiveFile = value
            } else if rest.equals("inactive_file") {
                stat.totalInactiveFile = value
            } else if rest.equals("pgfault") {
                stat.totalPgfault = value
            } else if rest.equals("pgmajfault") {
                stat.totalPgmajfault = value
            }
        } else if key.equals("cache") {
            stat.cache = value
        } else if key.equals("rss") {
            stat.rss = value
        } else if key.equals("mapped_file") {
            stat.mappedFile = value
        } else if key.equals("swap") {
            stat.swap = value
        } else if key.equals("anon") {
            stat.anon = value
        } else if key.equals("file") {
            stat.file = value
        } else if key.equals("file_mapped") {
            stat.fileMapped = value
        } else if key.equals("active_file") {
            stat.activeFile = value
        } else if key.equals("inactive_file") {
            stat.inactiveFile = value
        } else if key.equals("pgfault") {
            stat.pgfault = value
        } else if key.equals("pgmajfault") {
            stat.pgmajfault = value
        }
    }
    return stat
}

/// cAdvisor's working set: usage minus inactive file pages, never below zero; usage itself when the
/// inactive figure is missing.
func workingSet(usage: UInt64, inactiveFile: UInt64?) -> UInt64 {
    guard let inactiveFile else { return usage }
    return usage < inactiveFile ? 0 : usage - inactiveFile
}

/// The `total=` microseconds of a PSI file's `some` and `full` lines.
struct PressureTotals: Equatable {
    var some: UInt64?
    var full: UInt64?
}

func parsePressure(_ bytes: ArraySlice<UInt8>) -> PressureTotals {
    var totals = PressureTotals()
    for line in bytes.lines {
        var fields = line.fields
        guard let kind = fields.next() else { continue }
        var total: UInt64?
        while let field = fields.next() {
            if field.hasPrefix("total=") { total = field.dropFirst(6).parseUInt64() }
        }
        if kind.equals("some") {
            totals.some = total
        } else if kind.equals("full") {
            totals.full = total
        }
    }
    return totals
}

/// The operations blkio files count, and `io.stat`'s read and write mapped onto them.
enum IOOperation: String, CaseIterable, Sendable {
    case read = "Read"
    case write = "Write"
    case sync = "Sync"
    case async = "Async"
    case discard = "Discard"
    case total = "Total"

    init?(_ bytes: ArraySlice<UInt8>) {
        guard let operation = Self.allCases.first(where: { bytes.equals($0.rawValue) }) else { return nil }
        self = operation
    }
}

/// One `major:minor operation value` figure of a blkio file, or one of `io.stat`.
struct IOEntry: Equatable, Sendable {
    var major: UInt32
    var minor: UInt32
    var operation: IOOperation
    var value: UInt64
}

/// Parses a v1 blkio file (`8:0 Read 4096`); the `Total` summary line and unknown operations are skipped.
func parseBlkio(_ bytes: ArraySlice<UInt8>) -> [IOEntry] {
    var entries: [IOEntry] = []
    for line in bytes.lines {
        var fields = line.fields
        guard let device = fields.next(), let (major, minor) = parseDeviceNumber(device),
            let operation = fields.next().flatMap(IOOperation.init), let value = fields.next()?.parseUInt64()
        else { continue }
        entries.append(IOEntry(major: major, minor: minor, operation: operation, value: value))
    }
    return entries
}

/// Parses v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`) into bytes and operation
/// counts, read and write, as cAdvisor maps them onto the blkio figures.
func parseIOStat(_ bytes: ArraySlice<UInt8>) -> (bytes: [IOEntry], operations: [IOEntry]) {
    var serviceBytes: [IOEntry] = []
    var serviced: [IOEntry] = []
    for line in bytes.lines {
        var fields = line.fields
        guard let device = fields.next(), let (major, minor) = parseDeviceNumber(device) else { continue }
        while let field = fields.next() {
            guard let (key, value) = field.splitOnce(UInt8(ascii: "=")), let number = value.parseUInt64() else {
                continue
            }
            if key.equals("rbytes") {
                serviceBytes.append(IOEntry(major: major, minor: minor, operation: .read, value: number))
            } else if key.equals("wbytes") {
                serviceBytes.append(IOEntry(major: major, minor: minor, operation: .write, value: number))
            } else if key.equals("rios") {
                serviced.append(IOEntry(major: major, minor: minor, operation: .read, value: number))
            } else if key.equals("wios") {
                serviced.append(IOEntry(major: major, minor: minor, operation: .write, value: number))
            }
        }
    }
    return (serviceBytes, serviced)
}

func parseDeviceNumber(_ bytes: ArraySlice<UInt8>) -> (UInt32, UInt32)? {
    guard let (major, minor) = bytes.splitOnce(UInt8(ascii: ":")),
        let majorNumber = major.parseUInt64(), let minorNumber = minor.parseUInt64(),
        majorNumber <= UInt32.max, minorNumber <= UInt32.max
    else { return nil }
    return (UInt32(majorNumber), UInt32(minorNumber))
}

/// v2 `cpu.max`: quota (nil for `max`) and period.
func parseCPUMax(_ bytes: ArraySlice<UInt8>) -> (quota: UInt64?, period: UInt64?) {
    var fields = bytes.fields
    let quota = fields.next()
    let period = fields.next()?.parseUInt64()
    if let quota, quota.equals("max") { return (nil, period) }
    return (quota?.parseUInt64(), period)
}

/// cAdvisor's conversion of a v2 `cpu.weight` (1–10000) to v1 shares.
func cpuSharesFromWeight(_ weight: UInt64) -> UInt64? {
    guard weight >= 1, weight <= 10000 else { return nil }
    return 2 + ((weight - 1) * 262_142) / 9999
}

/// cAdvisor reports a memory limit above 2^62 (unlimited, rounded by the kernel) as 0.
func specMemoryValue(_ value: UInt64) -> Double {
    value > 1 << 62 ? 0 : Double(value)
}

/// The number of processes in `cgroup.procs` and the first of them (to read the container's network).
func parseProcs(_ bytes: ArraySlice<UInt8>) -> (count: Int, first: Int32?) {
    var count = 0
    var first: Int32?
    for line in bytes.lines {
        guard let pid = line.trimmed().parseUInt64(), pid <= UInt64(Int32.max) else { continue }
        if first == nil { first = Int32(pid) }
        count += 1
    }
    return (count, first)
}

/// The counters of one interface in `/proc/<pid>/net/dev`.
struct InterfaceCounters: Equatable, Sendable {
    var name: String
    var receiveBytes: UInt64
    var receivePackets: UInt64
    var receiveErrors: UInt64
    var receiveDropped: UInt64
    var transmitBytes: UInt64
    var transmitPackets: UInt64
    var transmitErrors: UInt64
    var transmitDropped: UInt64
}

/// Parses `net/dev` with the netdev collector's parser (columns found by the header's names), leaving
/// out the interfaces cAdvisor ignores (`lo`, `veth*`, `docker*`, `nerdctl*`) and lines it could not
/// read whole.
func parseNetDev(_ bytes: ArraySlice<UInt8>) -> [InterfaceCounters] {
    let table = parseNetDevTable(bytes) { netDevHeaders.layout(for: $0, make: netDevColumns) }
    guard let table else { return [] }
    var interfaces: [InterfaceCounters] = []
    for device in table.names.indices where !isIgnoredInterface(table.names[device]) {
        let values = cadvisorNetDevStatistics.compactMap { table.value(device: device, statistic: $0) }
        guard values.count == cadvisorNetDevStatistics.count else { continue }
        interfaces.append(
            InterfaceCounters(
                name: table.names[device].string,
                receiveBytes: values[0],
                receivePackets: values[1],
                receiveErrors: values[2],
                receiveDropped: values[3],
                transmitBytes: values[4],
                transmitPackets: values[5],
                transmitErrors: values[6],
                transmitDropped: values[7]
            )
        )
    }
    return interfaces
}

/// Header layouts of the containers' `net/dev` files (one per kernel, shared by every container).
private let netDevHeaders = LayoutCache<[Int]?>()

/// The `netDevStatistics` cAdvisor reports, in ``InterfaceCounters``' order.
private let cadvisorNetDevStatistics: [Int] = [
    ("receive", "bytes"), ("receive", "packets"), ("receive", "errs"), ("receive", "drop"),
    ("transmit", "bytes"), ("transmit", "packets"), ("transmit", "errs"), ("transmit", "drop"),
].compactMap { wanted in netDevStatistics.firstIndex { $0 == wanted } }

private func isIgnoredInterface(_ name: ArraySlice<UInt8>) -> Bool {
    name.hasPrefix("lo") || name.hasPrefix("veth") || name.hasPrefix("docker") || name.hasPrefix("nerdctl")
}
