#!/bin/sh
# Builds the Debian package of vigil from a built binary:
#
#   sh packaging/build-deb.sh BINARY OUTDIR      (`make deb` builds the release binary and runs this)
#
# The package installs the binary, the systemd unit and the default configuration (a conffile), creates
# the `vigil` system user, and enables and starts the service where systemd runs.
set -eu
binary=$1 outdir=$2
here=$(cd "$(dirname "$0")" && pwd)
version=$("$binary" --version | sed -n 's/.*version \([0-9][0-9A-Za-z.+~-]*\).*/\1/p')
[ -n "$version" ] || { echo "build-deb.sh: no version from $binary --version" >&2; exit 1; }
architecture=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
install -D -m 0755 "$binary" "$stage/usr/bin/vigil"
# Without its debug information (half the file); the symbols stay, for backtraces.
objcopy --strip-debug "$stage/usr/bin/vigil"
install -D -m 0644 "$here/vigil.service" "$stage/lib/systemd/system/vigil.service"
install -D -m 0644 "$here/vigil.yml" "$stage/etc/vigil/vigil.yml"
install -D -m 0644 "$here/../LICENSE" "$stage/usr/share/doc/vigil/copyright"
mkdir -p "$stage/DEBIAN"
for script in postinst prerm postrm; do install -m 0755 "$here/deb/$script" "$stage/DEBIAN/$script"; done
echo /etc/vigil/vigil.yml >"$stage/DEBIAN/conffiles"
# The libraries the binary links (the Swift runtime is linked in statically).
cat >"$stage/DEBIAN/control" <<CONTROL
Package: vigil
Version: $version
Architecture: $architecture
Maintainer: vigil developers <vigil@localhost>
Installed-Size: $(du -sk "$stage" | cut -f1)
Depends: libc6, libstdc++6, libgcc-s1, libsystemd0, libisal2, libyaml-0-2, adduser
Section: net
Priority: optional
Description: host, container and systemd unit metrics for Prometheus; journal forwarding
 One agent per node: node_exporter's host metrics, cAdvisor's container metrics and
 systemd_exporter's unit metrics on one Prometheus endpoint (:9100), and the systemd
 journal forwarded to Fluentd forward-protocol targets with acknowledgements.
CONTROL
mkdir -p "$outdir"
dpkg-deb --build --root-owner-group "$stage" "$outdir/vigil_${version}_${architecture}.deb" >/dev/null
echo "$outdir/vigil_${version}_${architecture}.deb"
