#!/usr/bin/env bash
# run_aarch64.sh [BUILD] — the aarch64 pass of CI (dev.sh test): cross-builds
# libgemfa, gemfa and a selection of the test programs for 64-bit ARM
# (cross/aarch64-linux-gnu.ini, Debian's crossbuild-essential-arm64 and :arm64
# libraries; the Criterion suites on the in-process stand-in,
# -Dmini_criterion=true) and runs them under qemu-user on two CPU models:
#   QEMU_CPU=max         detected level i8mm (SMMLA and SDOT int8 kernels; the
#                        kernel tests also run the dotprod and neon levels)
#   QEMU_CPU=cortex-a72  detected level neon (plain-NEON int8 kernels)
# Per model: the dispatch test (the detected level is checked), the kernel
# tests (every ARM level against exact results and its scalar twin), the
# NEON helpers of the forward pass (runtime/vec_neon.c) and the sampler's
# NEON exp/floor passes (bit for bit with their scalar twins, test_rng), the
# golden logits of the tiny fixtures, the tokenizer golden files, the
# sampler tests, and the CLI's `gemfa logits` (--weights f32 and as stored)
# and (on max) `gemfa generate` against the golden references; on max also a
# threaded subset (thread-pool kernel cases, attention on 1 vs 2 threads,
# `gemfa logits -t 2` = `-t 1` bit for bit).  Installs nothing (dev.sh does).
# Writes "aarch64-max P F" and "aarch64-cortex-a72 P F" into BUILD/test-results/.
# Build dir: GEMFA_AARCH64_BUILD_DIR (default build-aarch64).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${1:-${GEMFA_BUILD_DIR:-build}}
A64=${GEMFA_AARCH64_BUILD_DIR:-build-aarch64}
RESULTS="$BUILD/test-results"
mkdir -p "$RESULTS"
start=$(date +%s)

if [ "$(uname -m)" = aarch64 ]; then
    echo "run_aarch64.sh: this machine is aarch64: the test suites already ran natively" >&2
    exit 0
fi

fail_all() {
    echo "run_aarch64.sh: $1" >&2
    for cpu in max cortex-a72; do echo "aarch64-$cpu 0 1" > "$RESULTS/aarch64-$cpu.txt"; done
    exit 1
}

# qemu-user-static names its program qemu-aarch64-static, qemu-user qemu-aarch64.
QEMU_BIN=$(command -v qemu-aarch64-static || command -v qemu-aarch64) ||
    fail_all "no qemu-aarch64(-static): install qemu-user-static (./dev.sh test does)"
command -v aarch64-linux-gnu-gcc >/dev/null ||
    fail_all "no aarch64-linux-gnu-gcc: install crossbuild-essential-arm64 (./dev.sh test does)"
# The guest root given to -L.  It holds only a /sys/devices/system/cpu/online
# that says one CPU (qemu-user opens a guest path under -L first and falls
# back to the host's), so the library's default thread count, the online CPU
# count, is 1 for the main runs; everything else, the dynamic loader
# /lib/ld-linux-aarch64.so.1 included, comes from the host's multiarch
# libc6:arm64, the same build as the libc.so.6 and the :arm64 libraries.
# (Before, -L pointed at the cross toolchain's /usr/aarch64-linux-gnu: its
# ld.so (libc6-arm64-cross 2.36-8) then loaded libc6:arm64's libc.so.6
# (2.36-9+deb12u14) from /lib/aarch64-linux-gnu, a mismatched pair whose
# first pthread_create never returned.)  The threaded runs below start
# their pools with explicit thread counts.
QROOT="$ROOT/$A64/qemu-root"
rm -rf "$QROOT"
mkdir -p "$QROOT/sys/devices/system/cpu"
echo 0 > "$QROOT/sys/devices/system/cpu/online"
export GEMFA_QEMU="$QEMU_BIN -L $QROOT"

cross_files=(--cross-file cross/aarch64-linux-gnu.ini)
case "$QEMU_BIN" in
*-static) ;;
*) cross_files+=(--cross-file cross/qemu-user.ini) ;; # exe_wrapper = qemu-aarch64
esac

# --- cross build: the library, gemfa and the selected test programs ----------
TESTS_BIN=(tests/kernels/test_dispatch tests/kernels/test_kernels tests/kernels/test_q8_layout
    tests/kernels/test_q4
    tests/kernels/test_convert tests/runtime/test_golden tests/runtime/test_models
    tests/runtime/test_ops tests/runtime/test_vec tests/text/test_golden tests/sampling/test_sampler
    tests/sampling/test_stages tests/sampling/test_rng)
echo "run_aarch64.sh: cross build in $A64" >&2
if [ ! -f "$A64/build.ninja" ]; then
    meson setup "$A64" "${cross_files[@]}" -Dtests=enabled -Dmini_criterion=true \
        --werror >/dev/null || fail_all "meson setup of the aarch64 build failed"
fi
ninja -C "$A64" examples/gemfa/gemfa "${TESTS_BIN[@]}" >/dev/null ||
    fail_all "the aarch64 build failed"
build_s=$(($(date +%s) - start))

export GEMFA_TEST_DATA="$ROOT/tests/data" GEMFA_SOURCE_ROOT="$ROOT" GEMFA_BUILD_ROOT="$ROOT/$A64"
export GEMFA_AARCH64_CLI="$ROOT/$A64/examples/gemfa/gemfa"
export GEMFA_CLI="$ROOT/tests/aarch64/qemu_cli.sh"
export OPENBLAS_NUM_THREADS=1 CRITERION_JOBS=1

# run NAME PROGRAM [ARGS...]: one TAP-printing program; counts its cases
# (a crash or a timeout after some cases counts as one more failure).
run() {
    local name=$1 out rc p f
    shift
    out=$("$@" 2>"$LOG_DIR/$name.err")
    rc=$?
    echo "$out" > "$LOG_DIR/$name.tap"
    p=$(grep -c '^ok\b' <<<"$out")
    f=$(grep -c '^not ok\b' <<<"$out")
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        f=1 # printed nothing: it did not run
    fi
    if [ "$f" -ne 0 ]; then
        echo "run_aarch64.sh: $CPU $name: $f failed (see $LOG_DIR/$name.*)" >&2
        grep -h '^not ok\|Assertion' "$LOG_DIR/$name.tap" "$LOG_DIR/$name.err" | head -5 >&2
    fi
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
}

# test binaries under qemu (TAP from the stand-in), Python tests of the CLI;
# 5 minutes at most each
q() { timeout 300 $GEMFA_QEMU "$ROOT/$A64/$1" "${@:2}"; }
py() { timeout 300 /usr/bin/python3 "$ROOT/tests/unittest_tap.py" "$@"; }

# threads_same_bits: `gemfa logits` on 1 and on 2 threads, byte-identical (TAP).
threads_same_bits() {
    local ids out1="$LOG_DIR/logits_t1.bin" out2="$LOG_DIR/logits_t2.bin"
    ids=$(tr -s ' \n' ',,' <"$ROOT/tests/data/runtime/long300.ids.txt" | sed 's/^,//; s/,$//')
    timeout 300 $GEMFA_QEMU "$GEMFA_AARCH64_CLI" logits -t 1 --tokens "$ids" -o "$out1" &&
        timeout 300 $GEMFA_QEMU "$GEMFA_AARCH64_CLI" logits -t 2 --tokens "$ids" -o "$out2" || {
        echo "not ok 1 - gemfa logits -t 1 / -t 2 ran"
        return 1
    }
    if cmp -s "$out1" "$out2"; then
        echo "ok 1 - gemfa logits: 2 threads give the 1-thread bits"
    else
        echo "not ok 1 - gemfa logits: 2 threads differ from 1 thread"
    fi
}

rc=0
for CPU in max cortex-a72; do
    export QEMU_CPU=$CPU
    LOG_DIR="$A64/aarch64-logs/$CPU"
    mkdir -p "$LOG_DIR"
    PASSED=0 FAILED=0
    t0=$(date +%s)
    if [ "$CPU" = max ]; then
        level=i8mm
    else
        level=neon
    fi
    GEMFA_EXPECT_DETECTED_LEVEL=$level run dispatch q tests/kernels/test_dispatch
    GEMFA_KERNEL_LEVEL=scalar run dispatch_scalar q tests/kernels/test_dispatch
    # Bit for bit: every level's int8 kernel equals the scalar twin on any row range.
    run q8_layout q tests/kernels/test_q8_layout
    # 4-bit weights: layout, quantizer (every level = scalar), and every
    # level's Q4 kernel (plain NEON, SDOT, SMMLA) = the scalar one bit for bit.
    run q4 q tests/kernels/test_q4
    run convert q tests/kernels/test_convert
    # The kernel tests loop over every level the CPU has.  The f32/F16/BF16
    # kernels are the same code on both models: the full set runs on max
    # (with the two cases that start pools of 2-3 threads: the threaded
    # subset); cortex-a72 (whose only different kernel is the plain-NEON
    # int8 one) runs the int8 and widening cases.
    if [ "$CPU" = max ]; then
        run kernels q tests/kernels/test_kernels
    else
        run kernels_q8 q tests/kernels/test_kernels --filter='kernels/q8_*'
        run kernels_widen q tests/kernels/test_kernels --filter='kernels/matrix_row_f32*'
    fi
    run ops q tests/runtime/test_ops
    # The forward pass's helpers (vec_neon.c on every ARM level) against
    # double formulas and their scalar twin (vec.c's generic code); on max
    # also attention on 1 vs 2 threads (same bits: the threaded subset).
    if [ "$CPU" = max ]; then
        run vec q tests/runtime/test_vec
    else
        run vec q tests/runtime/test_vec --exclude='vec/attention_threads_equal*'
    fi
    run golden_logits q tests/runtime/test_golden
    run golden_models q tests/runtime/test_models --filter='*/long_*'
    run tokenizer_golden q tests/text/test_golden --filter='golden/tiny_*'
    run sampler q tests/sampling/test_sampler
    run sampler_stages q tests/sampling/test_stages
    run rng q tests/sampling/test_rng
    # The CLI: gemfa logits (--weights f32 and as stored) within the golden
    # tolerance, gemfa generate against the reference argmax chain.
    run cli_logits py tests/runtime/test_cli_logits.py
    # generate runs the same (bf16 -> NEON f32) kernels on both models: once
    if [ "$CPU" = max ]; then
        run cli_generate py tests/cli/test_generate.py
        # Threaded subset: gemfa logits of the long fixture prompt (a prompt
        # batch and the row kernels) on 2 threads gives the 1-thread bits.
        run cli_threads threads_same_bits
    fi
    echo "aarch64-$CPU $PASSED $FAILED" > "$RESULTS/aarch64-$CPU.txt"
    echo "run_aarch64.sh: QEMU_CPU=$CPU (level $level): $PASSED passed, $FAILED failed in $(($(date +%s) - t0)) s" >&2
    [ "$FAILED" -eq 0 ] || rc=1
done
echo "run_aarch64.sh: build $build_s s, whole pass $(($(date +%s) - start)) s" >&2
exit $rc
