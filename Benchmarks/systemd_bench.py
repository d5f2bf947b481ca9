#!/usr/bin/env python3
"""Scrape cost of vigil's systemd collector against a real systemd with a few hundred units.

Boots systemd in a private PID + mount namespace (Tests/Support/boot-systemd.sh) with generated units
(services that stay active with and without processes, sockets, timers; every one with
DefaultDependencies=no), runs vigil inside it with only the systemd collector, scrapes it N times and
prints the wall time per scrape (p50/p90/p99) and the CPU time per scrape of vigil, of systemd (PID 1)
and of dbus-daemon, which answer the calls.

Needs root, util-linux (unshare, nsenter), systemd and dbus. Run `make bench-systemd`, or
    python3 Benchmarks/systemd_bench.py --binary .build/release/vigil --scrapes 200
"""

import argparse
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = os.path.join(ROOT, "Tests", "Support", "boot-systemd.sh")
TICKS = os.sysconf("SC_CLK_TCK")


def generate_units(count):
    """`count` units mixed like a server's: per 36 units, 12 services running a process (with
    accounting, in a few slices), 4 that ran and stay active, 4 inactive (a failed condition),
    4 sockets, 3 timers, 5 targets, 2 tmpfs mounts, 1 slice and 1 path unit. With the units systemd
    loads itself, a namespace with the default 270 lists about 400. Returns {file name: contents}."""
    shares = [("running", 12), ("exited", 4), ("inactive", 4), ("socket", 4), ("timer", 3), ("target", 5),
              ("mount", 2), ("slice", 1), ("path", 1)]
    per_round = sum(n for _, n in shares)
    counts = {kind: count * n // per_round for kind, n in shares}
    counts["running"] += count - sum(counts.values())
    slices = max(1, counts["slice"])
    units, wanted = {}, []

    def add(name, body):
        units[name] = "[Unit]\nDefaultDependencies=no\n" + body
        wanted.append(name)
    for i in range(counts["running"]):
        add(f"bench-run-{i:04d}.service",
            f"[Service]\nExecStart=/bin/sleep infinity\nSlice=bench-{i % slices:02d}.slice\nCPUAccounting=yes\n"
            "MemoryAccounting=yes\nTasksAccounting=yes\nIPAccounting=yes\n")
    for i in range(counts["exited"]):
        add(f"bench-exited-{i:04d}.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
    for i in range(counts["inactive"]):
        add(f"bench-idle-{i:04d}.service", "ConditionPathExists=/nonexistent\n[Service]\nExecStart=/bin/true\n")
    for i in range(counts["socket"]):
        add(f"bench-{i:04d}.socket", f"[Socket]\nListenStream=/run/bench-{i:04d}.sock\n"
            f"Service=bench-idle-{i % max(1, counts['inactive']):04d}.service\n")
    for i in range(counts["timer"]):
        add(f"bench-{i:04d}.timer", f"[Timer]\nOnActiveSec=1h\nUnit=bench-idle-{i % max(1, counts['inactive']):04d}.service\n")
    for i in range(counts["target"]):
        add(f"bench-{i:04d}.target", "")
    for i in range(counts["mount"]):
        add(f"run-bench\\x2d{i:04d}.mount", f"[Mount]\nWhat=tmpfs\nWhere=/run/bench-{i:04d}\nType=tmpfs\n")
    for i in range(slices):
        add(f"bench-{i:02d}.slice", "[Slice]\nCPUAccounting=yes\nMemoryAccounting=yes\n")
    for i in range(counts["path"]):
        add(f"bench-{i:04d}.path", f"[Path]\nPathExists=/run/bench-trigger-{i:04d}\n"
            f"Unit=bench-idle-{i % max(1, counts['inactive']):04d}.service\n")
    units["bench.target"] = "[Unit]\nDefaultDependencies=no\nWants=" + " ".join(wanted) + "\n"
    return units


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def command_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def nsenter(pid, *command, **kwargs):
    return subprocess.run(["nsenter", "-t", str(pid), "-m", "-p", *command], **kwargs)


def wait_until(what, condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting until {what}")
        time.sleep(0.1)


def scrape(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    if response.status != 200:
        sys.exit(f"scrape failed: {response.status}")
    return body


def sample_value(body, prefix):
    for line in body.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=os.environ.get("VIGIL_BINARY", os.path.join(ROOT, ".build/release/vigil")))
    parser.add_argument("--units", type=int, default=270, help="units to generate (systemd adds its own)")
    parser.add_argument("--private", action="store_true", help="talk to systemd over /run/systemd/private")
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--port", type=int, default=21760)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (it boots systemd in a private namespace)")
    # nsenter runs it inside the namespace, which has a private /tmp: an absolute path outside /tmp.
    args.binary = os.path.abspath(args.binary)
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"no vigil binary at {args.binary}: build it first (make release)")
    if args.binary.startswith("/tmp/"):
        sys.exit(f"{args.binary}: the namespace has a private /tmp; use a binary outside /tmp")

    directory = tempfile.mkdtemp(prefix="vigil-systemd-bench-", dir="/tmp")
    boot = None
    pid1 = None
    try:
        units_dir = os.path.join(directory, "units")
        os.mkdir(units_dir)
        for name, contents in generate_units(args.units).items():
            with open(os.path.join(units_dir, name), "w") as f:
                f.write(contents)
        boot = subprocess.Popen([BOOT, units_dir, "bench.target"], stdout=subprocess.PIPE,
                                stderr=open(os.path.join(directory, "boot.log"), "w"), text=True)
        first = boot.stdout.readline().strip()
        if not first.startswith("pid="):
            sys.exit(f"boot-systemd.sh failed: {first} {open(os.path.join(directory, 'boot.log')).read()}")
        pid1 = int(first[4:])

        def started():
            shown = nsenter(pid1, "systemctl", "show", "-p", "ActiveState", "--value", "bench.target",
                            "dbus.service", capture_output=True, text=True)
            return shown.stdout.split() == ["active", "active"]
        wait_until("bench.target and the system bus are up", started)

        log = open(os.path.join(directory, "vigil.log"), "w")
        vigil_nsenter = subprocess.Popen(
            ["nsenter", "-t", str(pid1), "-m", "-p", args.binary, "--collector.disable-defaults",
             "--collector.systemd", f"--web.listen-address=127.0.0.1:{args.port}"]
            + (["--systemd.collector.private"] if args.private else []), stdout=log, stderr=log)

        def listening():
            if vigil_nsenter.poll() is not None:
                sys.exit("vigil exited: " + open(log.name).read())
            try:
                scrape(args.port)
            except OSError:
                return False
            return bool(children(vigil_nsenter.pid))
        wait_until("vigil answers", listening, timeout=60)
        vigil = children(vigil_nsenter.pid)[0]
        dbus = next((p for p in children(pid1) if command_name(p) == "dbus-daemon"), None)

        body = ""
        for _ in range(args.warmup):
            body = scrape(args.port)
        exported = sum(1 for line in body.splitlines()
                       if line.startswith("systemd_unit_state{") and 'state="active"' in line)
        listed = sum(sample_value(body, f'node_systemd_units{{state="{s}"}}') or 0
                     for s in ("active", "activating", "deactivating", "inactive", "failed"))
        if sample_value(body, 'node_scrape_collector_success{collector="systemd"}') != 1:
            sys.exit("the systemd collector failed:\n" + open(log.name).read())

        walls, durations = [], []
        cpu_before = {p: cpu_seconds(p) for p in (vigil, pid1, dbus) if p}
        for _ in range(args.scrapes):
            started = time.perf_counter()
            body = scrape(args.port)
            walls.append((time.perf_counter() - started) * 1000)
            durations.append(sample_value(body, 'node_scrape_collector_duration_seconds{collector="systemd"}') * 1000)
        cpu = {p: (cpu_seconds(p) - before) * 1000 / args.scrapes for p, before in cpu_before.items()}

        print(f"units: {int(listed)} listed by systemd ({args.units} generated), {exported} exported "
              f"(loaded, not devices), {len(body)} bytes per scrape")
        print(f"scrapes: {args.scrapes} (after {args.warmup} warm-up), vigil {args.binary}, "
              + ("systemd's private socket" if args.private else "system bus (dbus-daemon)")
              + f", load average {os.getloadavg()[0]:.1f}")
        print(f"wall per scrape:        p50 {percentile(walls, 50):.2f} ms  p90 {percentile(walls, 90):.2f} ms  "
              f"p99 {percentile(walls, 99):.2f} ms  max {max(walls):.2f} ms")
        print(f"collector duration:     p50 {statistics.median(durations):.2f} ms  "
              f"p99 {percentile(durations, 99):.2f} ms  (node_scrape_collector_duration_seconds)")
        print(f"CPU per scrape:         vigil {cpu[vigil]:.2f} ms  systemd {cpu[pid1]:.2f} ms"
              + (f"  dbus-daemon {cpu[dbus]:.2f} ms" if dbus else ""))
    finally:
        if pid1:
            os.kill(pid1, signal.SIGKILL)
        if boot:
            try:
                boot.wait(timeout=20)
            except subprocess.TimeoutExpired:
                boot.kill()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
