import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One of systemd's IP accounting maps: a BPF array of two counters (packets, bytes) that the unit's
/// firewall program adds to. systemd reports `IPIngressBytes` / `IPEgressBytes` as the map's bytes
/// plus what earlier maps counted before a re-execution.
///
/// Kept by id, not by descriptor: vigil holds no descriptor per unit between scrapes, and a map systemd
/// has let go (the kernel frees it, and hands out ids cyclically, so not soon again) no longer reads:
/// the unit is then read again.
struct IPAccountingMap: Equatable, Sendable {
    let id: UInt32

    /// The bytes counted, or nil when the map is gone or cannot be read.
    func bytes() -> UInt64? {
        let fd = CSystemd_bpf_fd_by_id(1, self.id)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var value: UInt64 = 0
        // systemd's MAP_KEY_BYTES; MAP_KEY_PACKETS is 0.
        return CSystemd_bpf_map_lookup_u64(fd, 1, &value) == 0 ? value : nil
    }

    /// The ingress and egress maps of the unit whose control group is the cgroup2 directory
    /// `directory`: the array maps of the `sd_fw_ingress` and `sd_fw_egress` programs systemd attached
    /// there. Nil for a direction without one, and for both without the privileges `bpf(2)` needs here
    /// (CAP_NET_ADMIN to list a cgroup's programs, CAP_SYS_ADMIN to open them): the figures then come
    /// from systemd over the bus.
    static func of(directory: String) -> (ingress: IPAccountingMap?, egress: IPAccountingMap?) {
        let cgroup = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cgroup >= 0 else { return (nil, nil) }
        defer { close(cgroup) }
        return (
            Self.find(cgroup, CSystemd_bpf_cgroup_inet_ingress, "sd_fw_ingress"),
            Self.find(cgroup, CSystemd_bpf_cgroup_inet_egress, "sd_fw_egress")
        )
    }

    private static func find(_ cgroup: Int32, _ attachType: UInt32, _ program: StaticString) -> IPAccountingMap? {
        var programs = [UInt32](repeating: 0, count: 8)
        var count = UInt32(programs.count)
        guard CSystemd_bpf_prog_query(cgroup, attachType, &programs, &count) == 0 else { return nil }
        for id in programs.prefix(Int(min(count, UInt32(programs.count)))) {
            let fd = CSystemd_bpf_fd_by_id(0, id)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var name = [CChar](repeating: 0, count: 17)
            var maps = [UInt32](repeating: 0, count: 8)
            var mapCount = UInt32(maps.count)
            guard CSystemd_bpf_prog_maps(fd, &name, &maps, &mapCount) == 0,
                strcmp(name, UnsafeRawPointer(program.utf8Start).assumingMemoryBound(to: CChar.self)) == 0
            else { continue }
            // Its other maps, if any, are the address allow and deny lists (LPM tries).
            for map in maps.prefix(Int(min(mapCount, UInt32(maps.count)))) {
                let mapFD = CSystemd_bpf_fd_by_id(1, map)
                guard mapFD >= 0 else { continue }
                defer { close(mapFD) }
                if CSystemd_bpf_map_is_u64_array(mapFD, 2) == 1 { return IPAccountingMap(id: map) }
            }
        }
        return nil
    }
}
