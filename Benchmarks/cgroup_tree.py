"""Writes cgroup trees as vigil reads them: a root with proc/, sys/ and root/ holding mountinfo, the
cgroup files of v1 (hybrid or not) and v2 hierarchies, per-process network files and the container
runtimes' state files.

Used by Benchmarks/containers_bench.py (trees of many containers) and by
Tests/CollectorsTests/Fixtures/generate-cgroup-fixtures.py (the test fixtures). File formats are the
kernel's, recorded on a Debian 12 host with kernel 6.18 (v1 hybrid) and from the kernel's cgroup-v2
documentation for the v2-only files.
"""

import json
import os
import random

HOST_NETNS = "net:[4026531840]"

MOUNTINFO_HEAD = """22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
"""

# The hybrid host this was recorded on: cpu and cpuacct mounted separately, cgroup2 at unified.
MOUNTINFO_HYBRID = MOUNTINFO_HEAD + """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

# A classic v1 host (Debian 10, CentOS 7): cpu and cpuacct share one hierarchy, no cgroup2.
MOUNTINFO_V1 = MOUNTINFO_HEAD + """31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
35 31 0:32 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,blkio
36 31 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
37 31 0:34 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
"""

MOUNTINFO_V2 = MOUNTINFO_HEAD + """31 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""

# Where each layout's controllers live under sys/fs/cgroup.
V1_DIRECTORIES = {
    "hybrid": {"cpu": "cpu", "cpuacct": "cpuacct", "memory": "memory", "blkio": "blkio", "pids": "pids",
               "systemd": "systemd", "unified": "unified"},
    "v1": {"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct", "memory": "memory", "blkio": "blkio", "pids": "pids",
           "systemd": "systemd"},
}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def symlink(path, target):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)


class Figures:
    """Plausible, distinct figures for one cgroup, derived from a seed."""

    def __init__(self, seed, processes=1, quota=None, memory_limit=None, devices=((254, 0),)):
        r = random.Random(seed)
        self.cpu_ns = r.randrange(10**8, 10**12)
        self.user_ticks = self.cpu_ns // 10**7 * 8 // 10
        self.system_ticks = self.cpu_ns // 10**7 - self.user_ticks
        self.periods = r.randrange(0, 10**6) if quota else 0
        self.throttled = self.periods // 7
        self.throttled_ns = self.throttled * r.randrange(10**5, 10**7)
        self.quota = quota
        self.shares = r.choice([2, 102, 1024, 2048])
        self.rss = r.randrange(1, 4096) * 4096 * 16
        self.cache = r.randrange(1, 4096) * 4096 * 8
        self.inactive_file = self.cache * 2 // 3
        self.active_file = self.cache - self.inactive_file
        self.mapped = self.cache // 5 // 4096 * 4096
        self.swap = r.randrange(0, 64) * 4096
        self.usage = self.rss + self.cache + r.randrange(0, 256) * 4096
        self.max_usage = self.usage + r.randrange(0, 4096) * 4096
        self.failcnt = r.randrange(0, 3)
        self.pgfault = r.randrange(10**3, 10**7)
        self.pgmajfault = self.pgfault // 1000
        self.oom_kill = r.randrange(0, 3)
        self.memory_limit = memory_limit
        self.pids = [4000 + seed * 10 + i for i in range(processes)]
        self.threads = processes * r.randrange(1, 20)
        self.pressure = [r.randrange(0, 10**8) for _ in range(6)]
        self.devices = []
        for major, minor in devices:
            read_bytes = r.randrange(0, 10**10)
            write_bytes = r.randrange(0, 10**10)
            reads = read_bytes // 65536
            writes = write_bytes // 32768
            self.devices.append((major, minor, read_bytes, write_bytes, reads, writes))


def pressure_file(some, full):
    return (f"some avg10=0.00 avg60=0.12 avg300=0.31 total={some}\n"
            f"full avg10=0.00 avg60=0.05 avg300=0.10 total={full}\n")


def blkio_file(devices, index):
    """A blkio file with bytes (index 0) or operations (index 1)."""
    lines = []
    total = 0
    for major, minor, read_bytes, write_bytes, reads, writes in devices:
        read, wrote = (read_bytes, write_bytes) if index == 0 else (reads, writes)
        lines += [f"{major}:{minor} Read {read}", f"{major}:{minor} Write {wrote}",
                  f"{major}:{minor} Sync {wrote}", f"{major}:{minor} Async {read}",
                  f"{major}:{minor} Discard 0", f"{major}:{minor} Total {read + wrote}"]
        total += read + wrote
    return "\n".join(lines + [f"Total {total}"]) + "\n"


def v1_memory_stat(f):
    pages_in = f.usage // 4096
    return f"""cache {f.cache}
rss {f.rss}
rss_huge 0
shmem 0
mapped_file {f.mapped}
dirty 0
writeback 0
workingset_refault_anon 0
workingset_refault_file 0
swap {f.swap}
swapcached 0
pgpgin {pages_in}
pgpgout {pages_in // 3}
pgfault {f.pgfault}
pgmajfault {f.pgmajfault}
inactive_anon {f.rss - 4096}
active_anon 4096
inactive_file {f.inactive_file}
active_file {f.active_file}
unevictable 0
hierarchical_memory_limit 9223372036854771712
hierarchical_memsw_limit 9223372036854771712
total_cache {f.cache}
total_rss {f.rss}
total_rss_huge 0
total_shmem 0
total_mapped_file {f.mapped}
total_dirty 0
total_writeback 0
total_workingset_refault_anon 0
total_workingset_refault_file 0
total_swap {f.swap}
total_swapcached 0
total_pgpgin {pages_in}
total_pgpgout {pages_in // 3}
total_pgfault {f.pgfault}
total_pgmajfault {f.pgmajfault}
total_inactive_anon {f.rss - 4096}
total_active_anon 4096
total_inactive_file {f.inactive_file}
total_active_file {f.active_file}
total_unevictable 0
"""


def v2_memory_stat(f):
    return f"""anon {f.rss}
file {f.cache}
kernel 1974272
kernel_stack 98304
pagetables 225280
sec_pagetables 0
percpu 1440
sock 0
vmalloc 8192
shmem 0
zswap 0
zswapped 0
file_mapped {f.mapped}
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon {f.rss - 4096}
active_anon 4096
inactive_file {f.inactive_file}
active_file {f.active_file}
unevictable 0
slab_reclaimable 589824
slab_unreclaimable 466944
slab 1056768
workingset_refault_anon 0
workingset_refault_file 0
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
pgscan 0
pgsteal 0
pgscan_kswapd 0
pgscan_direct 0
pgscan_khugepaged 0
pgsteal_kswapd 0
pgsteal_direct 0
pgsteal_khugepaged 0
pgfault {f.pgfault}
pgmajfault {f.pgmajfault}
pgrefill 0
pgactivate 12
pgdeactivate 0
pglazyfree 0
pglazyfreed 0
zswpin 0
zswpout 0
thp_fault_alloc 0
thp_collapse_alloc 0
"""


def procs_file(pids):
    return "".join(f"{pid}\n" for pid in pids)


def write_v1_cgroup(base, layout, path, f, root=False, bfq=False):
    """The files of one cgroup in every v1 controller (and the unified tree of a hybrid host). With
    `bfq`, the BFQ scheduler's files have figures (half the throttling ones) rather than none."""
    dirs = V1_DIRECTORIES[layout]

    def d(controller):
        return os.path.join(base, "sys/fs/cgroup", dirs[controller]) + ("" if path == "/" else path)

    procs = procs_file(f.pids)
    write(f"{d('cpu')}/cpu.shares", f"{f.shares}\n")
    write(f"{d('cpu')}/cpu.cfs_quota_us", f"{f.quota if f.quota else -1}\n")
    write(f"{d('cpu')}/cpu.cfs_period_us", "100000\n")
    write(f"{d('cpu')}/cpu.stat",
          f"nr_periods {f.periods}\nnr_throttled {f.throttled}\nthrottled_time {f.throttled_ns}\n"
          "nr_bursts 0\nburst_time 0\n")
    write(f"{d('cpuacct')}/cpuacct.usage", f"{f.cpu_ns}\n")
    write(f"{d('cpuacct')}/cpuacct.stat", f"user {f.user_ticks}\nsystem {f.system_ticks}\n")
    write(f"{d('cpu')}/cgroup.procs", procs)
    write(f"{d('memory')}/memory.usage_in_bytes", f"{f.usage}\n")
    write(f"{d('memory')}/memory.max_usage_in_bytes", f"{f.max_usage}\n")
    write(f"{d('memory')}/memory.limit_in_bytes", f"{f.memory_limit or 9223372036854771712}\n")
    write(f"{d('memory')}/memory.soft_limit_in_bytes", "9223372036854771712\n")
    write(f"{d('memory')}/memory.memsw.limit_in_bytes", f"{f.memory_limit or 9223372036854771712}\n")
    write(f"{d('memory')}/memory.use_hierarchy", "1\n")
    write(f"{d('memory')}/memory.failcnt", f"{f.failcnt}\n")
    write(f"{d('memory')}/memory.stat", v1_memory_stat(f))
    write(f"{d('memory')}/memory.oom_control", f"oom_kill_disable 0\nunder_oom 0\noom_kill {f.oom_kill}\n")
    write(f"{d('memory')}/cgroup.procs", procs)
    halved = [(major, minor, rb // 2, wb // 2, ri // 2, wi // 2) for major, minor, rb, wb, ri, wi in f.devices]
    write(f"{d('blkio')}/blkio.bfq.io_service_bytes_recursive", blkio_file(halved, 0) if bfq else "Total 0\n")
    write(f"{d('blkio')}/blkio.bfq.io_serviced_recursive", blkio_file(halved, 1) if bfq else "Total 0\n")
    write(f"{d('blkio')}/blkio.throttle.io_service_bytes_recursive", blkio_file(f.devices, 0))
    write(f"{d('blkio')}/blkio.throttle.io_serviced_recursive", blkio_file(f.devices, 1))
    write(f"{d('blkio')}/blkio.throttle.io_service_bytes", blkio_file(f.devices, 0))
    write(f"{d('blkio')}/blkio.throttle.io_serviced", blkio_file(f.devices, 1))
    write(f"{d('blkio')}/cgroup.procs", procs)
    if not root:
        write(f"{d('pids')}/pids.current", f"{f.threads}\n")
        write(f"{d('pids')}/pids.max", "max\n")
    write(f"{d('pids')}/cgroup.procs", procs)
    write(f"{d('systemd')}/cgroup.procs", procs)
    if "unified" in dirs:
        p = f.pressure
        write(f"{d('unified')}/cpu.pressure", pressure_file(p[0], p[1]))
        write(f"{d('unified')}/memory.pressure", pressure_file(p[2], p[3]))
        write(f"{d('unified')}/io.pressure", pressure_file(p[4], p[5]))
        write(f"{d('unified')}/cgroup.procs", procs)
        write(f"{d('unified')}/cpu.stat",
              f"usage_usec {f.cpu_ns // 1000}\nuser_usec {f.user_ticks * 10000}\n"
              f"system_usec {f.system_ticks * 10000}\nnice_usec 0\n")


def write_v2_cgroup(base, path, f, root=False, procs_in_child=None):
    """The files of one cgroup of a v2 host. `procs_in_child` puts the processes in a child cgroup
    (rootless Podman's `container`)."""
    d = os.path.join(base, "sys/fs/cgroup") + ("" if path == "/" else path)
    p = f.pressure
    write(f"{d}/cpu.stat",
          f"usage_usec {f.cpu_ns // 1000}\nuser_usec {f.user_ticks * 10000}\nsystem_usec {f.system_ticks * 10000}\n"
          f"core_sched.force_idle_usec 0\nnr_periods {f.periods}\nnr_throttled {f.throttled}\n"
          f"throttled_usec {f.throttled_ns // 1000}\nnr_bursts 0\nburst_usec 0\n")
    write(f"{d}/memory.stat", v2_memory_stat(f))
    write(f"{d}/io.stat", "".join(
        f"{major}:{minor} rbytes={rb} wbytes={wb} rios={ri} wios={wi} dbytes=0 dios=0\n"
        for major, minor, rb, wb, ri, wi in f.devices))
    write(f"{d}/cpu.pressure", pressure_file(p[0], p[1]))
    write(f"{d}/memory.pressure", pressure_file(p[2], p[3]))
    write(f"{d}/io.pressure", pressure_file(p[4], p[5]))
    if root:
        write(f"{d}/cgroup.procs", procs_file(f.pids))
        return
    write(f"{d}/cpu.max", f"{f.quota if f.quota else 'max'} 100000\n")
    write(f"{d}/cpu.weight", "100\n" if f.shares == 1024 else f"{max(1, f.shares * 100 // 1024)}\n")
    write(f"{d}/memory.current", f"{f.usage}\n")
    write(f"{d}/memory.peak", f"{f.max_usage}\n")
    write(f"{d}/memory.max", f"{f.memory_limit}\n" if f.memory_limit else "max\n")
    write(f"{d}/memory.min", "0\n")
    write(f"{d}/memory.swap.current", f"{f.swap}\n")
    write(f"{d}/memory.swap.max", "max\n")
    write(f"{d}/memory.events", f"low 0\nhigh 0\nmax {f.failcnt}\noom {f.oom_kill}\noom_kill {f.oom_kill}\n"
                                "oom_group_kill 0\n")
    write(f"{d}/pids.current", f"{f.threads}\n")
    write(f"{d}/pids.max", "max\n")
    if procs_in_child:
        write(f"{d}/cgroup.procs", "")
        write(f"{d}/{procs_in_child}/cgroup.procs", procs_file(f.pids))
    else:
        write(f"{d}/cgroup.procs", procs_file(f.pids))


def write_process(base, pid, netns, interfaces):
    """proc/<pid>/ns/net and proc/<pid>/net/dev."""
    symlink(f"{base}/proc/{pid}/ns/net", netns)
    write(f"{base}/proc/{pid}/net/dev", net_dev(interfaces))


def net_dev(interfaces):
    lines = ["Inter-|   Receive                                                |  Transmit",
             " face |bytes    packets errs drop fifo frame compressed multicast|"
             "bytes    packets errs drop fifo colls carrier compressed"]
    for name, seed in interfaces:
        r = random.Random(f"{name}-{seed}")
        rx = [r.randrange(0, 10**9), r.randrange(0, 10**6), r.randrange(0, 9), r.randrange(0, 99)]
        tx = [r.randrange(0, 10**9), r.randrange(0, 10**6), r.randrange(0, 9), r.randrange(0, 99)]
        lines.append(f"{name:>6}: {rx[0]:>8} {rx[1]:>7} {rx[2]:>4} {rx[3]:>4}    0     0          0         0 "
                     f"{tx[0]:>8} {tx[1]:>7} {tx[2]:>4} {tx[3]:>4}    0     0       0          0")
    return "\n".join(lines) + "\n"


def write_host(base, mountinfo):
    """The host files: mountinfo, the host network namespace, machine figures and a block device."""
    write(f"{base}/proc/self/mountinfo", mountinfo)
    write_process(base, 1, HOST_NETNS, [("lo", 0), ("eth0", 0), ("docker0", 0)])
    write(f"{base}/proc/meminfo", "MemTotal:       24684092 kB\nMemFree:        20000000 kB\n")
    write(f"{base}/proc/sys/kernel/random/boot_id", "f3070d0c-deee-48ca-8c86-c4f77cf925ec\n")
    write(f"{base}/proc/diskstats",
          "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
          " 254       0 vda 97254 16201 5878310 31203 193027 160117 9468864 193398 0 175456 242271 0 0 0 0 0 0\n")
    write(f"{base}/root/etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    write(f"{base}/sys/devices/system/cpu/online", "0-1\n")
    symlink(f"{base}/sys/dev/block/254:0", "../../devices/pci0000:00/0000:00:02.0/virtio1/block/vda")


def docker_config(container_id, name, image, labels=None, pid=0):
    """Docker's config.v2.json, with the keys around the ones vigil reads."""
    return json.dumps({
        "StreamConfig": {}, "State": {"Running": True, "Paused": False, "Pid": pid, "ExitCode": 0,
                                      "StartedAt": "2024-05-16T10:11:12.123456789Z"},
        "ID": container_id, "Created": "2024-05-16T10:11:11.987654321Z", "Managed": False,
        "Path": "/docker-entrypoint.sh", "Args": ["nginx", "-g", "daemon off;"],
        "Config": {"Hostname": container_id[:12], "Domainname": "", "User": "", "AttachStdin": False,
                   "Tty": False, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                         "NGINX_VERSION=1.25.5"],
                   "Cmd": ["nginx", "-g", "daemon off;"], "Image": image, "Volumes": None, "WorkingDir": "",
                   "Entrypoint": ["/docker-entrypoint.sh"], "OnBuild": None, "Labels": labels or {},
                   "StopSignal": "SIGQUIT"},
        "Image": "sha256:" + "ab" * 32, "NetworkSettings": {"Bridge": "", "Ports": {"80/tcp": None}},
        "LogPath": f"/var/lib/docker/containers/{container_id}/{container_id}-json.log", "Name": "/" + name,
        "Driver": "overlay2", "RestartCount": 0, "MountLabel": "", "ProcessLabel": "",
    }, separators=(",", ":"))


def oci_config(annotations, hostname="pod"):
    """An OCI runtime spec (containerd's, CRI-O's, Podman's config.json) with its annotations."""
    return json.dumps({
        "ociVersion": "1.1.0",
        "process": {"user": {"uid": 65535, "gid": 65535}, "args": ["/pause"], "env": ["PATH=/usr/bin:/bin"],
                    "cwd": "/", "capabilities": {"bounding": ["CAP_CHOWN"]}, "oomScoreAdj": -998},
        "root": {"path": "rootfs", "readonly": True}, "hostname": hostname,
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                    "options": ["nosuid", "noexec", "nodev"]}],
        "annotations": annotations,
        "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}], "cpu": {"shares": 2}},
                  "cgroupsPath": "kubepods-besteffort-pod.slice:cri-containerd:x",
                  "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                                 {"type": "network"}],
                  "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                              "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}},
    }, indent="\t")


def write_docker(base, container_id, text):
    write(f"{base}/root/var/lib/docker/containers/{container_id}/config.v2.json", text)


def write_containerd(base, container_id, text, namespace="k8s.io"):
    write(f"{base}/root/run/containerd/io.containerd.runtime.v2.task/{namespace}/{container_id}/config.json", text)


def write_containers_storage(base, container_id, text):
    write(f"{base}/root/var/lib/containers/storage/overlay-containers/{container_id}/userdata/config.json", text)


def container_id(seed):
    return "%064x" % random.Random(seed).getrandbits(256)
