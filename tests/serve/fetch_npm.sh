#!/usr/bin/env bash
# fetch_npm.sh — installs the serve tests' npm packages (the official openai
# SDK and puppeteer-core, pinned by package-lock.json) into
# tests/.cache/npm-serve with `npm ci`, and prints that directory (its
# node_modules is what NODE_PATH needs).  Safe to run concurrently (flock);
# does nothing when the lockfile did not change since the last install.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${GEMFA_NPM_SERVE_CACHE:-$ROOT/tests/.cache/npm-serve}"
die() { echo "fetch_npm.sh: $*" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
want=$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$CACHE/.installed" 2>/dev/null)" != "$want" ]; then
    command -v npm >/dev/null || die "npm is not installed (Debian: apt-get install npm nodejs)"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$CACHE/"
    echo "fetch_npm.sh: npm ci in $CACHE" >&2
    (cd "$CACHE" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        die "npm ci failed (is the npm registry reachable?)"
    echo "$want" > "$CACHE/.installed"
fi
echo "$CACHE"
