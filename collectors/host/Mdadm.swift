import VigilCore

/// Linux software RAID: each md array's state, disks and sync progress from `/proc/mdstat`, and the
/// kernel's own count of its disks and missing disks from `/sys/block/md*/md/{raid_disks,degraded}`.
/// node-mixin's RAID alerts (NodeRAIDDegraded, NodeRAIDDiskFailure) query these families. Without the
/// md driver there is no `/proc/mdstat` and no data.
struct MdadmCollector: Collector {
    static let descriptor = CollectorDescriptor(
        name: "mdadm",
        enabledByDefault: true,
        help: "software RAID arrays from /proc/mdstat and /sys/block/md*/md"
    ) { setup in
        MdadmCollector(mdstat: KeptOpenFile(setup.paths.proc("mdstat")), blockDirectory: setup.paths.sys("block"))
    }

    let mdstat: KeptOpenFile
    let blockDirectory: String

    func collect(into writer: inout MetricWriter, context: ScrapeContext) throws {
        guard let bytes = try context.reader.readIfPresent(self.mdstat) else {
            throw CollectorError.noData("\(self.mdstat.path) does not exist (no md driver)")
        }
        let (arrays, broken) = parseMDStat(bytes.string)
        for device in broken { context.recordFailure("\(self.mdstat.path): cannot read the lines of \(device)") }
        writeArrays(arrays, into: &writer)
        writeKernelCounts(self.readKernelCounts(context: context), into: &writer)
    }

    /// `raid_disks` and `degraded` of every md array the kernel lists under /sys/block. Arrays without
    /// redundancy (raid0, linear) have no `degraded`: none of their disks can be missing without the
    /// array failing, so it counts as 0.
    private func readKernelCounts(context: ScrapeContext) -> [(device: String, disks: UInt64, degraded: UInt64)] {
        var counts: [(device: String, disks: UInt64, degraded: UInt64)] = []
        let devices: [String]
        do {
            devices = try FileSystem.sortedEntriesIfPresent(of: self.blockDirectory).filter { $0.hasPrefix("md") }
        } catch {
            context.recordFailure("\(error)")
            return []
        }
        for device in devices {
            let directory = self.blockDirectory + "/" + device + "/md"
            guard FileSystem.isDirectory(directory) else { continue }
            do {
                guard let disks = try context.reader.readUInt64(directory + "/raid_disks") else {
                    context.recordFailure("\(directory)/raid_disks does not hold a number")
                    continue
                }
                // nil when absent: an array without redundancy.
                let text = try context.reader.readTrimmedIfReadable(directory + "/degraded")
                guard let degraded = text.map({ $0.parseUInt64() }) ?? 0 else {
                    context.recordFailure("\(directory)/degraded does not hold a number")
                    continue
                }
                counts.append((device, disks, degraded))
            } catch {
                context.recordFailure("\(error)")
            }
        }
        return counts
    }
}

/// One array of `/proc/mdstat`, with what node_exporter (through prometheus/procfs) makes of it.
struct MDArray {
    enum State: String, CaseIterable {
        case active, inactive, recovering, resync, check
    }

    var device: String
    var state: State
    /// Disks the array is made of when complete (`[n/m]`: n); for raid0 and linear the disks listed.
    var disksRequired: UInt64
    var disksActive: UInt64
    var disksFailed: UInt64
    var disksSpare: UInt64
    var blocks: UInt64
    /// All of `blocks` unless a recovery, resync or check is under way (0 while it waits to start).
    var blocksSynced: UInt64
}

/// The arrays of `/proc/mdstat`, and the devices whose lines could not be read (left out).
///
/// An array is a line `md0 : active raid1 sdb1[1] sda1[0](F)` ((F) failed, (S) spare), an indented
/// status line `976630464 blocks super 1.2 [2/1] [U_]`, then perhaps a progress line
/// `[==>....]  recovery = 12.6% (123/976630464) finish=...` and a bitmap line.
func parseMDStat(_ text: String) -> (arrays: [MDArray], broken: [String]) {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    var arrays: [MDArray] = []
    var broken: [String] = []
    for (index, line) in lines.enumerated() {
        guard let first = line.first, first != " ", first != "\t", !line.hasPrefix("Personalities"),
            !line.hasPrefix("unused")
        else { continue }
        let fields = line.split(separator: " ")
        guard fields.count >= 3, index + 1 < lines.count,
            var array = parseArray(line, fields: fields, status: lines[index + 1])
        else {
            broken.append(String(fields.first ?? line))
            continue
        }
        // A progress line follows the status line; without one, a bitmap line may (procfs looks past it).
        var progressIndex = index + 2
        if progressIndex < lines.count, lines[progressIndex].contains("bitmap") { progressIndex += 1 }
        if progressIndex < lines.count {
            guard applyProgress(lines[progressIndex], to: &array) else {
                broken.append(array.device)
                continue
            }
        }
        arrays.append(array)
    }
    return (arrays, broken)
}

/// An array from its first line's fields and its status line, before any progress is applied.
private func parseArray(_ line: Substring, fields: [Substring], status: Substring) -> MDArray? {
    let statusFields = status.split(whereSeparator: { $0 == " " || $0 == "\t" })
    guard let blocks = statusFields.first.flatMap({ UInt64($0) }) else { return nil }
    var array = MDArray(
        device: String(fields[0]),
        state: fields[2] == "inactive" ? .inactive : .active,
        disksRequired: 0,
        disksActive: 0,
        disksFailed: UInt64(line.occurrences(of: "(F)")),
        disksSpare: UInt64(line.occurrences(of: "(S)")),
        blocks: blocks,
        blocksSynced: blocks
    )
    if line.contains("raid0") || line.contains("linear") {
        // No redundancy, no `[n/m]`: every disk listed (each has its `[role]`) is required and active.
        array.disksRequired = UInt64(line.occurrences(of: "["))
        array.disksActive = array.disksRequired
    } else if !line.contains("inactive") {
        // `[n/m] [UU_]`: n disks when complete, m of them working.
        guard
            let counts = statusFields.indices.dropLast().last(where: { index in
                isDiskMap(statusFields[index + 1]) && statusFields[index].hasPrefix("[")
            }).map({ statusFields[$0].dropFirst().dropLast().split(separator: "/") }),
            counts.count == 2, let required = UInt64(counts[0]), let active = UInt64(counts[1])
        else { return nil }
        array.disksRequired = required
        array.disksActive = active
    }
    return array
}

/// `[UU_]`: one letter per disk, U up and _ down.
private func isDiskMap(_ field: Substring) -> Bool {
    field.count > 2 && field.first == "[" && field.last == "]"
        && field.dropFirst().dropLast().allSatisfy { $0 == "U" || $0 == "_" }
}

/// Applies a recovery, resync or check under way; false when its line names one but its blocks cannot
/// be read.
private func applyProgress(_ line: Substring, to array: inout MDArray) -> Bool {
    if line.contains("recovery") {
        array.state = .recovering
    } else if line.contains("check") {
        array.state = .check
    } else if line.contains("resync") {
        array.state = .resync
    } else {
        return true
    }
    // `resync=PENDING` (read-only until written), `resync=DELAYED` (waits for another array on the disks).
    if line.contains("PENDING") || line.contains("DELAYED") {
        array.blocksSynced = 0
        return true
    }
    // `(done/total)`
    guard let open = line.firstIndex(of: "("), let slash = line[open...].firstIndex(of: "/"),
        let synced = UInt64(line[line.index(after: open)..<slash])
    else { return false }
    array.blocksSynced = synced
    return true
}

extension StringProtocol {
    fileprivate func occurrences(of needle: String) -> Int {
        self.ranges(of: needle).count
    }
}

private let stateFamily = MetricFamily("node_md_state", help: "Indicates the state of md-device.", type: .gauge)
private let disksFamily = MetricFamily(
    "node_md_disks",
    help: "Number of active/failed/spare disks of device.",
    type: .gauge
)
private let disksRequiredFamily = MetricFamily(
    "node_md_disks_required",
    help: "Total number of disks of device.",
    type: .gauge
)
private let blocksFamily = MetricFamily("node_md_blocks", help: "Total number of blocks on device.", type: .gauge)
private let blocksSyncedFamily = MetricFamily(
    "node_md_blocks_synced",
    help: "Number of blocks synced on device.",
    type: .gauge
)
private let raidDisksFamily = MetricFamily(
    "node_md_raid_disks",
    help: "Number of raid disks on device.",
    type: .gauge
)
private let degradedFamily = MetricFamily(
    "node_md_degraded",
    help: "Number of degraded disks on device.",
    type: .gauge
)

private func writeArrays(_ arrays: [MDArray], into writer: inout MetricWriter) {
    guard !arrays.isEmpty else { return }
    writer.family(disksRequiredFamily)
    for array in arrays { writer.sample(Double(array.disksRequired), ("device", array.device)) }
    writer.family(disksFamily)
    for array in arrays {
        writer.sample(Double(array.disksActive), ("device", array.device), ("state", "active"))
        writer.sample(Double(array.disksFailed), ("device", array.device), ("state", "failed"))
        writer.sample(Double(array.disksSpare), ("device", array.device), ("state", "spare"))
    }
    writer.family(stateFamily)
    for array in arrays {
        for state in MDArray.State.allCases {
            writer.sample(array.state == state ? 1 : 0, ("device", array.device), ("state", state.rawValue))
        }
    }
    writer.family(blocksFamily)
    for array in arrays { writer.sample(Double(array.blocks), ("device", array.device)) }
    writer.family(blocksSyncedFamily)
    for array in arrays { writer.sample(Double(array.blocksSynced), ("device", array.device)) }
}

private func writeKernelCounts(
    _ counts: [(device: String, disks: UInt64, degraded: UInt64)],
    into writer: inout MetricWriter
) {
    guard !counts.isEmpty else { return }
    writer.family(raidDisksFamily)
    for count in counts { writer.sample(Double(count.disks), ("device", count.device)) }
    writer.family(degradedFamily)
    for count in counts { writer.sample(Double(count.degraded), ("device", count.device)) }
}
