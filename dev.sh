#!/usr/bin/env bash
# dev.sh — set up a fresh Debian 12 machine, build libgemfa, and run things.
#   ./dev.sh demo   install what the library needs (no test tools), build the gemfa
#                   program, and generate a Persian chat answer with the bundled tiny model
#   ./dev.sh test   install dependencies, build (warnings are errors) and run every
#                   test suite, then the sanitizer, fuzz, valgrind, ABI, aarch64
#                   (cross build + qemu-user) and scalar-only runs (tests/run_*.sh);
#                   ends with one line 'N passed, N failed'
#   ./dev.sh build  install the test dependencies and build only (tests included)
set -euo pipefail
cd "$(dirname "$0")"
BUILD=${GEMFA_BUILD_DIR:-build}

# What the library and the demo need (libfribidi-dev: the optional --bidi display of
# gemfa chat/generate; libmicrohttpd-dev: the optional `gemfa serve`; see
# docs/dependencies.md).
DEMO_PACKAGES="build-essential meson ninja-build pkg-config libopenblas-dev libutf8proc-dev
  libyajl-dev libfribidi-dev libmicrohttpd-dev"
# `test` and `build` (and so CI) install everything below as well.
# The test suites: Criterion, and Python with numpy for the script tests.
TEST_PACKAGES="$DEMO_PACKAGES libcriterion-dev python3 python3-numpy binutils"
# Python and Go bindings (tests/bindings/run_bindings.sh): an offline venv install
# with Debian's setuptools/wheel, and cgo through pkg-config.
TEST_PACKAGES="$TEST_PACKAGES python3-setuptools python3-wheel python3-venv golang-go"
# Reliability runs (tests/run_*.sh): fuzzing (clang, libFuzzer), valgrind, abidiff.
TEST_PACKAGES="$TEST_PACKAGES clang libclang-rt-14-dev valgrind abigail-tools"
# gemfa serve (tests/serve): the chat page in Debian's chromium, replicas behind nginx,
# curl for the SSE framing.
TEST_PACKAGES="$TEST_PACKAGES chromium nginx curl"
# Node.js and npm (tokenizer reference tests) only when the machine has none:
# a nodesource nodejs already bundles npm and conflicts with Debian's npm.
command -v node >/dev/null 2>&1 || TEST_PACKAGES="$TEST_PACKAGES nodejs"
command -v npm >/dev/null 2>&1 || TEST_PACKAGES="$TEST_PACKAGES npm"
# The aarch64 pass (tests/run_aarch64.sh) on x86-64 machines: Debian's cross
# toolchain, qemu-user and the arm64 builds of the libraries (multiarch: setup
# adds the arm64 architecture to dpkg first, for `test` and `build` only).
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
    TEST_PACKAGES="$TEST_PACKAGES crossbuild-essential-arm64 qemu-user-static
      libopenblas-dev:arm64 libutf8proc-dev:arm64 libyajl-dev:arm64"
fi
APT_PACKAGES=$TEST_PACKAGES

need_install() {
    for p in $APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 0
    done
    return 1
}

setup() {
    if need_install; then
        echo "dev.sh: installing Debian packages" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        # :arm64 packages need the architecture known to dpkg before the update
        case "$APT_PACKAGES" in
        *:arm64*)
            dpkg --print-foreign-architectures | grep -qx arm64 ||
                $sudo dpkg --add-architecture arm64
            ;;
        esac
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $APT_PACKAGES >/dev/null
    fi
}

# build TESTS [TARGET...]: TESTS is the meson `tests` feature (enabled for the test
# run, so a missing Criterion fails the setup instead of silently dropping the
# tests; empty for the demo: auto in a new build directory, unchanged in an old one).
build() {
    local tests=$1
    shift
    setup
    tests/setup_builddir.sh "$BUILD" "$tests" --werror >/dev/null
    ninja -C "$BUILD" "$@" >/dev/null
}

run_tests() {
    build enabled
    local results="$BUILD/test-results"
    rm -rf "$results" && mkdir -p "$results"
    local rc=0
    meson test -C "$BUILD" --print-errorlogs --num-processes 2 || rc=1
    # Bindings: installs into a temporary prefix, runs the Python and Go suites,
    # writes $results/python.txt and go.txt; fails the run when they fail.
    tests/bindings/run_bindings.sh "$BUILD" || rc=1
    # Reliability runs (docs/security.md), each in its own build directory,
    # each writing a 'suite passed failed' line into $results:
    tests/run_sanitizers.sh "$BUILD" || rc=1  # ASan+UBSan: every suite; TSan: concurrency
    tests/run_fuzz_smoke.sh "$BUILD" || rc=1  # libFuzzer, ~20 s per target
    tests/run_valgrind.sh "$BUILD" || rc=1    # memcheck: load + generate + free
    tests/run_abi.sh "$BUILD" || rc=1         # abidiff against tests/abi/libgemfa.abi
    tests/run_aarch64.sh "$BUILD" || rc=1     # cross build for ARM64, tests under qemu-user
    tests/run_scalar_only.sh "$BUILD" || rc=1 # -Dsimd=disabled: scalar kernels only
    /usr/bin/python3 tests/summarize.py "$BUILD/meson-logs/testlog.json" $(ls "$results"/*.txt 2>/dev/null) || rc=1
    return $rc
}

case "${1:-}" in
    demo)
        APT_PACKAGES=$DEMO_PACKAGES
        build "" examples/gemfa/gemfa
        # The bundled tiny model has random weights: the answer is nonsense words.
        "$BUILD/examples/gemfa/gemfa" generate --chat -n 48 \
            -p "سلام! لطفاً در مورد تاریخ ایران توضیح کوتاهی بدهید."
        ;;
    test) run_tests ;;
    build) build enabled ;;
    *) echo "usage: ./dev.sh demo|test|build" >&2; exit 2 ;;
esac
