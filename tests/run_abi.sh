#!/usr/bin/env bash
# run_abi.sh [BUILD] [--update] — compares the ABI of libgemfa.so (built
# with -g in GEMFA_ABI_BUILD_DIR, default build-abi) with the committed
# baseline tests/abi/libgemfa.abi using abidiff (Debian abigail-tools),
# looking only at types reachable from include/gemfa.h.  Any difference
# fails: an incompatible change (removed function, changed signature,
# struct layout or enum value) and also an addition, which must be made
# deliberately with --update (tests/abi/README.md).
# Writes "abi P F" into BUILD/test-results/abi.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${GEMFA_BUILD_DIR:-build}}
UPDATE=${2:-}
ABI=${GEMFA_ABI_BUILD_DIR:-build-abi}
BASELINE=tests/abi/libgemfa.abi
RESULTS="$BUILD/test-results"
mkdir -p "$RESULTS"
result() { echo "abi $1 $2" > "$RESULTS/abi.txt"; cat "$RESULTS/abi.txt" >&2; }

if ! command -v abidiff >/dev/null; then
    echo "run_abi.sh: abidiff is not installed (apt-get install abigail-tools)" >&2
    result 0 1
    exit 0
fi
tests/setup_builddir.sh "$ABI" disabled -Dbuildtype=debug >/dev/null
so_target=$(ninja -C "$ABI" -t targets all | sed -n 's|^\(lib/libgemfa\.so\.[0-9.]*\): c_LINKER|\1|p' | head -n 1)
if [ -z "$so_target" ] || ! ninja -C "$ABI" "$so_target" >/dev/null; then
    echo "run_abi.sh: the -g build failed" >&2
    result 0 1
    exit 0
fi
so="$ABI/$so_target"
if [ "$UPDATE" = "--update" ]; then
    abidw --headers-dir include --no-corpus-path --no-comp-dir-path "$so" > "$BASELINE"
    echo "run_abi.sh: wrote $BASELINE; commit it with the change that needs it" >&2
    exit 0
fi
report="$ABI/abidiff.txt"
abidiff --headers-dir2 include "$BASELINE" "$so" > "$report" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
    echo "run_abi.sh: ABI equal to $BASELINE" >&2
    result 1 0
else
    # abidiff's exit status: bit 2 = ABI change, bit 3 = incompatible change
    kind="changed"
    [ $((rc & 8)) -ne 0 ] && kind="INCOMPATIBLE change"
    echo "run_abi.sh: ABI $kind against $BASELINE (abidiff exit $rc):" >&2
    cat "$report" >&2
    echo "run_abi.sh: if the change is deliberate, see tests/abi/README.md" >&2
    result 0 1
fi
