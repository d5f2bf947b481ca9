#!/usr/bin/env python3
"""Per-collector cost, vigil vs node_exporter, side by side on this host.

Both agents serve only the named collectors; each is scraped N times in turn and the mean of its own
node_scrape_collector_duration_seconds{collector} is printed per collector, with the ratio
vigil / node_exporter (the time of one collection, file reads included, without HTTP and exposition).

Usage: Benchmarks/collector_durations.py [--vigil .build/release/vigil] [--scrapes 300] cpu stat ...
"""

import argparse
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from node_exporter_compare import free_port, wait_until_up  # noqa: E402


def durations(text):
    result = {}
    for line in text.splitlines():
        if line.startswith("node_scrape_collector_duration_seconds{"):
            result[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    return result


def mean_durations(binary, collectors, scrapes):
    port = free_port()
    flags = ["--collector.disable-defaults"] + [f"--collector.{name}" for name in collectors]
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"] + flags,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, process)
        totals = {name: 0.0 for name in collectors}
        for index in range(scrapes + 20):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                seen = durations(response.read().decode())
            if index >= 20:  # warm-up: lazily opened files, caches
                for name in collectors:
                    totals[name] += seen.get(name, 0.0)
            time.sleep(0.002)
        return {name: total / scrapes for name, total in totals.items()}
    finally:
        process.terminate()
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vigil", default=".build/release/vigil")
    parser.add_argument("--node-exporter", default="prometheus-node-exporter")
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("collectors", nargs="+")
    args = parser.parse_args()

    vigil = mean_durations(args.vigil, args.collectors, args.scrapes)
    reference = mean_durations(args.node_exporter, args.collectors, args.scrapes)
    print(f"mean collection time over {args.scrapes} scrapes (µs)")
    print(f"{'collector':<14}{'vigil':>10}{'node_exporter':>15}{'ratio':>8}")
    for name in args.collectors:
        ratio = vigil[name] / reference[name] if reference[name] else float("inf")
        print(f"{name:<14}{vigil[name] * 1e6:>10.1f}{reference[name] * 1e6:>15.1f}{ratio:>8.3f}")
    total_vigil, total_reference = sum(vigil.values()), sum(reference.values())
    print(f"{'all':<14}{total_vigil * 1e6:>10.1f}{total_reference * 1e6:>15.1f}{total_vigil / total_reference:>8.3f}")


if __name__ == "__main__":
    main()
