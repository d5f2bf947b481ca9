import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// cAdvisor's `machine_cpu_cores` and `machine_memory_bytes`, labelled `boot_id`, `machine_id` and
/// `system_uuid`.
func writeMachineFamilies(into writer: inout MetricWriter, paths: PathRoots, reader: FileReader) {
    var labels = RenderedLabels()
    labels.append("boot_id", (try? reader.readTrimmed(paths.proc("sys/kernel/random/boot_id"))) ?? [])
    let machineID =
        (try? reader.readTrimmed(paths.root("etc/machine-id"))).flatMap { $0.isEmpty ? nil : $0.string }
        ?? (try? reader.readTrimmed(paths.root("var/lib/dbus/machine-id")))?.string ?? ""
    labels.append("machine_id", machineID)
    labels.append("system_uuid", (try? reader.readTrimmed(paths.sys("class/dmi/id/product_uuid"))) ?? [])
    if let online = try? reader.readTrimmed(paths.sys("devices/system/cpu/online")), let cores = countCPUs(online) {
        writer.family(machineCPUCores)
        writer.sample(Double(cores), labels)
    }
    if let meminfo = try? reader.read(paths.proc("meminfo")), let total = memTotal(meminfo) {
        writer.family(machineMemoryBytes)
        writer.sample(Double(total), labels)
    }
}

private let machineCPUCores = MetricFamily("machine_cpu_cores", help: "Number of logical CPU cores.", type: .gauge)
private let machineMemoryBytes = MetricFamily(
    "machine_memory_bytes",
    help: "Amount of memory installed on the machine.",
    type: .gauge
)

/// The number of CPUs in a sysfs CPU list (`0-3,6,8-9`).
func countCPUs(_ list: ArraySlice<UInt8>) -> Int? {
    var count = 0
    for range in list.split(byte: UInt8(ascii: ",")) where !range.isEmpty {
        if let (first, last) = range.splitOnce(UInt8(ascii: "-")) {
            guard let low = first.parseUInt64(), let high = last.parseUInt64(), high >= low else { return nil }
            count += Int(high - low) + 1
        } else {
            guard range.parseUInt64() != nil else { return nil }
            count += 1
        }
    }
    return count > 0 ? count : nil
}

/// `MemTotal` of /proc/meminfo, in bytes.
func memTotal(_ meminfo: ArraySlice<UInt8>) -> UInt64? {
    for line in meminfo.lines where line.hasPrefix("MemTotal:") {
        var fields = line.fields
        _ = fields.next()
        return fields.next()?.parseUInt64().map { $0 * 1024 }
    }
    return nil
}

/// Seconds since the epoch, whole, as cAdvisor's `container_last_seen`.
func unixTimeSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec)
}
