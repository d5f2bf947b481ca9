import Synchronization
import VigilCore

/// Names of block devices by number, as cAdvisor labels IO series: `/dev/<name>`, from the
/// `/sys/dev/block/<major>:<minor>` link (or `/proc/diskstats`); empty when unknown. Devices seldom
/// change, so names are kept and forgotten every `maxAge`.
final class BlockDeviceNames: Sendable {
    private struct State {
        var names: [UInt64: String] = [:]
        var since = ContinuousClock.now
    }

    private let state = Mutex(State())
    private let maxAge: Duration

    init(maxAge: Duration = .seconds(300)) {
        self.maxAge = maxAge
    }

    func names(for devices: Set<UInt64>, paths: PathRoots, reader: FileReader) -> [UInt64: String] {
        let now = ContinuousClock.now
        var known = self.state.withLock { state in
            if now - state.since > self.maxAge { state = State() }
            return state.names
        }
        let missing = devices.filter { known[$0] == nil }
        guard !missing.isEmpty else { return known }
        var diskstats: [UInt64: String]?
        for device in missing {
            let major = device >> 32
            let minor = device & 0xFFFF_FFFF
            var name = ""
            if let target = try? FileSystem.readLink(paths.sys("dev/block/\(major):\(minor)")),
                let base = target.split(separator: "/").last
            {
                name = String(base)
            } else {
                if diskstats == nil {
                    diskstats = parseDiskstatsNames((try? reader.read(paths.proc("diskstats"))) ?? [])
                }
                name = diskstats?[device] ?? ""
            }
            known[device] = name.isEmpty ? "" : "/dev/" + name
        }
        self.state.withLock { state in
            for device in missing { state.names[device] = known[device] }
        }
        return known
    }
}

/// A device number as one key: major in the high 32 bits.
func deviceKey(_ major: UInt32, _ minor: UInt32) -> UInt64 { UInt64(major) << 32 | UInt64(minor) }

/// Device names by number from `/proc/diskstats` (`major minor name …`).
func parseDiskstatsNames(_ bytes: ArraySlice<UInt8>) -> [UInt64: String] {
    var names: [UInt64: String] = [:]
    for line in bytes.lines {
        var fields = line.fields
        guard let major = fields.next()?.parseUInt64(), let minor = fields.next()?.parseUInt64(),
            let name = fields.next(), major <= UInt32.max, minor <= UInt32.max
        else { continue }
        names[deviceKey(UInt32(major), UInt32(minor))] = name.string
    }
    return names
}
