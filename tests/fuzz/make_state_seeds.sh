#!/usr/bin/env bash
# make_state_seeds.sh [BUILD] — writes the seed corpus of fuzz_state
# (tests/fuzz/corpus/state/) with the state_tool helper of BUILD (default
# build): states of the tiny model (weights as stored, as the fuzz target
# loads it) of 0, 3 and 12 tokens, each behind a control byte (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
TOOL="$BUILD/tests/runtime/state_tool"
OUT=tests/fuzz/corpus/state
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
echo "2,6,100,475,8,617,9,10,11,12,13,14" > "$TMP/ids"
seed() { # NAME CONTROL N MAXCTX
    "$TOOL" save tests/data/tiny-gemma3n "$TMP/ids" "$3" "$4" "$TMP/s"
    { printf "\\x$2"; cat "$TMP/s"; } > "$OUT/$1"
}
seed empty_buffer 00 0 4
seed three_buffer 00 3 8
seed three_file 02 3 8
seed twelve_stamped 01 12 12
seed twelve_ctx5 0d 12 12
head -c 60 "$OUT/three_buffer" > "$OUT/truncated_header"
