#!/usr/bin/env python3
"""vigil's journal forwarder, measured against journalctl reading the same journal, in one run.

For each backlog size N, builds a journal of N realistic entries with systemd-journal-remote, then:
  - journalctl reads the files with `-o export` and `-o json` (to /dev/null): the cost of just reading
    them with libsystemd, the floor any shipper pays;
  - vigil (release) forwards all of it, from the head, to the strict forward-receiver (acks on). Its rate
    is exact: N divided by the time from starting vigil to the receiver having received the last entry
    (the receiver prints its CLOCK_MONOTONIC time at that moment, `--report-events`).
Prints entries per second, CPU seconds and CPU microseconds per entry, vigil's peak RSS (VmHWM: the
mapped journal files, the binary and the heap) and peak anonymous memory (the heap alone), how often
vigil released the mapped journal pages, and the ratios against journalctl. The targets: at least
100,000 entries/s and 0.6x journalctl's export rate, peak RSS at most 40 MB whatever the backlog.

Usage: Benchmarks/journal_forward_compare.py [--entries 200000 [1000000 ...]] [--vigil .build/release/vigil]
                                             [--receiver .build/release/forward-receiver]
Run `make bench-journal` to build the release binaries first. On a shared, busy machine the rates vary
from run to run (the CPU seconds much less): run it a few times.
"""

import argparse
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
UNITS = ["nginx.service", "sshd.service", "cron.service", "kubelet.service", "containerd.service"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_bytes(pid):
    """Peak RSS (VmHWM, journal files mapped into it included) and private anonymous memory (RssAnon)."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "RssAnon"):
                values[key] = int(rest.split()[0]) * 1024
    return values.get("VmHWM", 0), values.get("RssAnon", 0)


class AnonymousMemorySampler(threading.Thread):
    """The largest RssAnon of a process, sampled every 50 ms: the heap, without mapped journal files."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.running = True

    def run(self):
        while self.running:
            try:
                self.peak = max(self.peak, memory_bytes(self.pid)[1])
            except OSError:
                return
            time.sleep(0.05)


def make_journal(directory, entries):
    """Entries shaped like a busy node's: stdout of services, ~20 fields, ~600 bytes each."""
    rng = random.Random(7)
    export = bytearray()
    for i in range(entries):
        unit = UNITS[i % len(UNITS)]
        name = unit.split(".")[0]
        fields = [
            ("__REALTIME_TIMESTAMP", str(1700000000000000 + i * 1000)),
            ("__MONOTONIC_TIMESTAMP", str(1000000 + i * 1000)),
            ("_BOOT_ID", "f3070d0cdeee48ca8c86c4f77cf925ec"),
            ("_MACHINE_ID", "3d1219c7c4c5404aaa1f6d2a48adfda4"),
            ("_HOSTNAME", "node-1"),
            ("_TRANSPORT", "stdout"),
            ("_SYSTEMD_UNIT", unit),
            ("_SYSTEMD_SLICE", "system.slice"),
            ("_SYSTEMD_CGROUP", f"/system.slice/{unit}"),
            ("_SYSTEMD_INVOCATION_ID", "%032x" % rng.getrandbits(128)),
            ("_PID", str(1000 + i % 500)),
            ("_UID", "0"),
            ("_GID", "0"),
            ("_COMM", name),
            ("_EXE", f"/usr/sbin/{name}"),
            ("_CMDLINE", f"/usr/sbin/{name} --config /etc/{name}.conf"),
            ("_CAP_EFFECTIVE", "0"),
            ("_STREAM_ID", "%032x" % (i // 100)),
            ("PRIORITY", str(i % 8)),
            ("SYSLOG_FACILITY", "3"),
            ("SYSLOG_IDENTIFIER", name),
            ("MESSAGE", f"request {i} handled in {rng.randint(1, 500)} ms for 10.0.{i % 256}.{i * 7 % 256} "
                        f"GET /api/v1/items/{i}?page={rng.randint(1, 9)}"),
        ]
        for name_, value in fields:
            export += f"{name_}={value}\n".encode()
        export += b"\n"
    subprocess.run(["/lib/systemd/systemd-journal-remote", "-o", os.path.join(directory, "bench.journal"), "-"],
                   input=bytes(export), check=True, capture_output=True)


def measure_reference(arguments):
    """CPU seconds and wall time of a child process, from getrusage of children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def scrape(port, names):
    """Values of unlabelled samples from vigil's metrics endpoint."""
    values = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] in names:
                values[fields[0]] = float(fields[1])
    return values


def forward_with_vigil(vigil, receiver_binary, journal_directory, work, entries):
    """Runs vigil until the receiver has every entry; returns its figures."""
    port = free_port()
    receiver = subprocess.Popen([receiver_binary, "--listen", f"127.0.0.1:{port}", "--report-events", str(entries)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    receiver.stdout.readline()  # "listening on …"
    web_port = free_port()
    configuration = os.path.join(work, "vigil.yml")
    with open(configuration, "w") as f:
        f.write(f"""web:
  listen-address: ["127.0.0.1:{web_port}"]
journal:
  directory: {journal_directory}
  cursor_file: {work}/journal.cursor
  read_from: head
forward:
  targets: ["127.0.0.1:{port}"]
""")
    log = os.path.join(work, "vigil.log")
    start = time.monotonic()
    process = subprocess.Popen([vigil, f"--config.file={configuration}", "--collector.disable-defaults"],
                               stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    sampler = AnonymousMemorySampler(process.pid)
    sampler.start()
    reached = None
    try:
        for line in receiver.stdout:
            fields = line.split()
            if fields[:1] == ["reached"]:
                reached = float(fields[-1])
                break
        cpu = cpu_seconds(process.pid)
        receiver_cpu = cpu_seconds(receiver.pid)
        rss, _ = memory_bytes(process.pid)
        sampler.running = False
        sampler.join()
        if reached is None:
            sys.exit(f"the receiver stopped before it got {entries} entries; see {log}")
        metrics = scrape(web_port, {"vigil_journal_unmaps_total"})
    finally:
        process.terminate()
        process.wait(timeout=30)
        receiver.terminate()
        receiver.wait(timeout=30)
    return {
        "wall": reached - start, "cpu": cpu, "receiver_cpu": receiver_cpu, "rss": rss, "anonymous": sampler.peak,
        "unmaps": int(metrics.get("vigil_journal_unmaps_total", -1)),
    }


def run(options, entries):
    work = tempfile.mkdtemp(prefix="vigil-journal-bench-")
    try:
        journal_directory = os.path.join(work, "journal")
        os.mkdir(journal_directory)
        make_journal(journal_directory, entries)
        size = sum(os.path.getsize(os.path.join(journal_directory, name)) for name in os.listdir(journal_directory))
        export_cpu, export_wall = measure_reference(["journalctl", "-D", journal_directory, "-o", "export"])
        json_cpu, json_wall = measure_reference(["journalctl", "-D", journal_directory, "-o", "json"])
        vigil = forward_with_vigil(options.vigil, options.receiver, journal_directory, work, entries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = entries
    rate, export_rate, json_rate = n / vigil["wall"], n / export_wall, n / json_wall
    print(f"{n:,} entries, {size / 1e6:.0f} MB of journal files")
    print(f"  vigil → forward-receiver (acks): {rate:,.0f} entries/s ({vigil['wall']:.2f} s), "
          f"{vigil['cpu']:.2f} CPU s ({vigil['cpu'] / n * 1e6:.1f} µs/entry), "
          f"peak RSS {vigil['rss'] / 1e6:.1f} MB, peak anonymous {vigil['anonymous'] / 1e6:.1f} MB, "
          f"journal pages released {vigil['unmaps']} times")
    # Both share the machine's cores: with fewer free cores than the two need, the receiver slows vigil.
    print(f"  forward-receiver (parses every event): {vigil['receiver_cpu']:.2f} CPU s")
    print(f"  journalctl -o export > /dev/null: {export_rate:,.0f} entries/s ({export_wall:.2f} s), "
          f"{export_cpu:.2f} CPU s ({export_cpu / n * 1e6:.1f} µs/entry)")
    print(f"  journalctl -o json > /dev/null:   {json_rate:,.0f} entries/s ({json_wall:.2f} s), "
          f"{json_cpu:.2f} CPU s ({json_cpu / n * 1e6:.1f} µs/entry)")
    print(f"  vigil rate / journalctl export rate: {rate / export_rate:.2f} (target ≥ 0.6); "
          f"vigil CPU / journalctl export CPU: {vigil['cpu'] / export_cpu:.2f}")
    print(f"  targets: ≥ 100,000 entries/s {'met' if rate >= 100_000 else 'NOT met'}; "
          f"≥ 0.6× journalctl export {'met' if rate >= 0.6 * export_rate else 'NOT met'}; "
          f"peak RSS ≤ 40 MB {'met' if vigil['rss'] <= 40e6 else 'NOT met'}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="+", default=[200_000])
    parser.add_argument("--vigil", default=".build/release/vigil")
    parser.add_argument("--receiver", default=".build/release/forward-receiver")
    options = parser.parse_args()
    for entries in options.entries:
        run(options, entries)


if __name__ == "__main__":
    main()
