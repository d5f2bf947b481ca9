"""Cost of vigil's containers collector at 100, 500 and 1,000 containers.

Generates cgroup trees (v1 hybrid and v2) of Kubernetes nodes — pods of a sandbox and an application
container each, with containerd's state files, one network namespace per pod and no swap — runs the release
`vigil` binary on each (--path.procfs/--path.sysfs/--path.rootfs, default collectors, scraped with
`?collect[]=containers`) and prints, per tree:

  (a) CPU per scrape of the whole agent (user + system of the process / scrapes), identity encoding,
      and the kernel's share of it;
  (b) the same with `Accept-Encoding: gzip`, as Prometheus scrapes;
  (c) the collector's own time (node_scrape_collector_duration_seconds): reading the cgroups; the text is
      written while the response is sent, 64 KiB at a time, and counts in (a) and (b) only;
  (d) RSS growth against an empty tree: steady (VmRSS between scrapes) and peak (VmHWM);
  (e) exposition bytes (identity and gzip) and series;
  (f) at the largest size, the kernel's floor: the system time of opening, reading and closing once, by
      the benchmark itself, the cgroup files a scrape reads (what no agent reading cgroupfs can spare);
  (g) as root, the system time of such reads from empty cgroups made in this host's cgroup2 hierarchy,
      against ordinary files of the same contents: how far the trees' kernel figures are from a live host's;

then the cost per container and the marginal cost per added container, whose constancy across sizes
shows the cost is linear, and the issue's targets (CPU ≤ 20 ms per scrape and RSS growth ≤ 10 MB at
1,000 containers, cost linear: the marginal cost at 500→1,000 at most 1.25 times that at 100→500, the
median of that ratio over the rounds) marked met or missed.

Each tree is measured in `--rounds` batches of `--scrapes` scrapes: the CPU figures are the median of
the batches, with their spread. The trees of one layout have their agents running side by side, and
their batches alternate round by round, so that a drift of the machine's speed meets every size alike
and does not pass for a cost that grows with the number of containers. The machine the figures are taken
on should be quiet; on a shared one the spread shows how much to trust them. The trees are ordinary files
(tmpfs or disk), not cgroupfs: (g) says how much dearer a live host's cgroup files are.

Steady state: the first scrapes read every state file and every limit; limits are read again once a
minute (the collector's specMaxAge), a few cgroups' at each scrape, so the scrapes measured here read the
figures and about a hundredth of the limits.

Usage: python3 Benchmarks/containers_bench.py [--binary .build/release/vigil] [--scrapes 10]
       [--rounds 5] [--sizes 100,500,1000] [--layouts hybrid,v2]   (make bench-containers)
"""

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cgroup_tree import (MOUNTINFO_HYBRID, MOUNTINFO_V2, Figures, container_id, oci_config,  # noqa: E402
                         write_containerd, write_host, write_process, write_v1_cgroup, write_v2_cgroup)
from node_exporter_compare import cpu_seconds, run_nanoseconds  # noqa: E402

PORT = 21650
# The pods' QoS slice and the slice above it: cgroups a scrape neither reports nor reads.
KUBEPODS = "/kubepods.slice"
QOS = f"{KUBEPODS}/kubepods-burstable.slice"


def pod_annotations(kind, pod, uid, name, image):
    annotations = {
        "io.kubernetes.cri.container-type": kind,
        "io.kubernetes.cri.sandbox-id": container_id(uid),
        "io.kubernetes.cri.sandbox-name": pod,
        "io.kubernetes.cri.sandbox-namespace": "bench",
        "io.kubernetes.cri.sandbox-uid": uid,
        "io.kubernetes.cri.sandbox-log-directory": f"/var/log/pods/bench_{pod}_{uid}",
    }
    if kind == "container":
        annotations["io.kubernetes.cri.container-name"] = name
        annotations["io.kubernetes.cri.image-name"] = image
    return annotations


def generate(base, layout, containers):
    """`containers` containers in pods of two (sandbox and application), burstable QoS."""
    shutil.rmtree(base, ignore_errors=True)
    write_host(base, MOUNTINFO_HYBRID if layout == "hybrid" else MOUNTINFO_V2)
    # No swap device, as kubelet requires by default.
    with open(f"{base}/proc/swaps", "w") as swaps:
        swaps.write("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")

    def cgroup(path, figures, root=False):
        if layout == "hybrid":
            write_v1_cgroup(base, "hybrid", path, figures, root=root)
        else:
            write_v2_cgroup(base, path, figures, root=root)

    cgroup("/", Figures(0, processes=40), root=True)
    cgroup(KUBEPODS, Figures(1))
    cgroup(QOS, Figures(2))
    for index in range(containers // 2):
        uid = "%08x-%04x-4%03x-8%03x-%012x" % (index, index % 65536, index % 4096, (index * 7) % 4096, index * 31)
        pod = f"{QOS}/kubepods-burstable-pod{uid.replace('-', '_')}.slice"
        name = f"app-{index}"
        cgroup(pod, Figures(10 + index))
        sandbox, app = container_id(uid), container_id(f"app-{uid}")
        sandbox_figures = Figures(100000 + index)
        app_figures = Figures(200000 + index, processes=3, quota=100000, memory_limit=(256 << 20))
        cgroup(f"{pod}/cri-containerd-{sandbox}.scope", sandbox_figures)
        cgroup(f"{pod}/cri-containerd-{app}.scope", app_figures)
        write_containerd(base, sandbox, oci_config(pod_annotations("sandbox", name, uid, "", "")))
        write_containerd(base, app, oci_config(pod_annotations(
            "container", name, uid, "app", "registry.example.com/bench/app:1.0")))
        netns = f"net:[{4026540000 + index}]"
        write_process(base, sandbox_figures.pids[0], netns, [("lo", index), ("eth0", index)])
        for pid in app_figures.pids:
            write_process(base, pid, netns, [("lo", index), ("eth0", index)])


def status_kib(pid, key):
    return int(re.search(key + r":\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))


def scrape(port, gzip=False):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics?collect[]=containers")
    if gzip:
        request.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def wait_for_port(port, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"vigil did not listen on {port}")


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class Result:
    """The figures of one tree."""

    def __init__(self):
        self.cpu = []           # (a) CPU seconds per scrape, one per round, identity
        self.kernel = []        # kernel share of (a)
        self.cpu_gzip = []      # (b)
        self.duration = []      # (c) collector seconds, every scrape
        self.rss = 0            # (d) KiB, steady
        self.hwm = 0            # (d) KiB, peak
        self.body = 0           # (e) bytes
        self.body_gzip = 0
        self.series = 0
        self.last_body = b""
        self.last_compressed = b""


def batch(agent, port, scrapes, gzip):
    """CPU seconds per scrape over `scrapes` scrapes, the kernel's share, and the last body.

    The CPU time comes from the process's CPU-time clock, in nanoseconds: /proc/PID/stat counts in 10 ms
    ticks, a tenth of a small tree's batch. The kernel's share comes from those ticks."""
    user_before, system_before = cpu_seconds(agent.pid)
    ran_before = run_nanoseconds(agent.pid)
    for _ in range(scrapes):
        body = scrape(port, gzip)
    ran = (run_nanoseconds(agent.pid) - ran_before) / 1e9
    user_after, system_after = cpu_seconds(agent.pid)
    ticks = user_after - user_before + system_after - system_before
    return ran / scrapes, (system_after - system_before) / max(ticks, 1e-9), body


class Agent:
    """vigil running on one generated tree, and the figures measured of it."""

    def __init__(self, binary, base, port, nofile):
        def limit_files():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.port = port
        self.result = Result()
        self.process = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}", f"--path.procfs={base}/proc",
             f"--path.sysfs={base}/sys", f"--path.rootfs={base}/root", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limit_files)
        try:
            wait_for_port(port)
            body = scrape(port)  # first scrapes: state files, limits
            scrape(port, gzip=True)
            if b'node_scrape_collector_success{collector="containers"} 1' not in body:
                raise RuntimeError("the containers collector failed: " + body[-2000:].decode())
        except Exception:
            self.stop()
            raise

    def round(self, scrapes):
        """One batch of identity scrapes and one of gzip scrapes."""
        result = self.result
        cpu, kernel, result.last_body = batch(self.process, self.port, scrapes, gzip=False)
        result.cpu.append(cpu)
        result.kernel.append(kernel)
        # Between scrapes: the heap is trimmed 100 ms after the last one.
        time.sleep(0.2)
        result.rss = max(result.rss, status_kib(self.process.pid, "VmRSS"))
        cpu, _, result.last_compressed = batch(self.process, self.port, scrapes, gzip=True)
        result.cpu_gzip.append(cpu)

    def finish(self, scrapes):
        """The collector's own time over `scrapes` scrapes, the peak RSS and the exposition's size."""
        result = self.result
        for _ in range(scrapes):
            match = re.search(rb'node_scrape_collector_duration_seconds\{collector="containers"\} (\S+)',
                              scrape(self.port))
            result.duration.append(float(match.group(1)))
        result.hwm = status_kib(self.process.pid, "VmHWM")
        result.body = len(result.last_body)
        result.body_gzip = len(result.last_compressed)
        result.series = sum(1 for line in result.last_body.split(b"\n")
                            if line.startswith((b"container_", b"machine_")))
        return result

    def stop(self):
        self.process.terminate()
        self.process.wait()


def measure(binary, bases, scrapes, rounds, ports, nofile):
    """The figures of each tree, their agents running side by side and their batches interleaved round
    by round: the VM's speed drifts over the minute this takes, and every size meets the same drift, so
    that the marginal costs between sizes compare like with like."""
    agents = []
    try:
        for base, port in zip(bases, ports):
            agents.append(Agent(binary, base, port, nofile))
        for _ in range(rounds):
            for agent in agents:
                agent.round(scrapes)
        return [agent.finish(scrapes) for agent in agents]
    finally:
        for agent in agents:
            agent.stop()


# The files a steady-state scrape opens in every cgroup directory, by hierarchy (seen with strace; limits
# are cached). Left out: v1 `cpu.stat`, read only for containers with a CPU quota, and the network's files.
SCRAPED_FILES = {
    "v2": {"": ["cpu.stat", "memory.current", "memory.stat", "memory.peak", "memory.events", "io.stat",
                "cpu.pressure", "memory.pressure", "io.pressure"]},
    "hybrid": {"cpuacct": ["cpuacct.usage", "cpuacct.stat"],
               "memory": ["memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt", "memory.stat",
                          "memory.oom_control"],
               "blkio": ["blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"]},
}


def opened(path, names):
    """A directory opened as vigil keeps it, and which of `names` it holds."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY), [name for name in names if os.path.exists(f"{path}/{name}")]


def system_seconds_per_pass(directories, passes, groups=5):
    """System CPU seconds of opening, reading and closing every file of `directories` once, relative to
    its directory as vigil does: one figure per group of `passes` passes. The interpreter's own work is
    user time, not counted here. The kernel splits a process's time between user and system at each
    tick (4 ms at 250 Hz), so a group must last many ticks."""
    figures = []
    for _ in range(groups):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        for _ in range(passes):
            for directory, names in directories:
                for name in names:
                    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
                    os.read(fd, 65536)
                    os.close(fd)
        figures.append((resource.getrusage(resource.RUSAGE_SELF).ru_stime - before) / passes)
    return figures


def kernel_floor(base, layout):
    """The system seconds of reading once the cgroup files a scrape of the tree at `base` reads (one
    figure per group of passes), and how many files that is."""
    directories = []
    try:
        for hierarchy, names in SCRAPED_FILES[layout].items():
            root = os.path.join(base, "sys/fs/cgroup", hierarchy)
            for path, _, _ in os.walk(root):
                if "/" + os.path.relpath(path, root) not in (KUBEPODS, QOS):
                    directories.append(opened(path, names))
        return system_seconds_per_pass(directories, 8), sum(len(names) for _, names in directories)
    finally:
        for directory, _ in directories:
            os.close(directory)


def writable_cgroup2():
    """A cgroup2 mount point, read-write, or None."""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            mount, _, kind = line.partition(" - ")
            if kind.split()[0] == "cgroup2" and "rw" in mount.split()[5].split(","):
                return mount.split()[4]
    return None


def cgroupfs_cost(work, cgroups):
    """System seconds per file of reading the v2 files a scrape reads, from `cgroups` empty cgroups made
    in this host's cgroup2 hierarchy and from ordinary files with the same contents: the generated trees
    are ordinary files, and this says how far their kernel figures are from a live host's. None when no
    cgroup can be made (not root, no cgroup2)."""
    mount = writable_cgroup2()
    if mount is None:
        return None
    live = os.path.join(mount, f"vigil-containers-bench-{os.getpid()}")
    copies = os.path.join(work, "cgroupfs-copies")
    made, directories = [], []
    try:
        try:
            os.mkdir(live)
            made.append(live)
            # The children have the controllers their parent delegates: as many as the host lets it.
            for controller in ("cpu", "memory", "io"):
                try:
                    with open(f"{live}/cgroup.subtree_control", "w") as control:
                        control.write(f"+{controller}")
                except OSError:
                    pass
            for index in range(cgroups):
                os.mkdir(f"{live}/c{index}")
                made.append(f"{live}/c{index}")
        except OSError:
            return None
        probe, names = opened(f"{live}/c0", SCRAPED_FILES["v2"][""])
        os.close(probe)
        for index in range(cgroups):
            os.makedirs(f"{copies}/c{index}")
            for name in names:
                with open(f"{live}/c{index}/{name}", "rb") as source, open(f"{copies}/c{index}/{name}", "wb") as copy:
                    copy.write(source.read())
        on_cgroupfs = [opened(f"{live}/c{index}", names) for index in range(cgroups)]
        directories += on_cgroupfs
        on_files = [opened(f"{copies}/c{index}", names) for index in range(cgroups)]
        directories += on_files
        # Alternated, so that a drift of the machine's speed meets both alike.
        live_figures, file_figures = [], []
        for _ in range(7):
            live_figures += system_seconds_per_pass(on_cgroupfs, 16, groups=1)
            file_figures += system_seconds_per_pass(on_files, 16, groups=1)
        files = len(names) * cgroups
        return names, median(live_figures) / files, median(file_figures) / files
    finally:
        for directory, _ in directories:
            os.close(directory)
        shutil.rmtree(copies, ignore_errors=True)
        for path in reversed(made):
            os.rmdir(path)


def verdict(met):
    return "met" if met else "MISSED"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=".build/release/vigil")
    parser.add_argument("--scrapes", type=int, default=10, help="scrapes per batch")
    parser.add_argument("--rounds", type=int, default=5, help="batches per tree (medians are printed)")
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--layouts", default="hybrid,v2")
    parser.add_argument("--keep", action="store_true", help="keep the generated trees")
    parser.add_argument("--work", default=f"/tmp/vigil-containers-bench-{os.getpid()}", help="where trees go")
    parser.add_argument("--port", type=int, default=PORT, help="first of the TCP ports used (up to +20)")
    parser.add_argument("--nofile", type=int, default=65536,
                        help="the agent's limit of open files, as the packaged unit's LimitNOFILE (0: inherited); "
                             "lowered to the hard limit this shell may not raise")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if args.nofile and hard != resource.RLIM_INFINITY:
        args.nofile = min(args.nofile, hard)
    sizes = [int(size) for size in args.sizes.split(",")]
    work = args.work
    os.makedirs(work, exist_ok=True)
    print(f"vigil containers collector: {args.rounds} × {args.scrapes} scrapes per tree, pods of a sandbox and "
          f"one container; open files limit {args.nofile or 'inherited'}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print("CPU: median of the rounds [min–max]; (a) identity, (b) gzip, (c) the collector's own time; "
          "RSS growth against an empty tree")
    print(f"{'layout':<7} {'containers':>10} {'series':>7} {'MB':>6} {'gzip MB':>7} "
          f"{'(a) CPU ms':>20} {'kernel':>6} {'(b) gzip CPU ms':>20} {'(c) collect ms':>14} "
          f"{'RSS +MB':>7} {'peak +MB':>8} {'µs/container':>12} {'marginal':>9}")
    verdicts = []
    floors = {}
    try:
        for index, layout in enumerate(args.layouts.split(",")):
            base = f"{work}/{layout}"
            generate(f"{base}/empty", layout, 0)
            empty, = measure(args.binary, [f"{base}/empty"], 3, 1, [args.port + index * 10], args.nofile)
            for size in sizes:
                generate(f"{base}/{size}", layout, size)
            results = measure(args.binary, [f"{base}/{size}" for size in sizes], args.scrapes, args.rounds,
                              [args.port + index * 10 + offset + 1 for offset in range(len(sizes))], args.nofile)
            for offset, (size, r) in enumerate(zip(sizes, results)):
                cpu = median(r.cpu)
                per_container = cpu / size * 1e6
                if offset == 0:
                    marginal = ""
                else:
                    previous = median(results[offset - 1].cpu)
                    marginal = f"{(cpu - previous) / (size - sizes[offset - 1]) * 1e6:.1f}"

                def spread(values):
                    return f"{median(values) * 1e3:.1f} [{min(values) * 1e3:.0f}–{max(values) * 1e3:.0f}]"

                print(f"{layout:<7} {size:>10} {r.series:>7} {r.body / 1e6:>6.2f} {r.body_gzip / 1e6:>7.2f} "
                      f"{spread(r.cpu):>20} {median(r.kernel) * 100:>5.0f}% {spread(r.cpu_gzip):>20} "
                      f"{median(r.duration) * 1e3:>14.1f} {(r.rss - empty.rss) / 1024:>7.1f} "
                      f"{(r.hwm - empty.hwm) / 1024:>8.1f} {per_container:>12.1f} {marginal:>9}")
            first, last = results[0], results[-1]
            cpu_first, cpu_last = median(first.cpu), median(last.cpu)
            per_first, per_last = cpu_first / sizes[0], cpu_last / sizes[-1]
            # The marginal costs compared round by round: a round's batches run within seconds of each other,
            # where the medians of the sizes can come from rounds a minute apart, in another mood of the VM.
            marginal_ratios = []
            if len(sizes) > 2:
                for smallest, second, penultimate, largest in zip(first.cpu, results[1].cpu, results[-2].cpu, last.cpu):
                    low = (second - smallest) / (sizes[1] - sizes[0])
                    marginal_ratios.append((largest - penultimate) / (sizes[-1] - sizes[-2]) / low)
            marginal_ratio = median(marginal_ratios) if marginal_ratios else None
            print(f"{layout:<7} linearity: CPU per container at {sizes[-1]} / at {sizes[0]} = "
                  f"{per_last / per_first:.2f}" +
                  (f"; marginal cost per container {sizes[-2]}→{sizes[-1]} / {sizes[0]}→{sizes[1]} = "
                   f"{marginal_ratio:.2f} [{min(marginal_ratios):.2f}–{max(marginal_ratios):.2f}], median of the "
                   "rounds" if marginal_ratio else "") +
                  f" (1.00 = linear); bytes per container {last.body / sizes[-1]:.0f}, series per container "
                  f"{last.series / sizes[-1]:.1f}; empty tree RSS {empty.rss / 1024:.1f} MB, peak "
                  f"{empty.hwm / 1024:.1f} MB")
            floors_measured, files = kernel_floor(f"{base}/{sizes[-1]}", layout)
            floor = floors[layout] = median(floors_measured)
            print(f"{layout:<7} kernel floor at {sizes[-1]}: opening, reading and closing once the {files} cgroup "
                  f"files a scrape reads costs {floor * 1e3:.1f} ms of system time [{min(floors_measured) * 1e3:.0f}–"
                  f"{max(floors_measured) * 1e3:.0f}], measured by the benchmark itself; sending the text and the "
                  f"network's files come on top")
            if sizes[-1] == 1000:
                # Linear or better: an added container costs no more at 1,000 than at 100 (fixed costs
                # spread over more containers make the later ones a little cheaper).
                linear = marginal_ratio is None or marginal_ratio <= 1.25
                verdicts.append(f"{layout}: (a) CPU {cpu_last * 1e3:.1f} ms ≤ 20 ms {verdict(cpu_last <= 0.020)}; "
                                f"(b) gzip {median(last.cpu_gzip) * 1e3:.1f} ms ≤ 20 ms "
                                f"{verdict(median(last.cpu_gzip) <= 0.020)}; "
                                f"RSS growth steady {(last.rss - empty.rss) / 1024:.1f} MB ≤ 10 MB "
                                f"{verdict(last.rss - empty.rss <= 10240)}, peak {(last.hwm - empty.hwm) / 1024:.1f}"
                                f" MB ≤ 10 MB {verdict(last.hwm - empty.hwm <= 10240)}; linear {verdict(linear)}; "
                                f"kernel floor of its cgroup files alone {floor * 1e3:.1f} ms")
        live = cgroupfs_cost(work, 1000)
        if live is None:
            print("cgroupfs: no cgroup could be made in a cgroup2 hierarchy (root is needed): the trees' ordinary "
                  "files stand in for cgroupfs")
        else:
            names, on_cgroupfs, on_files = live
            print(f"cgroupfs: reading {', '.join(names)} of 1000 empty cgroups of this host costs "
                  f"{on_cgroupfs * 1e6:.2f} µs of system time per file, against {on_files * 1e6:.2f} µs from "
                  f"ordinary files of the same contents (×{on_cgroupfs / on_files:.2f})" +
                  (f": v2's kernel floor on a live host would be some {floors['v2'] * on_cgroupfs / on_files * 1e3:.0f}"
                   " ms" if "v2" in floors else ""))
        if verdicts:
            print("targets at 1,000 containers:")
            for line in verdicts:
                print("  " + line)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
