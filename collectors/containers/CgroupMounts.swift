import VigilCore

// Only what the containers collector needs from /proc/self/mountinfo: the cgroup mounts. The
// filesystem collector has its own general mountinfo parser; the two are to be unified.

/// One mounted cgroup hierarchy.
struct CgroupMount: Equatable, Sendable {
    /// Where vigil reads it: the mount point mapped under `--path.sysfs` (or `--path.rootfs`).
    var path: String
    /// The mount's root inside the hierarchy (`/` unless a sub-tree is bind-mounted).
    var root: String
}

/// The cgroup hierarchies of the host, found by file system type and controller, never by directory
/// name (a v1-hybrid host has empty decoy directories such as `cpu,cpuacct` and `net_cls,net_prio`).
struct CgroupMounts: Equatable, Sendable {
    /// The cgroup2 hierarchy: the whole tree on a v2 host, `/sys/fs/cgroup/unified` on a hybrid one.
    var unified: CgroupMount?
    var cpu: CgroupMount?
    var cpuacct: CgroupMount?
    var memory: CgroupMount?
    var blkio: CgroupMount?
    var pids: CgroupMount?
    /// systemd's own named v1 hierarchy (`name=systemd`).
    var systemd: CgroupMount?

    var isEmpty: Bool { self.unified == nil && !self.hasV1 }

    /// Whether any v1 controller is mounted; then cgroup2 (if any) is a hybrid host's unified tree.
    var hasV1: Bool {
        self.cpu != nil || self.cpuacct != nil || self.memory != nil || self.blkio != nil || self.pids != nil
    }

    /// The hierarchy whose directories are walked to find cgroups: every container runtime creates
    /// its cgroups in the memory controller, so a v1 host is walked there.
    var walked: CgroupMount? {
        guard self.hasV1 else { return self.unified }
        return self.memory ?? self.cpuacct ?? self.cpu ?? self.pids ?? self.blkio
    }
}

/// Parses mountinfo lines into the cgroup mounts, mapping mount points onto the path roots: a mount
/// point under `/sys` is read under `--path.sysfs`, anything else under `--path.rootfs`. The first
/// mount of each controller wins (later ones are bind mounts of the same hierarchy).
func parseCgroupMounts(_ mountinfo: ArraySlice<UInt8>, paths: PathRoots) -> CgroupMounts {
    var mounts = CgroupMounts()
    for line in mountinfo.lines {
        // id parent major:minor root mount-point options [optional…] - fstype source super-options
        var fields = line.fields
        guard fields.next() != nil, fields.next() != nil, fields.next() != nil,
            let root = fields.next(), let mountPoint = fields.next(), fields.next() != nil
        else { continue }
        var separatorFound = false
        while let field = fields.next() {
            if field.equals("-") {
                separatorFound = true
                break
            }
        }
        guard separatorFound, let fstype = fields.next(), fields.next() != nil else { continue }
        let superOptions = fields.next() ?? []
        let isV1 = fstype.equals("cgroup")
        guard isV1 || fstype.equals("cgroup2") else { continue }
        let mount = CgroupMount(
            path: readablePath(unescapeMountField(mountPoint), paths: paths),
            root: unescapeMountField(root)
        )
        if !isV1 {
            if mounts.unified == nil { mounts.unified = mount }
            continue
        }
        for option in superOptions.split(byte: UInt8(ascii: ",")) {
            if option.equals("cpu") {
                if mounts.cpu == nil { mounts.cpu = mount }
            } else if option.equals("cpuacct") {
                if mounts.cpuacct == nil { mounts.cpuacct = mount }
            } else if option.equals("memory") {
                if mounts.memory == nil { mounts.memory = mount }
            } else if option.equals("blkio") {
                if mounts.blkio == nil { mounts.blkio = mount }
            } else if option.equals("pids") {
                if mounts.pids == nil { mounts.pids = mount }
            } else if option.equals("name=systemd") {
                if mounts.systemd == nil { mounts.systemd = mount }
            }
        }
    }
    return mounts
}

/// Where a mount point of the host is readable given the path roots.
private func readablePath(_ mountPoint: String, paths: PathRoots) -> String {
    if mountPoint == "/sys" { return paths.sysfs }
    if mountPoint.hasPrefix("/sys/") { return paths.sys(String(mountPoint.dropFirst(5))) }
    return paths.root(mountPoint)
}

/// Mountinfo escapes space, tab, newline and backslash as three octal digits (`\040`).
func unescapeMountField(_ field: ArraySlice<UInt8>) -> String {
    guard field.contains(UInt8(ascii: "\\")) else { return field.string }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(field.count)
    var index = field.startIndex
    while index < field.endIndex {
        let byte = field[index]
        if byte == UInt8(ascii: "\\"), field.endIndex - index >= 4 {
            let digits = field[(index + 1)..<(index + 4)]
            if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) {
                var value: UInt16 = 0
                for digit in digits { value = value * 8 + UInt16(digit - UInt8(ascii: "0")) }
                if value <= 0xFF {
                    bytes.append(UInt8(value))
                    index += 4
                    continue
                }
            }
        }
        bytes.append(byte)
        index += 1
    }
    return String(decoding: bytes, as: UTF8.self)
}
