import VigilCore

/// Each online CPU's frequency, its hardware limits and its governor's limits from
/// `/sys/devices/system/cpu/cpu*/cpufreq/` (kHz there, hertz here). `cpuinfo_cur_freq` is readable by
/// root only: for other users its family is left out, as node_exporter leaves it. Hosts without a
/// cpufreq driver (most virtual machines) have no series.
struct CpufreqCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "cpufreq",
        enabledByDefault: true,
        help: "CPU frequencies from /sys/devices/system/cpu/cpu*/cpufreq"
    ) { setup in
        CpufreqCollector(directory: setup.paths.sys("devices/system/cpu"))
    }

    let directory: String

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        // Without a driver there are no policies and CPU 0 has no cpufreq directory: two lookups spare
        // reading every CPU's directory on every scrape of such a host.
        guard
            FileSystem.isDirectory(self.directory + "/cpu0/cpufreq")
                || (try? FileSystem.entryCount(of: self.directory + "/cpufreq")) ?? 0 > 0
        else { return }
        // Offline CPUs keep their directory but their frequencies are stale or unreadable.
        let offline = (try? context.reader.readTrimmed(self.directory + "/offline")).flatMap(parseCPUList) ?? []
        var cpus: [(cpu: String, kilohertz: [UInt64?])] = []
        for name in try FileSystem.sortedEntriesIfPresent(of: self.directory) where hasNumberedPrefix(name, "cpu") {
            let number = String(name.dropFirst("cpu".count))
            guard let index = Int(number), !offline.contains(index) else { continue }
            let path = self.directory + "/" + name + "/cpufreq"
            guard FileSystem.isDirectory(path) else { continue }
            var kilohertz: [UInt64?] = []
            for (file, _) in cpufreqFamilies {
                do {
                    kilohertz.append(try readFrequency(path + "/" + file, reader: context.reader))
                } catch {
                    context.recordFailure("\(error)")
                    kilohertz.append(nil)
                }
            }
            cpus.append((number, kilohertz))
        }
        // CPUs in numeric order, as labels sort in node_exporter's output.
        cpus.sort { Int($0.cpu)! < Int($1.cpu)! }
        for (index, (_, family)) in cpufreqFamilies.enumerated() {
            var started = false
            for cpu in cpus {
                guard let value = cpu.kilohertz[index] else { continue }
                if !started {
                    writer.family(family)
                    started = true
                }
                writer.sample(Double(value) * 1000, ("cpu", cpu.cpu))
            }
        }
    }
}

/// A frequency in kHz; nil when the file does not exist or only root may read it.
private func readFrequency(_ path: String, reader: FileReader) throws -> UInt64? {
    guard let bytes = try reader.readTrimmedIfReadable(path) else { return nil }
    guard let value = bytes.parseUInt64() else { throw CollectorError.failed("\(path) does not hold a number") }
    return value
}

private let cpufreqFamilies: [(file: String, family: MetricFamily)] = [
    ("cpuinfo_cur_freq", gauge("node_cpu_frequency_hertz", "Current cpu thread frequency in hertz.")),
    ("cpuinfo_max_freq", gauge("node_cpu_frequency_max_hertz", "Maximum cpu thread frequency in hertz.")),
    ("cpuinfo_min_freq", gauge("node_cpu_frequency_min_hertz", "Minimum cpu thread frequency in hertz.")),
    ("scaling_cur_freq", gauge("node_cpu_scaling_frequency_hertz", "Current scaled CPU thread frequency in hertz.")),
    (
        "scaling_max_freq",
        gauge("node_cpu_scaling_frequency_max_hertz", "Maximum scaled CPU thread frequency in hertz.")
    ),
    (
        "scaling_min_freq",
        gauge("node_cpu_scaling_frequency_min_hertz", "Minimum scaled CPU thread frequency in hertz.")
    ),
]

private func gauge(_ name: String, _ help: String) -> MetricFamily {
    MetricFamily(name, help: help, type: .gauge)
}
