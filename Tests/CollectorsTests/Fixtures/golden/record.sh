#!/bin/sh
# Re-records the node_exporter golden files of the collector tests (`golden("<name>")`):
# runs Debian's node_exporter (package prometheus-node-exporter, 1.5.0 on Debian 12) on the fixture
# trees next to this directory and keeps its output without the exporter's own metrics.
#
#   sh Tests/CollectorsTests/Fixtures/golden/record.sh [port]
#
# Paths are relative to Fixtures/ (node_exporter runs there), so the files do not depend on the checkout.
set -eu
cd "$(dirname "$0")/.."
port=${1:-21290}
record() {
    out=golden/$1.prom
    shift
    prometheus-node-exporter --web.listen-address=127.0.0.1:$port --collector.disable-defaults "$@" \
        >/dev/null 2>&1 &
    pid=$!
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        sleep 0.3
        if curl -sf http://127.0.0.1:$port/metrics >/dev/null; then break; fi
    done
    curl -sf http://127.0.0.1:$port/metrics |
        grep -v -E '^(# (HELP|TYPE) )?(go_|process_|promhttp_|node_exporter_build_info|node_scrape_collector_)' >"$out" ||
        true # nothing left: the collector had no data
    kill $pid
    wait $pid 2>/dev/null || true
    echo "recorded $out"
}
# The upstream default (Debian's package excludes /run, /mnt and /media as well).
mounts='^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)'
record hwmon-desktop --path.sysfs=hwmon-desktop/sys --collector.hwmon
record thermal-laptop --path.sysfs=thermal-laptop/sys --collector.thermal_zone
record debian12-time --path.sysfs=debian12/sys --collector.time
# adjtimex has no file to point at: the values are the recording host's, and only names, HELP and TYPE count.
record live-timex --collector.timex
record mdadm --path.procfs=mdadm/proc --path.sysfs=mdadm/sys --collector.mdadm
record bonding --path.sysfs=bonding/sys --collector.bonding
record edac --path.sysfs=edac/sys --collector.edac
record dmi --path.sysfs=dmi/sys --collector.dmi
record nfs --path.procfs=nfs/proc --collector.nfs
record nvme --path.sysfs=nvme/sys --collector.nvme
record xfs --path.sysfs=xfs/sys --collector.xfs
record cpufreq --path.sysfs=cpufreq/sys --collector.cpufreq
record rapl --path.sysfs=rapl/sys --collector.rapl
record rapl-zone-label --path.sysfs=rapl/sys --collector.rapl --collector.rapl.enable-zone-label
record ipvs --path.procfs=ipvs/proc --collector.ipvs
record debian12-os --path.rootfs=debian12/root --collector.os
record os-release-fedora --path.rootfs=os-release-fedora/root --collector.os
record debian12-filesystem --path.procfs=debian12/proc --path.rootfs=debian12/root --collector.filesystem \
    --collector.filesystem.mount-points-exclude="$mounts"
for case in good syntax-error timestamps conflicting-help missing-help label-sets; do
    record textfile-$case --collector.textfile --collector.textfile.directory=textfile/$case
done
# The /proc collectors on the recorded host and on the hand-written tree (softirqs on, to record them).
for tree in debian12 handmade; do
    for collector in cpu stat diskstats vmstat schedstat softnet pressure filefd entropy; do
        record $tree-$collector --path.procfs=$tree/proc --path.sysfs=$tree/sys --path.udev.data=$tree/udev \
            --collector.$collector --collector.stat.softirq
    done
done
# The network collectors on the recorded host, reading /proc as vigil does (netlink off); Debian's
# build excludes lo from netdev by default, upstream does not.
for collector in netdev netclass netstat sockstat conntrack udp_queues arp; do
    record debian12-$collector --path.procfs=debian12/proc --path.sysfs=debian12/sys --collector.$collector \
        --no-collector.netdev.netlink --collector.netdev.device-exclude='^$'
done
