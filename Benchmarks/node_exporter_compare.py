#!/usr/bin/env python3
"""vigil vs node_exporter, side by side on this host, with the same collectors enabled.

Prints, for each agent and as the ratio vigil / node_exporter:
  - CPU time per scrape: the process's user+system CPU delta over N sequential scrapes, divided by N; both
    agents run at once and their scrapes alternate in batches, so that both meet the same machine;
  - thread sleeps per scrape over the same scrapes (voluntary context switches: each is a hand-over
    between threads or a wait, and a wake-up that costs the kernel);
  - CPU time per scrape at a steady pace, as under Prometheus: one scrape of each agent every
    `--interval` seconds, the CPU the agent spends between scrapes included (from the process's CPU-time
    clock, which counts in nanoseconds where /proc/PID/stat counts in 10 ms ticks);
  - steady RSS one second after the sequential scrapes (VmRSS);
  - p50 / p99 scrape latency under 8 concurrent scrapers.
Scrapes are made the way Prometheus makes them: its Accept header, gzip accepted, one kept-alive
connection per scraper.

Usage: Benchmarks/node_exporter_compare.py [--vigil .build/release/vigil] [--scrapes 200]
Run `make bench-node` to build the release binary first.
"""

import argparse
import http.client
import os
import socket
import subprocess
import sys
import threading
import time

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TARGETS = {"cpu": 0.15, "rss": 0.75, "p99": 0.5}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scraper:
    """One Prometheus-like scraper: a kept-alive connection, Prometheus' headers."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def scrape(self, path="/metrics"):
        self.connection.request("GET", path, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"scrape answered {response.status}")
        return body


def scrape(port, path="/metrics"):
    return Scraper(port).scrape(path)


def cpu_seconds(pid):
    """User and system CPU seconds of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def wait_until_up(port, process):
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited: {process.args}")
        try:
            scrape(port, "/")
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on :{port}")


def enabled_collectors(vigil):
    """The collectors vigil enables by default that node_exporter also has.

    systemd is left out: node_exporter's is off by default and writes a few node_systemd_* families,
    vigil's writes systemd_exporter's too; Benchmarks/systemd_bench.py measures it."""
    port = free_port()
    process = subprocess.Popen([vigil, f"--web.listen-address=127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, process)
        text = http_text(port, "/metrics")
    finally:
        process.terminate()
        process.wait()
    names = []
    for line in text.splitlines():
        if line.startswith("node_scrape_collector_success{"):
            name = line.split('"')[1]
            if name != "systemd":
                names.append(name)
    help_text = subprocess.run(
        ["prometheus-node-exporter", "--help"], capture_output=True, text=True
    ).stderr + subprocess.run(["prometheus-node-exporter", "--help"], capture_output=True, text=True).stdout
    return [name for name in names if f"--collector.{name} " in help_text or f"--collector.{name}\n" in help_text]


def http_text(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    body = connection.getresponse().read()
    connection.close()
    return body.decode()


def start(command, port):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, process)
    except Exception:
        process.kill()
        raise
    return process


def thread_sleeps(pid):
    """How often the threads of a process have gone to sleep (voluntary context switches, summed over
    the threads alive now)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            pass  # the thread has exited
    return total


def cpu_per_scrape(agents, scrapes, rounds):
    """User and system CPU seconds and thread sleeps per scrape of each agent, their scrapes interleaved
    in `rounds` batches: the VM's speed drifts by tens of percent over a minute, and both agents see the
    same drift."""
    batch = max(1, scrapes // rounds)
    spent = {name: [0.0, 0.0, 0] for name in agents}
    for _ in range(rounds):
        for name, (process, scraper) in agents.items():
            user, system = cpu_seconds(process.pid)
            sleeps = thread_sleeps(process.pid)
            for _ in range(batch):
                scraper.scrape()
            user_after, system_after = cpu_seconds(process.pid)
            spent[name][0] += user_after - user
            spent[name][1] += system_after - system
            spent[name][2] += thread_sleeps(process.pid) - sleeps
    return {name: [total / (batch * rounds) for total in totals] for name, totals in spent.items()}


def run_nanoseconds(pid):
    """Nanoseconds of CPU time (user and system) of a process, exited threads included, from its CPU-time
    clock (clock_getcpuclockid(3): the clock id of process `pid` is `~pid << 3 | CPUCLOCK_SCHED`)."""
    return time.clock_gettime_ns((~pid << 3) | 2)


def cpu_per_paced_scrape(agents, scrapes, interval):
    """CPU seconds per scrape of each agent scraped every `interval` seconds, the agents' scrapes half an
    interval apart: what a scrape costs when caches have gone cold and the agent's work between scrapes
    (timers, trimming, watchdogs) counts."""
    before = {name: run_nanoseconds(process.pid) for name, (process, _) in agents.items()}
    for _ in range(scrapes):
        for _, scraper in agents.values():
            scraper.scrape()
            time.sleep(interval / len(agents))
    return {name: (run_nanoseconds(process.pid) - before[name]) / 1e9 / scrapes
            for name, (process, _) in agents.items()}


def latencies(port, concurrency, per_scraper):
    """p50 and p99 scrape latency under `concurrency` scrapers."""
    measured = []
    lock = threading.Lock()

    def concurrent_scraper():
        mine = []
        connection = Scraper(port)
        for _ in range(per_scraper):
            started = time.perf_counter()
            connection.scrape()
            mine.append(time.perf_counter() - started)
        with lock:
            measured.extend(mine)

    threads = [threading.Thread(target=concurrent_scraper) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    measured.sort()
    return measured[len(measured) // 2], measured[min(len(measured) - 1, int(len(measured) * 0.99))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vigil", default=".build/release/vigil")
    parser.add_argument("--node-exporter", default="prometheus-node-exporter")
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved batches the CPU scrapes are made in")
    parser.add_argument("--paced", type=int, default=60, help="scrapes of each agent at a steady pace")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between an agent's paced scrapes")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--per-scraper", type=int, default=50)
    args = parser.parse_args()

    collectors = enabled_collectors(args.vigil)
    flags = ["--collector.disable-defaults"] + [f"--collector.{name}" for name in collectors]
    print(f"collectors ({len(collectors)}): {', '.join(collectors)}")
    print(f"CPU: {args.scrapes} sequential scrapes each, interleaved in {args.rounds} rounds; latency: "
          f"{args.concurrency} concurrent scrapers x {args.per_scraper}; paced: {args.paced} scrapes each, one "
          f"every {args.interval} s")

    agents, ports = {}, {}
    try:
        for name, binary in (("node_exporter", args.node_exporter), ("vigil", args.vigil)):
            ports[name] = free_port()
            command = [binary, f"--web.listen-address=127.0.0.1:{ports[name]}"] + flags
            agents[name] = (start(command, ports[name]), Scraper(ports[name]))
        for _, scraper in agents.values():
            for _ in range(20):  # warm-up: caches, lazily opened files, allocator arenas
                scraper.scrape()
        cpu = cpu_per_scrape(agents, args.scrapes, args.rounds)
        time.sleep(1)  # between scrapes, as under Prometheus' interval: what the agent holds at rest
        rss = {name: rss_bytes(process.pid) for name, (process, _) in agents.items()}
        paced = cpu_per_paced_scrape(agents, args.paced, args.interval)
        results = {}
        for name, (_, scraper) in agents.items():
            p50, p99 = latencies(ports[name], args.concurrency, args.per_scraper)
            user, system, sleeps = cpu[name]
            results[name] = {"cpu": user + system, "user": user, "system": system, "sleeps": sleeps,
                             "paced": paced[name],
                             "rss": rss[name], "p50": p50, "p99": p99, "gzip_bytes": len(scraper.scrape())}
    finally:
        for process, _ in agents.values():
            process.terminate()
            process.wait()

    vigil, reference = results["vigil"], results["node_exporter"]
    rows = [
        ("CPU per scrape", "cpu", lambda v: f"{v * 1000:.3f} ms", "cpu"),
        ("  of which user", "user", lambda v: f"{v * 1000:.3f} ms", None),
        ("  of which system (kernel)", "system", lambda v: f"{v * 1000:.3f} ms", None),
        ("thread sleeps per scrape", "sleeps", lambda v: f"{v:.2f}", None),
        (f"CPU per paced scrape ({args.interval:g} s)", "paced", lambda v: f"{v * 1000:.3f} ms", None),
        ("steady RSS", "rss", lambda v: f"{v / 1048576:.1f} MiB", "rss"),
        ("p50 latency (8 concurrent)", "p50", lambda v: f"{v * 1000:.2f} ms", None),
        ("p99 latency (8 concurrent)", "p99", lambda v: f"{v * 1000:.2f} ms", "p99"),
        ("payload (gzip)", "gzip_bytes", lambda v: f"{v / 1024:.1f} KiB", None),
    ]
    print(f"{'measure':<28}{'vigil':>14}{'node_exporter':>16}{'ratio':>9}  target")
    failed = False
    for label, key, fmt, target_key in rows:
        ratio = vigil[key] / reference[key] if reference[key] else float("inf")
        target = ""
        if target_key:
            limit = TARGETS[target_key]
            ok = ratio <= limit
            failed |= not ok
            target = f"<= {limit}x {'ok' if ok else 'MISSED'}"
        print(f"{label:<28}{fmt(vigil[key]):>14}{fmt(reference[key]):>16}{ratio:>8.3f}x  {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
