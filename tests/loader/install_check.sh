#!/bin/sh
# install_check.sh — `meson install` into a temporary root, then check gemfa.pc
# (public flags only; --static adds the private libraries; works with only the
# prefix's .pc files visible), build the README's C example against it with
# pkg-config and an rpath, shared and static, and run it on the tiny model
# (and the installed gemfa program), all without LD_LIBRARY_PATH.  Keeps the
# README example and its build instructions true.
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

# A relocated install: gemfa.pc's prefix points into the temporary root (every
# other path in it is ${prefix}-relative), as if meson had been set up with that prefix.
root_prefix=$(sed -n 's/^prefix=//p' "$pc")
prefix="$tmp/root$root_prefix"
sed -i "s|^prefix=.*|prefix=$prefix|" "$pc"
libdir=$(dirname "$so")

# gemfa.pc alone answers (PKG_CONFIG_LIBDIR hides the system's .pc files): public
# flags only, no private cflags (-DUTF8PROC_EXPORTS, yajl/OpenBLAS include dirs).
pcdir=$(dirname "$pc")
flags=$(PKG_CONFIG_LIBDIR=$pcdir pkg-config --cflags --libs gemfa) ||
    { echo "pkg-config gemfa fails with only the prefix's .pc files visible"; exit 1; }
flags=${flags% }  # pkg-config ends its output with a space
want="-I$prefix/include -L$libdir -lgemfa"
[ "$flags" = "$want" ] || { echo "pkg-config --cflags --libs gemfa: '$flags', want '$want'"; exit 1; }
# the same with the system's .pc files also visible
export PKG_CONFIG_PATH="$pcdir"
flags=$(pkg-config --cflags --libs gemfa)
flags=${flags% }
[ "$flags" = "$want" ] || { echo "with PKG_CONFIG_PATH: '$flags', want '$want'"; exit 1; }
# --static adds what libgemfa.a needs
static=$(pkg-config --static --libs gemfa)
for l in -lgemfa -lutf8proc -lyajl -lopenblas -lm; do
    case " $static " in *" $l "*) ;; *) echo "pkg-config --static --libs gemfa lacks $l: $static"; exit 1 ;; esac
done
[ "$(pkg-config --variable=libdir gemfa)" = "$libdir" ] || { echo "libdir variable is wrong"; exit 1; }

# The C example of README.md, verbatim, built as README says for a non-default
# prefix: the pkg-config flags plus an rpath to the library directory.
awk '/^```c$/ {on=1; next} /^```$/ {on=0} on' "$GEMFA_SOURCE_ROOT/README.md" > "$tmp/app.c"
[ -s "$tmp/app.c" ] || { echo "README.md has no C example"; exit 1; }
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror "$tmp/app.c" -o "$tmp/app" $(pkg-config --cflags --libs gemfa) \
    -Wl,-rpath,"$(pkg-config --variable=libdir gemfa)"

tiny="$GEMFA_TEST_DATA/tiny-gemma3n"
out=$(env -u LD_LIBRARY_PATH "$tmp/app" "$tiny")
echo "README example: $out"
[ "$out" = "25 layers, 1024 logits per token" ] || { echo "unexpected output: $out"; exit 1; }
# it really uses the installed shared library, found through the rpath
env -u LD_LIBRARY_PATH ldd "$tmp/app" | grep -q "$libdir/libgemfa.so.0" ||
    { echo "the example did not link the installed libgemfa.so.0"; exit 1; }

# The static library with the --static flags (-l:libgemfa.a: -lgemfa would take the .so).
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror "$tmp/app.c" -o "$tmp/app-static" $(pkg-config --cflags gemfa) \
    $(pkg-config --static --libs gemfa | sed 's/-lgemfa\b/-l:libgemfa.a/')
out=$(env -u LD_LIBRARY_PATH "$tmp/app-static" "$tiny")
[ "$out" = "25 layers, 1024 logits per token" ] || { echo "static example: unexpected output: $out"; exit 1; }
if ldd "$tmp/app-static" | grep -q libgemfa; then echo "the static example needs libgemfa.so"; exit 1; fi

# an error goes to stderr with status 1
if env -u LD_LIBRARY_PATH "$tmp/app" /nonexistent 2>"$tmp/err"; then
    echo "loading /nonexistent succeeded"; exit 1
fi
grep -q "GEMFA_ERR_NOT_FOUND" "$tmp/err" || { echo "no error message: $(cat "$tmp/err")"; exit 1; }

# the installed program runs from its prefix without LD_LIBRARY_PATH
env -u LD_LIBRARY_PATH "$cli" --version | grep -q "^gemfa " || { echo "installed gemfa --version failed"; exit 1; }
env -u LD_LIBRARY_PATH "$cli" info -m "$tiny" --json | /usr/bin/python3 -c '
import json, sys
i = json.load(sys.stdin)
assert i["n_layers"] == 25 and i["kv_source"][20:] == [18, 18, 18, 18, 19], i'
echo "install check passed"
