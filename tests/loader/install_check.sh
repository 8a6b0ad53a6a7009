#!/bin/sh
# install_check.sh — `meson install` into a temporary root, then build the
# README's C example against it with pkg-config and run it on the tiny
# model (and the installed gemfa program).  Keeps the README example true.
set -eu
: "${GEMFA_BUILD_ROOT:?run through meson test}" "${GEMFA_SOURCE_ROOT:?}" "${GEMFA_TEST_DATA:?}"
# A sanitized library needs the sanitizer runtime in every program that links
# it; the plain example program has none, so this check only runs in normal builds.
sanitize=$(meson introspect "$GEMFA_BUILD_ROOT" --buildoptions | /usr/bin/python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "b_sanitize"))')
if [ "$sanitize" != "none" ]; then
    echo "skipped: sanitized build (b_sanitize=$sanitize)"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gemfa-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

meson install -C "$GEMFA_BUILD_ROOT" --no-rebuild --quiet --destdir "$tmp/root" >/dev/null

pc=$(find "$tmp/root" -name gemfa.pc | head -n 1)
[ -n "$pc" ] || { echo "gemfa.pc was not installed"; exit 1; }
header=$(find "$tmp/root" -name gemfa.h | head -n 1)
[ -n "$header" ] || { echo "gemfa.h was not installed"; exit 1; }
so=$(find "$tmp/root" -name 'libgemfa.so.0' | head -n 1)
[ -n "$so" ] || { echo "libgemfa.so.0 was not installed"; exit 1; }
[ -n "$(find "$tmp/root" -name 'libgemfa.a')" ] || { echo "libgemfa.a was not installed"; exit 1; }
cli=$(find "$tmp/root" -type f -name gemfa -perm -u+x | head -n 1)
[ -n "$cli" ] || { echo "the gemfa program was not installed"; exit 1; }

# The C example of README.md, verbatim.
awk '/^```c$/ {on=1; next} /^```$/ {on=0} on' "$GEMFA_SOURCE_ROOT/README.md" > "$tmp/app.c"
[ -s "$tmp/app.c" ] || { echo "README.md has no C example"; exit 1; }

export PKG_CONFIG_SYSROOT_DIR="$tmp/root" PKG_CONFIG_PATH="$(dirname "$pc")"
flags=$(pkg-config --cflags --libs gemfa)
# shellcheck disable=SC2086
cc -std=c99 -Wall -Wextra -Werror "$tmp/app.c" -o "$tmp/app" $flags

tiny="$GEMFA_TEST_DATA/tiny-gemma3n"
out=$(LD_LIBRARY_PATH=$(dirname "$so") "$tmp/app" "$tiny")
echo "README example: $out"
[ "$out" = "25 layers, 1024 logits per token" ] || { echo "unexpected output: $out"; exit 1; }
# it really uses the installed shared library
LD_LIBRARY_PATH=$(dirname "$so") ldd "$tmp/app" | grep -q "$(dirname "$so")/libgemfa.so.0" ||
    { echo "the example did not link the installed libgemfa.so.0"; exit 1; }

# an error goes to stderr with status 1
if LD_LIBRARY_PATH=$(dirname "$so") "$tmp/app" /nonexistent 2>"$tmp/err"; then
    echo "loading /nonexistent succeeded"; exit 1
fi
grep -q "GEMFA_ERR_NOT_FOUND" "$tmp/err" || { echo "no error message: $(cat "$tmp/err")"; exit 1; }

LD_LIBRARY_PATH=$(dirname "$so") "$cli" info -m "$tiny" --json | /usr/bin/python3 -c '
import json, sys
i = json.load(sys.stdin)
assert i["n_layers"] == 25 and i["kv_source"][20:] == [18, 18, 18, 18, 19], i'
echo "install check passed"
