#!/bin/sh
# check_symbols.sh LIB HEADER SYMBOLS — the shared library exports exactly
# the symbols of the committed list (tests/abi/gemfa.symbols), and the list
# is exactly the functions gemfa.h declares with GEMFA_API.  A symbol that
# disappears breaks every program using it; one that appears must be added
# to the list (and to the ABI baseline) deliberately: tests/abi/README.md.
set -eu
lib="$1" header="$2" list="$3"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gemfa-abi-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sed 's/@.*//' | sort -u > "$tmp/lib"
# GEMFA_API <type...> name( : the name is the identifier right before '('
sed -n 's/^GEMFA_API[^(]*[ *]\(gemfa_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u > "$tmp/header"
sort -u "$list" > "$tmp/list"
rc=0
if ! diff -u "$tmp/list" "$tmp/lib" > "$tmp/d1"; then
    echo "exported symbols differ from $list (- listed, + exported):"; cat "$tmp/d1"; rc=1
fi
if ! diff -u "$tmp/list" "$tmp/header" > "$tmp/d2"; then
    echo "GEMFA_API functions of $header differ from $list (- listed, + declared):"; cat "$tmp/d2"; rc=1
fi
[ $rc -eq 0 ] && echo "ok: $(wc -l < "$tmp/list") symbols exported, listed and declared"
exit $rc
