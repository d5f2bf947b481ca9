import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A cgroup the collector reports.
struct DiscoveredCgroup: Sendable, Equatable {
    /// The path inside the hierarchy, as cAdvisor's `id` label: `/`, `/docker/<id>`.
    var path: String
    var kind: CgroupKind
    /// The directory's inode number, as the walk listed it (0 for the root): a cgroup removed and
    /// created again under the same path (a restarted service) has a new one.
    var inode: UInt64 = 0
}

/// Walks one hierarchy and returns the root, every container and every Kubernetes pod cgroup (and,
/// with `all`, every other cgroup), in path order.
///
/// One `readdir` per directory that can hold containers: container cgroups are not entered, and
/// services, mounts and non-container scopes are skipped unless `all` is set. A directory removed
/// while the walk runs (a container that just exited) is skipped.
func walkCgroups(_ mount: CgroupMount, all: Bool, maxDepth: Int = 32) -> [DiscoveredCgroup] {
    var found = [DiscoveredCgroup(path: "/", kind: .root)]
    var walker = CgroupWalker(base: mount.path, all: all, maxDepth: maxDepth)
    walker.walk(relative: "", name: "", kind: .root, depth: 0, into: &found)
    return found
}

private struct CgroupWalker {
    let base: String
    let all: Bool
    let maxDepth: Int

    mutating func walk(
        relative: String,
        name: String,
        kind: CgroupKind,
        depth: Int,
        into found: inout [DiscoveredCgroup]
    ) {
        guard depth < self.maxDepth else { return }
        for (child, inode) in subdirectories(of: self.base + relative) {
            let childKind = identifyCgroup(name: child, parentName: name, parent: kind)
            let path = relative + "/" + child
            switch childKind {
            case .container, .pod: found.append(DiscoveredCgroup(path: path, kind: childKind, inode: inode))
            case .kubepods, .other:
                if self.all { found.append(DiscoveredCgroup(path: path, kind: childKind, inode: inode)) }
            case .root: break
            }
            if shouldDescend(name: child, kind: childKind, all: self.all) {
                self.walk(relative: path, name: child, kind: childKind, depth: depth + 1, into: &found)
            }
        }
    }
}

/// The names and inode numbers of the sub-directories of a directory, sorted by name; none when it
/// cannot be read (it was removed during the walk, or vigil may not list it).
func subdirectories(of path: String) -> [(name: String, inode: UInt64)] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [(name: String, inode: UInt64)] = []
    while let entry = readdir(dir) {
        let type = entry.pointee.d_type
        guard type == DT_DIR || type == DT_UNKNOWN else { continue }
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
        if name == "." || name == ".." { continue }
        if type == DT_UNKNOWN && !FileSystem.isDirectory(path + "/" + name) { continue }
        names.append((name, UInt64(entry.pointee.d_ino)))
    }
    names.sort { $0.name < $1.name }
    return names
}
