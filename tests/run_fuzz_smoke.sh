#!/usr/bin/env bash
# run_fuzz_smoke.sh [BUILD] — builds the libFuzzer targets (clang, ASan +
# UBSan, in GEMFA_FUZZ_BUILD_DIR, default build-fuzz) and runs each for
# GEMFA_FUZZ_SECONDS (default 20) starting from its committed seed corpus.
# Writes "fuzz P F" (one per target) into BUILD/test-results/fuzz.txt.
# A crash leaves its input in FUZZ_BUILD/artifacts/: turn it into a
# regression input (docs/fuzzing.md).  For long runs see docs/fuzzing.md.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${1:-${GEMFA_BUILD_DIR:-build}}
FUZZ=${GEMFA_FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_EACH=${GEMFA_FUZZ_SECONDS:-20}
RESULTS="$BUILD/test-results"
mkdir -p "$RESULTS"
TARGETS="safetensors index config tokenizer_load tokenize detokenize chat decode stop json_schema"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OPENBLAS_NUM_THREADS=1
export GEMFA_TEST_DATA="$ROOT/tests/data"

if ! command -v clang >/dev/null; then
    echo "run_fuzz_smoke.sh: clang is not installed (apt-get install clang libclang-rt-14-dev)" >&2
    echo "fuzz 0 1" > "$RESULTS/fuzz.txt"
    exit 0
fi
CC=clang CXX=clang++ tests/setup_builddir.sh "$FUZZ" disabled --werror -Dfuzz=true \
    -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all >/dev/null
if ! ninja -C "$FUZZ" >/dev/null; then
    echo "run_fuzz_smoke.sh: the fuzz build failed" >&2
    echo "fuzz 0 1" > "$RESULTS/fuzz.txt"
    exit 0
fi

passed=0 failed=0
mkdir -p "$FUZZ/artifacts"
for t in $TARGETS; do
    work="$FUZZ/corpus-work/$t" # new inputs go here, never into the committed seeds
    mkdir -p "$work"
    log="$FUZZ/fuzz-$t.log"
    case $t in # inputs up to the seeds' size (a tokenizer.json seed is 77 kB)
        tokenizer_load) max_len=100000 ;;
        decode) max_len=128 ;; # a decode is slow under ASan: short id lists
        *) max_len=4096 ;;
    esac
    if "$FUZZ/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=4096 -max_len=$max_len -print_final_stats=1 \
        -artifact_prefix="$FUZZ/artifacts/$t-" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz $t: ok (${runs:-?} runs in ${SECONDS_EACH}s)" >&2
        passed=$((passed + 1))
    else
        echo "fuzz $t: FAILED — see $log; input saved in $FUZZ/artifacts/" >&2
        grep -E "ERROR|check failed|runtime error|Test unit written" "$log" | head -5 >&2
        failed=$((failed + 1))
    fi
done
echo "fuzz $passed $failed" > "$RESULTS/fuzz.txt"
cat "$RESULTS/fuzz.txt" >&2
