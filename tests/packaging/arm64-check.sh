#!/usr/bin/env bash
# The arm64 .deb under emulation (qemu-user-static, binfmt): not part of CI (about
# 10 minutes the first time, most of it debootstrap's second stage under qemu).
#
#   tests/packaging/arm64-check.sh dist/clubterm_VERSION_arm64.deb
#
# In a debootstrapped arm64 bookworm root with python3 (cached in
# $CLUBTERM_CI_CACHE/arm64-root), the package's files are unpacked and, under qemu:
# `clubterm --version`, `clubterm provision demo` into a scratch folder, a quote
# through the real agent on its socket, and the pure-core tests (card data, rules,
# the store) with pytest and hypothesis wheels made for that root. What this cannot
# show: systemd as PID 1 on arm64 (nspawn of a foreign root is not supported here),
# and real PC/SC and evdev readers (no pcscd or input devices in the chroot). With the
# [hw] wheels bundled, their compiled modules are loaded and pyscard calls libpcsclite.
set -euo pipefail
deb=$(realpath "$1")
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CLUBTERM_CI_CACHE:-/var/cache/clubterm-ci}
base=$cache/arm64-root
for tool in debootstrap qemu-aarch64-static; do
  command -v "$tool" >/dev/null || { echo "arm64-check: install debootstrap qemu-user-static binfmt-support" >&2; exit 1; }
done
[[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
if [[ ! -x $base/usr/bin/python3.11 ]]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  rm -rf "$base"
  debootstrap --variant=minbase --arch=arm64 --include=python3 bookworm "$base" "$mirror" >/dev/null
fi
work=$(mktemp -d /var/tmp/clubterm-arm64.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
cp -a "$base" "$root"
# Not dpkg-deb -x: tar would replace the root's /lib -> usr/lib link with a folder.
dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root"
# Test tools for the arm64 root: pure-Python wheels, no compiler needed.
"$repo/.venv/bin/pip" install -q --target "$root/opt/testtools" --only-binary=:all: \
  --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp \
  pytest pytest-timeout hypothesis >/dev/null 2>&1
mkdir -p "$root/src"
cp -a "$repo/tests" "$repo/docs" "$repo/pyproject.toml" "$root/src/"
echo "==> uname -m under the emulator: $(chroot "$root" uname -m)"
if dpkg-deb -f "$deb" Depends | grep -q libpcsclite1; then
  # A package with the [hw] wheels (packaging/arm64-hw-wheels.sh): its compiled modules
  # load, and pyscard reaches bookworm's libpcsclite (no pcscd here: it says so).
  start=$SECONDS
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c \
    'apt-get update -q && apt-get install -y -q --no-install-recommends libpcsclite1' \
    >"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log" >&2; exit 1; }
  echo "==> the compiled [hw] extras (libpcsclite1 installed in $((SECONDS - start)) s)"
  chroot "$root" /usr/lib/clubterm/bin/python3 -I -c '
import evdev, smartcard.scard as s
from smartcard.System import readers
print("evdev", evdev.ecodes.KEY_A, "devices", evdev.list_devices())
rc, ctx = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
print("pyscard: SCardEstablishContext without pcscd:", s.SCardGetErrorMessage(rc))
assert rc == s.SCARD_E_NO_SERVICE, hex(rc)
'
fi
echo "==> clubterm --version"
chroot "$root" /usr/bin/clubterm --version
echo "==> the demo, and a quote through the agent's socket"
chroot "$root" /usr/bin/clubterm --config /srv/demo/agent.toml provision demo \
  --state-dir /srv/demo/state --secrets-dir /srv/demo/secrets --socket /srv/demo/agent.sock
chroot "$root" timeout 120 /usr/bin/clubterm --config /srv/demo/agent.toml run >"$work/agent.log" 2>&1 &
agent=$!
for _ in $(seq 600); do [[ -S $root/srv/demo/agent.sock ]] && break; sleep 0.1; done
chroot "$root" /usr/bin/clubterm --config /srv/demo/agent.toml sale --quote-only \
  --amount 12000 --phone 09120000000 | head -3
kill -TERM "$agent" 2>/dev/null || true; wait "$agent" || true
grep -o '"msg": "agent ready in [^"]*"' "$work/agent.log" || { cat "$work/agent.log"; exit 1; }
echo "==> the pure-core tests under emulation"
start=$SECONDS
chroot "$root" env -i PATH=/usr/bin:/bin LANG=C.UTF-8 PYTHONPATH=/opt/testtools:/src \
  CI=true HYPOTHESIS_PROFILE=ci \
  /usr/lib/clubterm/bin/python3 -m pytest -q -p no:cacheprovider --rootdir /src -c /src/pyproject.toml \
  -rfE /src/tests/agent/carddata /src/tests/agent/rules 2>&1 | tail -n 12
echo "==> tests took $((SECONDS - start)) s under qemu"
