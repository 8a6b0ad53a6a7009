#!/usr/bin/env bash
# run_bindings.sh — the Python and Go binding suites, the way their users run them.
#
#   tests/bindings/run_bindings.sh [BUILD_DIR] [python|go|all]
#
# 1. Installs the library built in BUILD_DIR (default: build) with
#    `meson install --destdir` into a temporary prefix and points gemfa.pc's
#    prefix at it (a relocated install; every path in the .pc is ${prefix}-relative).
# 2. Python: creates `python3 -m venv --system-site-packages`, installs
#    bindings/python with `pip install --no-build-isolation --no-index`
#    (offline, Debian's setuptools), runs the unittest suite with the installed
#    package and the library found through LD_LIBRARY_PATH, then runs the
#    example with plain PYTHONPATH use.
# 3. Go: `go vet ./...` and `go test ./...` in bindings/go (the module; the
#    package is bindings/go/gemfa) with PKG_CONFIG_PATH
#    and LD_LIBRARY_PATH pointing at the prefix (no module downloads), then
#    builds and runs the example.
# Writes BUILD_DIR/test-results/python.txt and go.txt ('suite passed failed')
# and exits 1 when anything failed.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
WHAT=${2:-all}
PY=/usr/bin/python3
RESULTS="$BUILD/test-results"
mkdir -p "$RESULTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gemfa-bindings.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
rc=0

# -- install into a temporary prefix -------------------------------------------------
DEST="$TMP/dest"
if ! meson install -C "$BUILD" --destdir "$DEST" --quiet >"$TMP/install.log" 2>&1; then
    cat "$TMP/install.log" >&2
    echo "run_bindings: meson install failed" >&2
    [ "$WHAT" != go ] && echo "python 0 1" >"$RESULTS/python.txt"
    [ "$WHAT" != python ] && echo "go 0 1" >"$RESULTS/go.txt"
    exit 1
fi
PC=$(find "$DEST" -name gemfa.pc | head -n1)
PREFIX_IN_PC=$(sed -n 's/^prefix=//p' "$PC")
PREFIX="$DEST$PREFIX_IN_PC"
sed -i "s|^prefix=.*|prefix=$PREFIX|" "$PC"
PCDIR=$(dirname "$PC")
LIBDIR=$(dirname "$PCDIR")
export GEMFA_TEST_DATA="$SRC/tests/data" GEMFA_SOURCE_ROOT="$SRC" OPENBLAS_NUM_THREADS=1
unset GEMFA_LIBRARY
echo "run_bindings: libgemfa installed under $PREFIX"

# -- Python ----------------------------------------------------------------------------
run_python() (
    local out="$RESULTS/python.txt"
    rm -f "$out"
    local venv="$TMP/venv"
    cp -r "$SRC/bindings/python" "$TMP/pysrc"   # pip builds in-tree: keep the source clean
    rm -rf "$TMP/pysrc/build" "$TMP/pysrc"/*.egg-info
    if ! "$PY" -m venv --system-site-packages "$venv" ||
       ! "$venv/bin/pip" install --quiet --no-build-isolation --no-index "$TMP/pysrc"; then
        echo "run_bindings: the offline venv install of bindings/python failed" >&2
        echo "python-install 0 1" >>"$out"
        return 1
    fi
    local r=0
    # the installed package, the library through the system loader path
    (cd "$TMP" && LD_LIBRARY_PATH="$LIBDIR" "$venv/bin/python" \
        "$SRC/tests/bindings/run_unittest.py" python "$out" "$SRC/bindings/python/tests") || r=1
    # plain PYTHONPATH use with GEMFA_LIBRARY: the example answers with the tiny model
    if (cd "$TMP" && PYTHONPATH="$SRC/bindings/python" GEMFA_LIBRARY="$LIBDIR/libgemfa.so.0" \
        "$PY" "$SRC/bindings/python/examples/chat.py" "$SRC/tests/data/tiny-gemma3n" -w f32 \
        -p "سلام" -n 8 --temperature 0 >"$TMP/py-example.out" 2>&1) &&
       [ -s "$TMP/py-example.out" ]; then
        echo "python-example 1 0" >>"$out"
    else
        cat "$TMP/py-example.out" >&2
        echo "python-example 0 1" >>"$out"
        r=1
    fi
    return $r
)

# -- Go ----------------------------------------------------------------------------------
run_go() (
    local out="$RESULTS/go.txt"
    rm -f "$out"
    if ! command -v go >/dev/null; then
        echo "run_bindings: go is not installed" >&2
        echo "go 0 1" >>"$out"
        return 1
    fi
    export PKG_CONFIG_PATH="$PCDIR" LD_LIBRARY_PATH="$LIBDIR" GOFLAGS=-mod=mod GOPROXY=off
    # A private build cache: Go's cache key ignores pkg-config output and C
    # headers outside the package, so a shared cache could link against an old
    # prefix or an old gemfa.h.  The standard library is precompiled by Debian.
    export GOCACHE="$TMP/gocache"
    local r=0
    cd "$SRC/bindings/go" || return 1
    if go vet ./...; then
        echo "go-vet 1 0" >>"$out"
    else
        echo "go-vet 0 1" >>"$out"
        r=1
    fi
    go test -count=1 -json ./... 2>&1 | "$PY" "$SRC/tests/bindings/count_gotest.py" go "$out" || r=1
    if go build -o "$TMP/chat" ./examples/chat &&
       "$TMP/chat" -m "$SRC/tests/data/tiny-gemma3n" -w f32 -p "سلام" -n 8 -temperature 0 \
           >"$TMP/go-example.out" 2>&1 && [ -s "$TMP/go-example.out" ]; then
        echo "go-example 1 0" >>"$out"
    else
        cat "$TMP/go-example.out" >&2 2>/dev/null
        echo "go-example 0 1" >>"$out"
        r=1
    fi
    return $r
)

case "$WHAT" in
    python) run_python || rc=1 ;;
    go) run_go || rc=1 ;;
    all)
        run_python || rc=1
        run_go || rc=1
        ;;
    *) echo "usage: $0 [BUILD_DIR] [python|go|all]" >&2; exit 2 ;;
esac
exit $rc
