#!/usr/bin/env python3
"""Cost of vigil's containers collector at 100, 500 and 1,000 containers.

Generates cgroup trees (v1 hybrid and v2) of Kubernetes pods — a sandbox and an application
container each, with containerd's state files and one network namespace per pod — runs the release
`vigil` binary on each (--path.procfs/--path.sysfs/--path.rootfs, only the containers collector),
scrapes it N times and prints, per tree: CPU time per scrape (the process's CPU delta / N), the
collector's own duration, RSS growth against an empty tree, and the cost per container, whose
constancy across sizes shows the cost is linear.

Steady state: the first scrape reads every state file and every limit; limits are read again once
a minute (the collector's specMaxAge), so the scrapes measured here read the figures only.

Usage: python3 Benchmarks/containers_bench.py [--binary .build/release/vigil] [--scrapes 20]
       [--sizes 100,500,1000] [--layouts hybrid,v2]   (make bench-containers)
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cgroup_tree import (MOUNTINFO_HYBRID, MOUNTINFO_V2, Figures, container_id, oci_config,  # noqa: E402
                         write_containerd, write_host, write_process, write_v1_cgroup, write_v2_cgroup)

PORT = 21650


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

    def cgroup(path, figures, root=False):
        if layout == "hybrid":
            write_v1_cgroup(base, "hybrid", path, figures, root=root)
        else:
            write_v2_cgroup(base, path, figures, root=root)

    cgroup("/", Figures(0, processes=40), root=True)
    qos = "/kubepods.slice/kubepods-burstable.slice"
    cgroup("/kubepods.slice", Figures(1))
    cgroup(qos, Figures(2))
    for index in range(containers // 2):
        uid = "%08x-%04x-4%03x-8%03x-%012x" % (index, index % 65536, index % 4096, (index * 7) % 4096, index * 31)
        pod = f"{qos}/kubepods-burstable-pod{uid.replace('-', '_')}.slice"
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


def process_cpu_seconds(pid):
    """User and system CPU seconds of a process."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def rss_kib(pid):
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        return response.read()


def wait_for_port(port, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"vigil did not listen on {port}")


def measure(binary, base, scrapes, port):
    agent = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", f"--path.procfs={base}/proc",
         f"--path.sysfs={base}/sys", f"--path.rootfs={base}/root", "--collector.disable-defaults",
         "--collector.containers", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        body = scrape(port)  # first scrape: state files, limits
        scrape(port)
        user_before, system_before = process_cpu_seconds(agent.pid)
        durations = []
        for _ in range(scrapes):
            body = scrape(port)
            match = re.search(rb'node_scrape_collector_duration_seconds\{collector="containers"\} (\S+)', body)
            durations.append(float(match.group(1)))
        user_after, system_after = process_cpu_seconds(agent.pid)
        cpu = (user_after - user_before + system_after - system_before) / scrapes
        system_share = (system_after - system_before) / max(cpu * scrapes, 1e-9)
        if b'node_scrape_collector_success{collector="containers"} 1' not in body:
            raise RuntimeError("the containers collector failed: " + body[-2000:].decode())
        series = body.count(b"\ncontainer_")
        return cpu, system_share, sum(durations) / len(durations), rss_kib(agent.pid), len(body), series
    finally:
        agent.terminate()
        agent.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=".build/release/vigil")
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--layouts", default="hybrid,v2")
    parser.add_argument("--keep", action="store_true", help="keep the generated trees")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    work = f"/tmp/vigil-containers-bench-{os.getpid()}"
    os.makedirs(work, exist_ok=True)
    print(f"vigil containers collector: {args.scrapes} scrapes per tree, pods of a sandbox and one container")
    print(f"{'layout':<7} {'containers':>10} {'series':>7} {'body MB':>8} {'CPU/scrape ms':>14} {'kernel %':>9} "
          f"{'collector ms':>13} {'RSS MB':>7} {'RSS growth MB':>14} {'CPU µs/container':>17}")
    try:
        for index, layout in enumerate(args.layouts.split(",")):
            base = f"{work}/{layout}"
            generate(base, layout, 0)
            empty_rss = measure(args.binary, base, 3, PORT + index * 10)[3]
            per_container = []
            for offset, size in enumerate(sizes):
                generate(base, layout, size)
                cpu, system_share, duration, rss, body, series = measure(
                    args.binary, base, args.scrapes, PORT + index * 10 + offset + 1)
                per_container.append(cpu / size * 1e6)
                print(f"{layout:<7} {size:>10} {series:>7} {body / 1e6:>8.2f} {cpu * 1e3:>14.2f} "
                      f"{system_share * 100:>9.0f} {duration * 1e3:>13.2f} {rss / 1024:>7.1f} "
                      f"{(rss - empty_rss) / 1024:>14.1f} {per_container[-1]:>17.1f}")
            print(f"{layout:<7} linearity: CPU per container at {sizes[-1]} / at {sizes[0]} = "
                  f"{per_container[-1] / per_container[0]:.2f} (1.00 = linear); empty tree RSS {empty_rss / 1024:.1f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
