#!/usr/bin/env bash
# Makes the clean Debian 12 root that tests/packaging boots under systemd-nspawn, as a
# tarball: debootstrap's minbase plus systemd as PID 1, no python3. The packages the
# .deb depends on are downloaded into the root's apt cache but NOT installed, so
# `apt-get install ./clubterm_….deb` inside the (offline) container proves that the
# package declares what it needs and installs without a network.
#
#   tests/packaging/bookworm-root.sh OUT.tar [ARCH]
#
# The mirror is the host's own (its apt sources), so this works wherever apt does.
set -euo pipefail
out=$1
arch=${2:-$(dpkg --print-architecture)}
# Packages the .deb depends on (debian/control's Depends) and what the test uses.
predownload=(python3 procps libpcsclite1 mosquitto)

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [[ -z $mirror ]]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[[ -n $mirror ]] || { echo "bookworm-root: no Debian mirror in the host's apt sources" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/clubterm-root.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
debootstrap --variant=minbase --arch="$arch" --include=systemd-sysv,dbus \
  bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
SOURCES
chroot "$root" apt-get update -qq
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only \
  --no-install-recommends "${predownload[@]}" >/dev/null
# What nspawn needs to boot it quietly: a machine id made at first boot, a hostname,
# no getty fight over the console.
rm -f "$root/etc/machine-id"; : >"$root/etc/machine-id"
echo clubterm-ci >"$root/etc/hostname"
chroot "$root" systemctl mask console-getty.service getty@tty1.service \
  systemd-networkd-wait-online.service >/dev/null 2>&1 || true
tar -C "$root" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"
