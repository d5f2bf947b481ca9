import VigilCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The controllers whose hierarchies the containers collector reads (on a v2 host, all of them are
/// the unified hierarchy).
enum CgroupController: Int, CaseIterable {
    case unified
    case cpu
    case cpuacct
    case memory
    case blkio
    case pids

    /// The controllers whose directories a cgroup keeps open: the ones several files are read from
    /// at every scrape (v1 `cpu` has only `cpu.stat`, and only with a quota; `pids` only with the
    /// process metrics).
    static let kept: [CgroupController] = [.memory, .unified, .cpuacct, .blkio]
}

extension CgroupMounts {
    func mount(_ controller: CgroupController) -> CgroupMount? {
        switch controller {
        case .unified: self.unified
        case .cpu: self.cpu
        case .cpuacct: self.cpuacct
        case .memory: self.memory
        case .blkio: self.blkio
        case .pids: self.pids
        }
    }
}

/// Where a cgroup's files are opened from in one hierarchy: the cgroup's own directory, kept open
/// between scrapes (the kernel then looks up one path component per file), or else the hierarchy's
/// mount point and the cgroup's path below it.
struct CgroupDirectory {
    /// The cgroup's own directory, or -1.
    fileprivate let own: Int32
    /// The hierarchy's mount point.
    fileprivate let root: Int32
    fileprivate let mountPath: String
    /// The cgroup's path without its leading `/`; empty for the root cgroup.
    fileprivate let relative: String
}

/// What the collector keeps for one cgroup between scrapes.
final class CgroupEntry {
    /// The directory's inode number when the entry was made; a new one means a new cgroup.
    let inode: UInt64
    /// The cgroup's path without its leading `/`; empty for the root cgroup.
    let relative: String
    /// The cgroup's directory in each hierarchy (``CgroupFiles`` slots), or -1 where it is not kept.
    fileprivate var directories: [Int32]
    /// Limits, read again after ``ContainersCollector/specMaxAge``.
    var spec: (value: CgroupSpec, readAt: ContinuousClock.Instant)?
    /// The process the network is read through, and its network namespace: `cgroup.procs` is read
    /// again only once that process is gone (or in another namespace: its pid was reused).
    var networkProcess: (pid: Int32, namespace: String)?
    /// The runtime's metadata of a container, once known (``ContainerMetadataStore``).
    var metadata: ContainerMetadata?
    /// The base labels, rendered again only when one of their values changes.
    var labels: (values: ContainerLabelValues, rendered: RenderedLabels)?

    fileprivate init(inode: UInt64, relative: String, slots: Int) {
        self.inode = inode
        self.relative = relative
        self.directories = [Int32](repeating: -1, count: slots)
    }
}

/// The cgroup files of the host and what the containers collector keeps between scrapes: each
/// hierarchy's mount point and each cgroup's entry (its directories, within a budget of descriptors;
/// its limits; the process its network is read through).
///
/// Files are read with one `openat`, one `read` and one `close` each, relative to the cgroup's kept
/// directory or to the hierarchy's mount point, with the path built in a reused buffer rather than a
/// String per file. File descriptors of the files themselves are not kept: a kept cgroupfs file holds
/// a kernel buffer of a page or more (about 5 KiB each, measured), where a kept directory costs about
/// 0.5 KiB and serves every file in it.
///
/// One scrape at a time uses it: ``ContainersState`` hands it out and takes it back. The bytes
/// returned are a slice of its buffer, valid until the next read.
final class CgroupFiles: @unchecked Sendable {
    /// Most cgroup directories kept open at once.
    let budget: Int
    /// How many are open.
    private(set) var keptDirectories = 0
    private var mounts = CgroupMounts()
    /// The distinct hierarchies (co-mounted controllers share one): mount path and descriptor.
    private var hierarchies: [(path: String, fd: Int32)] = []
    /// Each controller's hierarchy (index into `hierarchies`).
    private var slots: [Int?] = Array(repeating: nil, count: CgroupController.allCases.count)
    /// The hierarchies whose cgroup directories are kept.
    private var keptSlots: [Int] = []
    private var entries: [String: CgroupEntry] = [:]
    private var buffer = [UInt8](repeating: 0, count: 16384)
    private var path = [CChar](repeating: 0, count: 4096)

    init(budget: Int) {
        self.budget = budget
    }

    deinit {
        self.closeAll()
    }

    /// The budget of kept directories by default: half the soft limit of open files, less a margin
    /// for the rest of the agent, at most 16384.
    static func defaultBudget() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        let soft = limit.rlim_cur == rlim_t.max ? 32768 : Int(clamping: limit.rlim_cur)
        return min(max(0, soft / 2 - 64), 16384)
    }

    /// Makes `mounts` the hierarchies files are read from. When they changed (a first scrape, or
    /// cgroup file systems mounted or unmounted), every descriptor and entry is dropped.
    func use(_ mounts: CgroupMounts) {
        guard mounts != self.mounts || self.hierarchies.isEmpty || self.hierarchies.contains(where: { $0.fd < 0 })
        else { return }
        self.closeAll()
        self.mounts = mounts
        for controller in CgroupController.allCases {
            guard let mount = mounts.mount(controller) else { continue }
            if let known = self.hierarchies.firstIndex(where: { $0.path == mount.path }) {
                self.slots[controller.rawValue] = known
            } else {
                let fd = open(mount.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                self.hierarchies.append((mount.path, fd))
                self.slots[controller.rawValue] = self.hierarchies.count - 1
            }
        }
        for controller in CgroupController.kept {
            if let slot = self.slots[controller.rawValue], self.hierarchies[slot].fd >= 0,
                !self.keptSlots.contains(slot)
            {
                self.keptSlots.append(slot)
            }
        }
    }

    /// The entry of a cgroup the walk found: the one kept, or a new one (with its directories
    /// opened, budget permitting) for a cgroup not seen before or created again since.
    func entry(for cgroup: DiscoveredCgroup) -> CgroupEntry {
        if let known = self.entries[cgroup.path] {
            if known.inode == cgroup.inode { return known }
            self.close(known)
        }
        let entry = CgroupEntry(
            inode: cgroup.inode,
            relative: String(cgroup.path.dropFirst()),
            slots: self.hierarchies.count
        )
        if !entry.relative.isEmpty && self.keptDirectories + self.keptSlots.count <= self.budget {
            for slot in self.keptSlots {
                let fd = openat(self.hierarchies[slot].fd, entry.relative, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard fd >= 0 else { continue }
                entry.directories[slot] = fd
                self.keptDirectories += 1
            }
        }
        self.entries[cgroup.path] = entry
        return entry
    }

    /// Forgets the cgroups the walk no longer finds, closing their directories.
    func forget(allBut present: [DiscoveredCgroup]) {
        // Every cgroup found has its entry: more entries than cgroups means some are gone.
        guard self.entries.count > present.count else { return }
        let paths = Set(present.map(\.path))
        for (path, entry) in self.entries where !paths.contains(path) {
            self.close(entry)
            self.entries[path] = nil
        }
    }

    /// How many cgroups have an entry.
    var count: Int { self.entries.count }

    /// A cgroup's directory in a controller's hierarchy; nil when the controller is not mounted.
    func directory(_ controller: CgroupController, of entry: CgroupEntry) -> CgroupDirectory? {
        guard let slot = self.slots[controller.rawValue] else { return nil }
        let hierarchy = self.hierarchies[slot]
        guard hierarchy.fd >= 0 else { return nil }
        let own = entry.relative.isEmpty ? hierarchy.fd : slot < entry.directories.count ? entry.directories[slot] : -1
        return CgroupDirectory(own: own, root: hierarchy.fd, mountPath: hierarchy.path, relative: entry.relative)
    }

    /// Reads a file of a cgroup directory (`name` may hold a sub-directory: `container/cgroup.procs`).
    func read(_ directory: CgroupDirectory, _ name: String) throws(FileError) -> ArraySlice<UInt8> {
        let fd: Int32
        if directory.own >= 0 {
            self.setPath(nil, name)
            fd = self.path.withUnsafeBufferPointer { openat(directory.own, $0.baseAddress!, O_RDONLY | O_CLOEXEC) }
        } else {
            self.setPath(directory.relative, name)
            fd = self.path.withUnsafeBufferPointer { openat(directory.root, $0.baseAddress!, O_RDONLY | O_CLOEXEC) }
        }
        guard fd >= 0 else { throw self.error(directory, name, operation: "open") }
        defer { Glibc.close(fd) }
        var total = 0
        while true {
            let count = self.buffer.withUnsafeMutableBytes { raw in
                Glibc.read(fd, raw.baseAddress! + total, raw.count - total)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw self.error(directory, name, operation: "read")
            }
            total += count
            // Pseudo-files hand over all they hold in one read when it fits: a short read is the end.
            if count == 0 || total < self.buffer.count { break }
            self.buffer.append(contentsOf: repeatElement(0, count: self.buffer.count))
        }
        return self.buffer[0..<total]
    }

    /// Whether the cgroup's directory still exists, looked up by its path (a kept directory that
    /// was removed would still answer).
    func exists(_ directory: CgroupDirectory) -> Bool {
        guard !directory.relative.isEmpty else { return true }
        self.setPath(directory.relative, nil)
        return self.path.withUnsafeBufferPointer { faccessat(directory.root, $0.baseAddress!, F_OK, 0) } == 0
    }

    /// Writes `relative/name` (`relative` alone; `name` alone) and a NUL into the path buffer.
    private func setPath(_ relative: String?, _ name: String?) {
        var relative = relative ?? ""
        var name = name ?? (relative.isEmpty ? "." : "")
        let needed = relative.utf8.count + name.utf8.count + 2
        if needed > self.path.count { self.path = [CChar](repeating: 0, count: needed) }
        self.path.withUnsafeMutableBytes { path in
            var index = relative.withUTF8 { bytes in
                path.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                return bytes.count
            }
            if index > 0 && !name.isEmpty {
                path[index] = UInt8(ascii: "/")
                index += 1
            }
            index += name.withUTF8 { bytes in
                (path.baseAddress! + index).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
                return bytes.count
            }
            path[index] = 0
        }
    }

    private func error(_ directory: CgroupDirectory, _ name: String, operation: String) -> FileError {
        let code = errno
        let cgroup = directory.relative.isEmpty ? "" : "/" + directory.relative
        return FileError(path: directory.mountPath + cgroup + "/" + name, errno: code, operation: operation)
    }

    private func close(_ entry: CgroupEntry) {
        for fd in entry.directories where fd >= 0 {
            Glibc.close(fd)
            self.keptDirectories -= 1
        }
        entry.directories = []
    }

    private func closeAll() {
        for entry in self.entries.values { self.close(entry) }
        self.entries = [:]
        for hierarchy in self.hierarchies where hierarchy.fd >= 0 { Glibc.close(hierarchy.fd) }
        self.hierarchies = []
        self.slots = Array(repeating: nil, count: CgroupController.allCases.count)
        self.keptSlots = []
    }
}

/// Reads files of any cgroup below a hierarchy's mount point, with nothing kept between scrapes (the
/// systemd collector's units): the mount points are opened once per reader, each file with one `openat`
/// relative to its mount point, one `read` and one `close`. The bytes returned are valid until the next
/// read; a reader belongs to one scrape.
final class CgroupFileReader {
    private let files = CgroupFiles(budget: 0)
    private var roots: [String: Int32] = [:]

    init() {}

    deinit {
        for fd in self.roots.values where fd >= 0 { Glibc.close(fd) }
    }

    /// The directory of a cgroup in the hierarchy mounted at `mount`, from its path without the
    /// leading `/` (`docker/<id>`, empty for the root); nil when the hierarchy cannot be opened.
    func directory(_ mount: CgroupMount?, _ relative: String) -> CgroupDirectory? {
        guard let mount else { return nil }
        let root: Int32
        if let known = self.roots[mount.path] {
            root = known
        } else {
            root = open(mount.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            self.roots[mount.path] = root
        }
        guard root >= 0 else { return nil }
        return CgroupDirectory(own: relative.isEmpty ? root : -1, root: root, mountPath: mount.path, relative: relative)
    }

    /// Reads a file of a cgroup directory.
    func read(_ directory: CgroupDirectory, _ name: String) throws(FileError) -> ArraySlice<UInt8> {
        try self.files.read(directory, name)
    }
}
