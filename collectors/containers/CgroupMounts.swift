import VigilCore

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

/// The cgroup mounts among a host's mounts (``ScrapeContext/mountinfo()``), with their mount points
/// mapped onto the path roots: a mount point under `/sys` is read under `--path.sysfs`, anything else
/// under `--path.rootfs`. The first mount of each controller wins (later ones are bind mounts of the
/// same hierarchy).
func cgroupMounts(_ mountinfo: [MountinfoEntry], paths: PathRoots) -> CgroupMounts {
    var mounts = CgroupMounts()
    for entry in mountinfo {
        let isV1 = entry.fsType == "cgroup"
        guard isV1 || entry.fsType == "cgroup2" else { continue }
        let mount = CgroupMount(path: readablePath(entry.mountPoint, paths: paths), root: entry.root)
        if !isV1 {
            if mounts.unified == nil { mounts.unified = mount }
            continue
        }
        for option in entry.superOptions.split(separator: ",") {
            switch option {
            case "cpu": if mounts.cpu == nil { mounts.cpu = mount }
            case "cpuacct": if mounts.cpuacct == nil { mounts.cpuacct = mount }
            case "memory": if mounts.memory == nil { mounts.memory = mount }
            case "blkio": if mounts.blkio == nil { mounts.blkio = mount }
            case "pids": if mounts.pids == nil { mounts.pids = mount }
            case "name=systemd": if mounts.systemd == nil { mounts.systemd = mount }
            default: break
            }
        }
    }
    return mounts
}

/// The cgroup mounts of mountinfo's bytes.
func parseCgroupMounts(_ mountinfo: ArraySlice<UInt8>, paths: PathRoots) -> CgroupMounts {
    cgroupMounts(parseMountinfo(mountinfo), paths: paths)
}

/// Where a mount point of the host is readable given the path roots.
private func readablePath(_ mountPoint: String, paths: PathRoots) -> String {
    if mountPoint == "/sys" { return paths.sysfs }
    if mountPoint.hasPrefix("/sys/") { return paths.sys(String(mountPoint.dropFirst(5))) }
    return paths.root(mountPoint)
}
