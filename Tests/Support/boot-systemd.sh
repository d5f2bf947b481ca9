#!/bin/sh
# Boots a real systemd in a private PID + mount namespace, as DESIGN.md ("Real components") describes,
# for tests and benchmarks.
#
#   boot-systemd.sh UNITS_DIR TARGET
#
# UNITS_DIR holds the unit files to install (every one with DefaultDependencies=no); systemd starts
# TARGET, and with it the system bus (dbus.socket, dbus.service). The first line printed is "pid=N": the namespace's PID 1 as the host sees it, for
# `nsenter -t N -m -p …`. The script runs until that PID 1 dies: stop it with SIGKILL (systemd ignores
# SIGTERM as PID 1); the namespace also dies within a second when the process that started this script
# exits. It then removes the control groups it made.
#
# Safety: the namespace gets private tmpfs on /run, /tmp and /var/tmp (systemd-tmpfiles would empty the
# machine's shared /tmp otherwise), sysinit.target, basic.target and the sysinit services that touch the
# shared disk or the kernel are masked, and dbus gets copies of its units without default dependencies.
# systemd runs in a control group of its own (beside the one this script runs in), so that several
# namespaced systemds never share /system.slice.
set -eu

if [ "${1:-}" = --init ]; then
    # Inside the new namespaces, as the PID 1 to be.
    units=$2 target=$3 procs=$4
    for file in $procs; do echo $$ >"$file"; done
    mount -t tmpfs -o mode=0755 tmpfs /run
    mkdir -p /run/systemd/system
    cp -a "$units/." /run/systemd/system/
    cat >/run/systemd/system/dbus.socket <<'UNIT'
[Unit]
Description=D-Bus System Message Bus Socket
DefaultDependencies=no

[Socket]
ListenStream=/run/dbus/system_bus_socket
UNIT
    cat >/run/systemd/system/dbus.service <<'UNIT'
[Unit]
Description=D-Bus System Message Bus
DefaultDependencies=no
Requires=dbus.socket
After=dbus.socket

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only
UNIT
    mkdir -p "/run/systemd/system/$target.wants"
    ln -s ../dbus.socket ../dbus.service "/run/systemd/system/$target.wants/"
    for unit in sysinit.target basic.target \
        systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service systemd-tmpfiles-setup-dev-early.service \
        systemd-tmpfiles-clean.service systemd-tmpfiles-clean.timer systemd-sysusers.service systemd-sysctl.service \
        systemd-binfmt.service systemd-modules-load.service systemd-journal-flush.service \
        systemd-remount-fs.service tmp.mount ldconfig.service \
        systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
        systemd-udevd-control.socket systemd-udevd-kernel.socket; do
        ln -sf /dev/null "/run/systemd/system/$unit"
    done
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    mount -t tmpfs -o mode=1777 tmpfs /var/tmp
    exec env container=vigil-test /lib/systemd/systemd --unit="$target"
fi

units=$(cd "$1" && pwd) target=$2
owner=$PPID
if [ "$owner" = 1 ]; then
    echo "boot-systemd.sh: start it from the process that owns the namespace (it dies with that process)" >&2
    exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)

# The control group systemd takes as its root: beside ours, in every hierarchy where this process
# sits at the same path (so not in a memory group a sandbox put it in).
group=vigil-systemd-test-$$
hierarchies=$(awk -v group="$group" '
    FILENAME == "/proc/self/cgroup" {
        # id:controllers:path — the path of this process in each hierarchy ("" names the v2 one).
        split($0, f, ":"); path = substr($0, length(f[1]) + length(f[2]) + 3)
        if (f[2] == "") at[""] = path
        n = split(f[2], names, ","); for (i = 1; i <= n; i++) at[names[i]] = path
        next
    }
    {
        # mountinfo: … mount-point … - type source super-options
        for (i = 7; i <= NF && $i != "-"; i++) {}
        if ($(i + 1) == "cgroup2") { key[$5] = ""; next }
        if ($(i + 1) != "cgroup") next
        n = split($(i + 3), options, ",")
        for (j = 1; j <= n; j++) if (options[j] in at) { key[$5] = options[j]; break }
    }
    END {
        base = ("name=systemd" in at) ? at["name=systemd"] : at[""]
        # cpuset: a new v1 group has no CPUs to run on, and systemd does not use it on v1.
        for (mount in key)
            if (at[key[mount]] == base && key[mount] != "cpuset") print mount (base == "/" ? "" : base) "/" group
    }' /proc/self/cgroup /proc/self/mountinfo)
procs=""
for dir in $hierarchies; do
    mkdir -p "$dir"
    procs="$procs $dir/cgroup.procs"
done

cleanup() {
    for dir in $hierarchies; do
        # Depth first; the kernel takes a moment to empty a group whose processes were killed.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
            [ -d "$dir" ] || break
            sleep 0.2
        done
    done
}
trap cleanup EXIT

unshare --pid --fork --mount --mount-proc --uts --propagation private --kill-child=SIGKILL \
    "$here/$(basename "$0")" --init "$units" "$target" "$procs" &
outer=$!
# PID 1 of the new namespace: the child of unshare that is 1 in its own namespace.
pid=""
for _ in $(seq 200); do
    for child in $(cat "/proc/$outer/task/$outer/children" 2>/dev/null); do
        if awk '$1 == "NSpid:" && NF == 3 && $3 == 1 { found = 1 } END { exit !found }' "/proc/$child/status" 2>/dev/null; then
            pid=$child
        fi
    done
    [ -n "$pid" ] && break
    sleep 0.05
done
echo "pid=$pid"

# The namespace dies with whoever started this script, even if it could not clean up.
(
    while kill -0 "$owner" && kill -0 "$outer"; do sleep 1; done
    if kill -0 "$outer"; then kill -9 "$outer"; fi
) >/dev/null 2>&1 &
wait "$outer" || true
