#!/usr/bin/env bash
# Installs what the fleet tests (tests/fleet) run besides mosquitto, outside the tree,
# idempotently (a second run installs nothing):
#  - redis-server (Debian), which the aedes cluster keeps its sessions in;
#  - the aedes cluster's node modules: `npm ci` of package-lock.json into
#    $CLUBTERM_CI_CACHE/aedes-cluster/<hash of the lock file>/node_modules;
#  - amqtt (PyPI) in its own virtualenv, $CLUBTERM_AMQTT_VENV (never the project's .venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CLUBTERM_CI_CACHE:-/var/cache/clubterm-ci}
amqtt_venv=${CLUBTERM_AMQTT_VENV:-/opt/clubterm-amqtt}
amqtt_version=0.12.1

if ! command -v redis-server >/dev/null || ! command -v node >/dev/null; then
  missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v node >/dev/null || missing+=(nodejs npm)
  if [[ $(id -u) -ne 0 ]]; then
    echo "fleet tests: missing Debian packages: ${missing[*]} (run as root)" >&2
    exit 1
  fi
  echo "==> installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

lock_hash=$(sha256sum "$here/package-lock.json" | cut -c1-16)
target=$cache/aedes-cluster/$lock_hash
if [[ ! -f $target/.installed ]]; then
  echo "==> npm ci (aedes cluster) into $target"
  mkdir -p "$target"
  cp "$here/package.json" "$here/package-lock.json" "$target/"
  (cd "$target" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$target/.installed"
fi

if [[ ! -f $amqtt_venv/.installed-$amqtt_version ]]; then
  echo "==> amqtt $amqtt_version into $amqtt_venv"
  python3 -m venv "$amqtt_venv"
  "$amqtt_venv/bin/pip" install -q "amqtt==$amqtt_version" >/dev/null 2>&1 || {
    "$amqtt_venv/bin/pip" install "amqtt==$amqtt_version" >&2; exit 1; }
  touch "$amqtt_venv/.installed-$amqtt_version"
fi
