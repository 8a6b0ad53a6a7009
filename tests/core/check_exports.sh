#!/bin/sh
# Every dynamic symbol the library defines must start with gemfa_, and the
# SONAME must be libgemfa.so.0.
set -eu
lib="$1"
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v '^gemfa_' || true)
if [ -n "$bad" ]; then
    echo "non-gemfa symbols exported:"; echo "$bad"; exit 1
fi
count=$(nm -D --defined-only "$lib" | awk '$2 == "T"' | grep -c '^.* gemfa_' || true)
[ "$count" -gt 10 ] || { echo "only $count gemfa_ functions exported"; exit 1; }
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = "libgemfa.so.0" ] || { echo "SONAME is '$soname'"; exit 1; }
echo "ok: $count gemfa_ functions, SONAME $soname"
