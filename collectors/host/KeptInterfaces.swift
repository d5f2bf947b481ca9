import Synchronization
import VigilCore

/// The network interfaces whose sysfs files stay open between scrapes, by name (netclass, netdev).
final class KeptInterfaces: Sendable {
    let files = Mutex<[String: KeptOpenAttributes]>([:])

    /// Forgets the interfaces not in `stillKept` (no longer listed, or gone), and keeps newly opened
    /// ones while there is room.
    func update(stillKept: [String], opened: [(name: String, files: KeptOpenAttributes)], capacity: Int) {
        self.files.withLock { files in
            if files.count != stillKept.count { files = files.filter { stillKept.contains($0.key) } }
            for (name, opened) in opened where files.count < capacity && files[name] == nil {
                files[name] = opened
            }
        }
    }
}
