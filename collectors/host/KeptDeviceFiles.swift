import Synchronization
import VigilCore

/// The devices whose sysfs files stay open between scrapes, by name: network interfaces (netclass,
/// netdev) and block devices (diskstats).
final class KeptDeviceFiles: Sendable {
    let files = Mutex<[String: KeptOpenAttributes]>([:])

    /// Forgets the devices not in `stillKept` (no longer listed, or gone), and keeps newly opened
    /// ones while their files fit in `descriptors`.
    func update(stillKept: [String], opened: [(name: String, files: KeptOpenAttributes)], descriptors: Int) {
        self.files.withLock { files in
            if files.count != stillKept.count { files = files.filter { stillKept.contains($0.key) } }
            var used = files.values.reduce(0) { $0 + $1.names.count }
            for (name, opened) in opened where files[name] == nil && used + opened.names.count <= descriptors {
                files[name] = opened
                used += opened.names.count
            }
        }
    }
}
