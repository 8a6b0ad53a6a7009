#!/usr/bin/env bash
# run_scalar_only.sh [BUILD] — CI's check of -Dsimd=disabled (the build for an
# architecture without SIMD kernels, here on x86-64): a separate build
# (build-scalar) whose kernel table is the scalar one only, then a quick
# suite: the kernel and dispatch tests (every level but scalar must be
# absent), the golden logits of the tiny fixtures, and the CLI's logits.
# Writes "scalar-only P F" into BUILD/test-results/.
# Build dir: GEMFA_SCALAR_BUILD_DIR (default build-scalar).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${GEMFA_BUILD_DIR:-build}}
SCALAR=${GEMFA_SCALAR_BUILD_DIR:-build-scalar}
RESULTS="$BUILD/test-results"
mkdir -p "$RESULTS"
TESTS=(test_dispatch test_kernels test_q8_layout test_q4 test_convert test_vec test_golden cli_logits)
echo "run_scalar_only.sh: -Dsimd=disabled build in $SCALAR" >&2
if tests/setup_builddir.sh "$SCALAR" enabled --werror -Dsimd=disabled >/dev/null &&
    ninja -C "$SCALAR" examples/gemfa/gemfa tests/kernels/test_dispatch tests/kernels/test_kernels \
        tests/kernels/test_q8_layout tests/kernels/test_q4 tests/kernels/test_convert tests/runtime/test_vec \
        tests/runtime/test_golden tests/text/test_golden >/dev/null; then
    # the detected level must be scalar whatever this CPU has
    GEMFA_EXPECT_DETECTED_LEVEL=scalar meson test -C "$SCALAR" --no-rebuild --num-processes 2 \
        --print-errorlogs "${TESTS[@]}" >&2 || true
    /usr/bin/python3 tests/results_line.py scalar-only "$SCALAR/meson-logs/testlog.json" \
        > "$RESULTS/scalar-only.txt"
else
    echo "run_scalar_only.sh: the -Dsimd=disabled build failed" >&2
    echo "scalar-only 0 1" > "$RESULTS/scalar-only.txt"
fi
cat "$RESULTS/scalar-only.txt" >&2
read -r _ _ failed < "$RESULTS/scalar-only.txt"
[ "$failed" -eq 0 ]
