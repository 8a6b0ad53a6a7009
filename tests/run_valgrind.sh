#!/usr/bin/env bash
# run_valgrind.sh [BUILD] — valgrind memcheck over load + generate + free on
# the bundled tiny model: `gemfa generate`, `gemfa chat`, `gemfa tokenize`
# and the simple_chat example, from the normal build.  Any invalid access,
# use of uninitialised memory or definite/indirect leak fails the run
# (--error-exitcode).  valgrind does not know AVX-512, so the kernels are
# forced down to AVX2 (GEMFA_KERNEL_LEVEL) and OpenBLAS to Haswell.
# Writes "valgrind P F" into BUILD/test-results/valgrind.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${GEMFA_BUILD_DIR:-build}}
RESULTS="$BUILD/test-results"
mkdir -p "$RESULTS"
GEMFA="$BUILD/examples/gemfa/gemfa"
TINY=tests/data/tiny-gemma3n
export GEMFA_KERNEL_LEVEL=${GEMFA_KERNEL_LEVEL:-avx2}
export OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1

if ! command -v valgrind >/dev/null; then
    echo "run_valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
    echo "valgrind 0 1" > "$RESULTS/valgrind.txt"
    exit 0
fi
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-origins=yes)

passed=0 failed=0
run() { # name, stdin file, command...
    local name=$1 input=$2 log="$BUILD/valgrind-$1.log"
    shift 2
    if "${VG[@]}" --log-file="$log" "$@" >/dev/null 2>"$log.stderr" <"$input" && [ ! -s "$log" ]; then
        echo "valgrind $name: ok" >&2
        passed=$((passed + 1))
    else
        echo "valgrind $name: FAILED (see $log)" >&2
        head -30 "$log" "$log.stderr" >&2
        failed=$((failed + 1))
    fi
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gemfa-valgrind-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf '{"text": "سلام <start_of_turn> \\u00ff x"}\n{"text": "\\ud800"}\n' > "$tmp/tokenize.jsonl"
printf 'سلام! حالت چطوره؟\nیک جملهٔ دیگر بگو.\n' > "$tmp/chat.txt"

run generate /dev/null "$GEMFA" generate -m "$TINY" -t 2 -n 12 --seed 7 -p "سلام! لطفاً کوتاه بگو."
run generate-int8 /dev/null "$GEMFA" generate -m "$TINY" -t 1 -n 6 --weights int8 -p "Hello there"
run chat "$tmp/chat.txt" "$GEMFA" chat -m "$TINY" -t 2 -n 6 --seed 3
run tokenize "$tmp/tokenize.jsonl" "$GEMFA" tokenize -m "$TINY"
run simple_chat /dev/null "$BUILD/examples/simple_chat" "$TINY" "سلام! حالت چطوره؟"
echo "valgrind $passed $failed" > "$RESULTS/valgrind.txt"
cat "$RESULTS/valgrind.txt" >&2
