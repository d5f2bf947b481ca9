#!/usr/bin/env python3
"""vigil's journal forwarder, measured against journalctl reading the same journal, in one run.

Builds a journal of N realistic entries with systemd-journal-remote, then:
  - vigil (release) forwards all of it, from the head, to the strict forward-receiver (acks on);
  - journalctl reads the same files with `-o export` and `-o json` (to /dev/null): the cost of just
    reading them with libsystemd, the floor any shipper pays.
Prints entries per second (for vigil a lower bound: the receiver reports its count once a second), CPU
microseconds per entry, vigil's peak anonymous memory and peak RSS, and vigil's CPU as a ratio of
journalctl's.

Usage: Benchmarks/journal_forward_compare.py [--entries 200000] [--vigil .build/release/vigil]
                                             [--receiver .build/release/forward-receiver]
Run `make bench-journal` to build the release binaries first.
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


def forward_with_vigil(vigil, receiver_binary, journal_directory, work, entries):
    port = free_port()
    receiver = subprocess.Popen([receiver_binary, "--listen", f"127.0.0.1:{port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    receiver.stdout.readline()  # "listening on …"
    configuration = os.path.join(work, "vigil.yml")
    with open(configuration, "w") as f:
        f.write(f"""web:
  listen-address: ["127.0.0.1:{free_port()}"]
journal:
  directory: {journal_directory}
  cursor_file: {work}/journal.cursor
  read_from: head
forward:
  targets: ["127.0.0.1:{port}"]
""")
    start = time.monotonic()
    process = subprocess.Popen([vigil, f"--config.file={configuration}", "--collector.disable-defaults"],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "vigil.log"), "w"))
    received = 0
    sampler = AnonymousMemorySampler(process.pid)
    sampler.start()
    try:
        for line in receiver.stdout:
            fields = line.split()
            if len(fields) >= 4 and fields[0] == "requests":
                received = int(fields[3])
                if received >= entries:
                    break
        wall = time.monotonic() - start
        cpu = cpu_seconds(process.pid)
        rss, _ = memory_bytes(process.pid)
        sampler.running = False
        sampler.join()
    finally:
        process.terminate()
        process.wait(timeout=30)
        receiver.terminate()
        receiver.wait(timeout=30)
    if received < entries:
        sys.exit(f"the receiver got {received} of {entries} entries; see {work}/vigil.log")
    return cpu, wall, rss, sampler.peak


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--vigil", default=".build/release/vigil")
    parser.add_argument("--receiver", default=".build/release/forward-receiver")
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="vigil-journal-bench-")
    try:
        journal_directory = os.path.join(work, "journal")
        os.mkdir(journal_directory)
        make_journal(journal_directory, options.entries)
        export_cpu, export_wall = measure_reference(["journalctl", "-D", journal_directory, "-o", "export"])
        json_cpu, json_wall = measure_reference(["journalctl", "-D", journal_directory, "-o", "json"])
        cpu, wall, rss, anonymous = forward_with_vigil(
            options.vigil, options.receiver, journal_directory, work, options.entries
        )
        n = options.entries
        print(f"{n} entries")
        print(f"vigil → forward-receiver: {n / wall:,.0f} entries/s, {cpu / n * 1e6:.1f} µs CPU/entry, "
              f"peak anonymous memory {anonymous / 1e6:.1f} MB, "
              f"peak RSS {rss / 1e6:.1f} MB (with the mapped journal files)")
        print(f"journalctl -o export:     {n / export_wall:,.0f} entries/s, {export_cpu / n * 1e6:.1f} µs CPU/entry")
        print(f"journalctl -o json:       {n / json_wall:,.0f} entries/s, {json_cpu / n * 1e6:.1f} µs CPU/entry")
        print(f"ratio vigil CPU / journalctl export CPU: {cpu / export_cpu:.2f}")
        print(f"ratio vigil CPU / journalctl json CPU:   {cpu / json_cpu:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
