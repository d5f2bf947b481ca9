#!/usr/bin/env bash
# CPU time per scrape, vigil against node_exporter, for a set of collectors on this host: both serve
# only those collectors; after a warm-up, SCRAPES sequential scrapes each; CPU is utime + stime of the
# process from /proc/PID/stat. A run with no collector gives each exporter's fixed cost (HTTP,
# exposition, self-metrics), subtracted to get the collectors' own cost.
#
#     make release   # or: swift build -c release --product vigil
#     Benchmarks/scrape-cpu.sh cpu stat diskstats vmstat schedstat softnet pressure filefd entropy
#
# Environment: VIGIL (binary, default .build/release/vigil), SCRAPES (default 1000), PORT (first of two
# ports, default 21010). Run on a quiet machine: ticks are 10 ms, so short runs are coarse.
set -euo pipefail
cd "$(dirname "$0")/.."
vigil=${VIGIL:-.build/release/vigil}
scrapes=${SCRAPES:-1000}
port=${PORT:-21010}
hz=$(getconf CLK_TCK)

cpu_seconds() { awk -v hz="$hz" '{ printf "%.4f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# Prints the CPU seconds one exporter spends on $scrapes scrapes. Arguments: the command line. Runs in
# a subshell ($(measure …)), whose exit stops the exporter.
measure() {
    "$@" >/dev/null 2>&1 &
    local pid=$!
    trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
    local url="http://127.0.0.1:$port/metrics"
    for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.05; done
    for _ in $(seq 50); do curl -sf -o /dev/null "$url"; done
    local before after
    before=$(cpu_seconds "$pid")
    for _ in $(seq "$scrapes"); do curl -sf -o /dev/null "$url"; done
    after=$(cpu_seconds "$pid")
    awk -v a="$after" -v b="$before" 'BEGIN { printf "%.4f", a - b }'
}

collectors=("$@")
flags=(--collector.disable-defaults)
for collector in "${collectors[@]}"; do flags+=(--collector."$collector"); done

vigil_all=$(measure "$vigil" --web.listen-address="127.0.0.1:$port" "${flags[@]}")
vigil_none=$(measure "$vigil" --web.listen-address="127.0.0.1:$port" --collector.disable-defaults)
node_all=$(measure prometheus-node-exporter --web.listen-address="127.0.0.1:$port" "${flags[@]}")
node_none=$(measure prometheus-node-exporter --web.listen-address="127.0.0.1:$port" --collector.disable-defaults)

awk -v n="$scrapes" -v va="$vigil_all" -v vn="$vigil_none" -v na="$node_all" -v nn="$node_none" \
    -v set="${collectors[*]}" 'BEGIN {
    printf "collectors: %s; %d scrapes each\n", set, n
    printf "%-14s %12s %12s %12s\n", "ms CPU/scrape", "total", "fixed", "collectors"
    printf "%-14s %12.3f %12.3f %12.3f\n", "vigil", va / n * 1000, vn / n * 1000, (va - vn) / n * 1000
    printf "%-14s %12.3f %12.3f %12.3f\n", "node_exporter", na / n * 1000, nn / n * 1000, (na - nn) / n * 1000
    if (na > 0) printf "ratio vigil/node_exporter: total %.3f", va / na
    if (na - nn > 0) printf ", collectors %.3f", (va - vn) / (na - nn)
    printf "\n"
}'
