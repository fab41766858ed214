#!/usr/bin/env bash
# Builds the compiled [hw] extras (pyscard, evdev) for arm64, which PyPI has no aarch64
# wheels of, and puts them in the arm64 wheel cache, where scripts/package --arch arm64
# finds them and bundles them (docs/packaging.md, "arm64"). Not part of CI: about 8
# minutes on the 2-core machine (apt in the root ~4, compiling under qemu ~4).
#
#   packaging/arm64-hw-wheels.sh
#
# Compiled under qemu-user-static in a copy of the arm64 bookworm root that
# tests/packaging/arm64-check.sh also uses ($CLUBTERM_CI_CACHE/arm64-root, made here by
# debootstrap if missing: 10 more minutes the first time), with Debian's
# gcc, swig, python3-dev and libpcsclite-dev, so the wheels link against bookworm's
# libc and libpcsclite1 (which the arm64 .deb then depends on).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${CLUBTERM_CI_CACHE:-/var/cache/clubterm-ci}
base=$cache/arm64-root
out=${CLUBTERM_WHEEL_CACHE:-$cache/wheels}/arm64
[[ $(id -u) -eq 0 ]] || { echo "arm64-hw-wheels: run as root (chroot)" >&2; exit 1; }
command -v qemu-aarch64-static >/dev/null \
  || { echo "arm64-hw-wheels: install qemu-user-static binfmt-support" >&2; exit 1; }
[[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
if [[ ! -x $base/usr/bin/python3.11 ]]; then
  # The same root as tests/packaging/arm64-check.sh (about 10 minutes, once).
  command -v debootstrap >/dev/null || { echo "arm64-hw-wheels: install debootstrap" >&2; exit 1; }
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  rm -rf "$base"
  debootstrap --variant=minbase --arch=arm64 --include=python3 bookworm "$base" "$mirror" >/dev/null
fi
mapfile -t hw < <(python3 -c 'import tomllib; print("\n".join(tomllib.load(open("'"$repo"'/pyproject.toml","rb"))["project"]["optional-dependencies"]["hw"]))')

work=$(mktemp -d /var/tmp/clubterm-arm64-wheels.XXXXXX)
root=$work/root
cleanup() { umount "$root/proc" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start=$SECONDS
cp -a "$base" "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# pip in the root trusts what the host's pip trusts (a TLS-inspecting proxy's CA included).
cp /etc/ssl/certs/ca-certificates.crt "$root/host-ca.crt"
mount -t proc proc "$root/proc"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive PIP_CERT=/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"; }
echo "==> build tools in the arm64 root (apt under qemu)"
in_root apt-get update -q >"$work/apt.log" 2>&1
in_root apt-get install -y -q --no-install-recommends gcc libc6-dev python3-dev python3-pip \
  swig libpcsclite-dev linux-libc-dev >>"$work/apt.log" 2>&1 || { tail -n 30 "$work/apt.log" >&2; exit 1; }
echo "==> compiling ${hw[*]} under qemu ($((SECONDS - start)) s so far)"
in_root python3 -m pip wheel -q --no-deps -w /wheels "${hw[@]}" >"$work/pip.log" 2>&1 \
  || { tail -n 30 "$work/pip.log" >&2; exit 1; }
mkdir -p "$out"
cp "$root"/wheels/*.whl "$out/"
ls -l "$root"/wheels
echo "==> arm64 wheels in $out in $((SECONDS - start)) s"
