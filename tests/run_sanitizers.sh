#!/usr/bin/env bash
# run_sanitizers.sh [BUILD] — the sanitizer runs of CI (dev.sh test):
#  1. ASan + UBSan: a separate build of everything (build-asan), every test
#     suite through sanitizer_check.sh (so leaks in forked Criterion tests
#     fail), UBSan with -fno-sanitize-recover; then two canaries (a leak
#     inside a Criterion test, a signed overflow) that MUST fail.
#  2. TSan: a separate build (build-tsan) of the library, the concurrency
#     test, the thread-pool test, the MatFormer test and the AMX GEMM test
#     (tests/kernels/test_amx.c: skips without AMX), run through the same check.
# Writes "asan-ubsan P F" and "tsan P F" into BUILD/test-results/.
# Build dirs: GEMFA_ASAN_BUILD_DIR, GEMFA_TSAN_BUILD_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${1:-${GEMFA_BUILD_DIR:-build}}
ASAN=${GEMFA_ASAN_BUILD_DIR:-build-asan}
TSAN=${GEMFA_TSAN_BUILD_DIR:-build-tsan}
RESULTS="$BUILD/test-results"
mkdir -p "$RESULTS"
CHECK="$ROOT/tests/sanitizer_check.sh"
NORECOVER="-fno-sanitize-recover=all"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp"

setup_dir() { # dir, sanitizers (tests=enabled: a missing Criterion fails here)
    tests/setup_builddir.sh "$1" enabled --werror -Dbuildtype=debugoptimized \
        -Db_sanitize="$2" -Db_lundef=false -Dc_args="$NORECOVER" -Dcpp_args="$NORECOVER" >/dev/null
}

# --- ASan + UBSan: everything -------------------------------------------------
echo "run_sanitizers.sh: ASan+UBSan build in $ASAN" >&2
asan_extra_pass=0 asan_extra_fail=0
if setup_dir "$ASAN" address,undefined && ninja -C "$ASAN" >/dev/null; then
    meson test -C "$ASAN" --no-rebuild --wrapper "$CHECK" --num-processes 2 \
        --timeout-multiplier 4 --print-errorlogs >&2 || true
    # The canaries must fail: otherwise this whole run could not catch a leak.
    for c in leak signed_overflow; do
        out=$("$CHECK" "$ASAN/tests/reliability/sanitizer_canary" --filter="canary/$c" 2>/dev/null)
        if [ $? -ne 0 ] && grep -q '^not ok - sanitizer report' <<<"$out"; then
            asan_extra_pass=$((asan_extra_pass + 1))
        else
            echo "run_sanitizers.sh: canary '$c' was not caught: sanitizer reports would go unnoticed" >&2
            asan_extra_fail=$((asan_extra_fail + 1))
        fi
    done
    /usr/bin/python3 tests/results_line.py asan-ubsan "$ASAN/meson-logs/testlog-sanitizer_check.sh.json" \
        $asan_extra_pass $asan_extra_fail > "$RESULTS/asan-ubsan.txt"
else
    echo "run_sanitizers.sh: the ASan build failed" >&2
    echo "asan-ubsan 0 1" > "$RESULTS/asan-ubsan.txt"
fi
cat "$RESULTS/asan-ubsan.txt" >&2

# --- TSan: the concurrency test -----------------------------------------------
echo "run_sanitizers.sh: TSan build in $TSAN" >&2
if setup_dir "$TSAN" thread &&
    ninja -C "$TSAN" tests/reliability/test_concurrency_tsan tests/kernels/test_threadpool_tsan \
        tests/loader/test_matformer_tsan tests/kernels/test_amx_tsan >/dev/null; then
    meson test -C "$TSAN" --no-rebuild --wrapper "$CHECK" --timeout-multiplier 4 \
        --print-errorlogs test_concurrency_tsan test_threadpool_tsan test_matformer_tsan \
        test_amx_tsan >&2 || true
    /usr/bin/python3 tests/results_line.py tsan "$TSAN/meson-logs/testlog-sanitizer_check.sh.json" \
        > "$RESULTS/tsan.txt"
else
    echo "run_sanitizers.sh: the TSan build failed" >&2
    echo "tsan 0 1" > "$RESULTS/tsan.txt"
fi
cat "$RESULTS/tsan.txt" >&2
