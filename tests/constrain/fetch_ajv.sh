#!/usr/bin/env bash
# fetch_ajv.sh — installs the JSON Schema validator the constrained-output
# tests check against (npm ajv, version pinned with its dependencies in
# tests/constrain/ajv/package-lock.json) into tests/.cache/ajv and prints
# its node_modules directory.  Safe to run concurrently (flock); does
# nothing when it is already there.  Runs on Node 18 and later.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${GEMFA_AJV_CACHE:-$ROOT/tests/.cache/ajv}"
die() { echo "fetch_ajv.sh: $*" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ ! -f "$CACHE/node_modules/ajv/package.json" ] ||
    ! cmp -s "$ROOT/tests/constrain/ajv/package-lock.json" "$CACHE/package-lock.json"; then
    command -v npm >/dev/null ||
        die "npm is not installed: the JSON Schema tests need it (Debian: apt-get install npm nodejs)"
    cp "$ROOT/tests/constrain/ajv/package.json" "$ROOT/tests/constrain/ajv/package-lock.json" "$CACHE/"
    echo "fetch_ajv.sh: installing ajv (package-lock.json) into $CACHE" >&2
    (cd "$CACHE" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        die "npm ci failed (is the npm registry reachable?)"
fi
echo "$CACHE/node_modules"
