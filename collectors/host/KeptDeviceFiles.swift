import Synchronization
import VigilCore

/// The devices whose sysfs files stay open between scrapes, by name: network interfaces (netclass,
/// netdev) and block devices (diskstats).
final class KeptDeviceFiles: Sendable {
    let files = Mutex<[String: KeptOpenAttributes]>([:])

    /// One value per device of `names`, read by `value` through the device's kept files, or else
    /// through its `files` in `directory` opened now (and kept while they fit in `descriptors`); nil
    /// where neither gives one. Kept files that no longer give a value (their device has gone, and may
    /// have come back under its name) are opened afresh; devices not in `names` are forgotten.
    func values<Value>(
        of names: [String],
        files: [String],
        in directory: String,
        descriptors: Int,
        value: (String, KeptOpenAttributes) -> Value?
    ) -> [Value?] {
        let cached = self.files.withLock { $0 }
        var stillKept: [String] = []
        var opened: [(name: String, files: KeptOpenAttributes)] = []
        let values = names.map { name -> Value? in
            if let kept = cached[name], let found = value(name, kept) {
                stillKept.append(name)
                return found
            }
            guard let fresh = try? KeptOpenAttributes(files, in: OpenDirectory(directory + "/" + name)),
                let found = value(name, fresh)
            else { return nil }
            opened.append((name, fresh))
            return found
        }
        self.update(stillKept: stillKept, opened: opened, descriptors: descriptors)
        return values
    }

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

/// Whether files kept for the network interface `name` are still that interface's, as the `uevent`
/// among them (at position `uevent`) says in its `INTERFACE=` line: an interface renamed keeps its
/// files, and another may take its name. Where it cannot tell (no `uevent`, as in recorded trees, or
/// the interface has gone, which the reads that follow find), it says yes.
func filesAreNamed(_ name: String, _ files: KeptOpenAttributes, uevent: Int, context: ScrapeContext) -> Bool {
    guard let event = try? context.reader.readAttribute(uevent, of: files) else { return true }
    for line in event.split(byte: UInt8(ascii: "\n")) where line.starts(with: "INTERFACE=".utf8) {
        return line.dropFirst(10).elementsEqual(name.utf8)
    }
    return true
}
