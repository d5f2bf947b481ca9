#!/usr/bin/env bash
# Records what Debian's node_exporter (1.5.0, package prometheus-node-exporter) exposes for the fixture
# trees, one file per collector: golden/<tree>/<collector>.prom, without its own go_/process_/promhttp_/
# build-info/scrape-collector lines. The collector tests compare vigil's output for the same tree with
# these files (families, types, HELP, label names, values). Re-record after changing a fixture tree:
#
#     Tests/CollectorsTests/Fixtures/golden/record-node-exporter.sh [port]
set -euo pipefail
golden=$(cd "$(dirname "$0")" && pwd)
fixtures=$(dirname "$golden")
port=${1:-21000}
for tree in debian12 handmade; do
    mkdir -p "$golden/$tree"
    for collector in cpu stat diskstats vmstat schedstat softnet pressure filefd entropy; do
        flags=()
        [ "$collector" = stat ] && flags+=(--collector.stat.softirq)
        prometheus-node-exporter --web.listen-address="127.0.0.1:$port" --collector.disable-defaults \
            --collector."$collector" "${flags[@]}" --path.procfs="$fixtures/$tree/proc" \
            --path.sysfs="$fixtures/$tree/sys" --path.udev.data="$fixtures/$tree/udev" 2>/dev/null &
        pid=$!
        trap 'kill $pid 2>/dev/null || true' EXIT
        for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && break; sleep 0.1; done
        curl -sf "http://127.0.0.1:$port/metrics" \
            | grep -Ev '^(# (HELP|TYPE) )?(go_|process_|promhttp_|node_exporter_build_info|node_scrape_collector_)' \
            > "$golden/$tree/$collector.prom" || true  # an empty file: no data
        kill "$pid"
        wait "$pid" || true
    done
done
