#!/bin/sh
# setup_builddir.sh DIR TESTS [MESON_SETUP_ARGS...]
#
# Makes DIR a meson build directory whose `tests` option is TESTS (enabled,
# disabled or auto; empty: whatever DIR has, auto for a new one).
# - DIR without build.ninja: `meson setup DIR -Dtests=TESTS MESON_SETUP_ARGS...`.
# - DIR already set up: its other options are kept; when `tests` differs it is
#   changed with `meson setup --reconfigure` (not `meson configure`, which
#   fails on a directory made while `tests` was still a boolean option).
# Used by dev.sh and tests/run_*.sh, so an old build directory never silently
# runs without its tests.
set -eu
dir=$1
want=$2
shift 2
if [ ! -f "$dir/build.ninja" ]; then
    if [ -n "$want" ]; then
        exec meson setup "$dir" "-Dtests=$want" "$@"
    fi
    exec meson setup "$dir" "$@"
fi
[ -n "$want" ] || exit 0
have=$(meson introspect "$dir" --buildoptions | python3 -c '
import json, sys
print(next((str(o["value"]).lower() for o in json.load(sys.stdin) if o["name"] == "tests"), ""))')
if [ "$have" != "$want" ]; then
    echo "setup_builddir.sh: $dir has tests=$have, reconfiguring with tests=$want" >&2
    meson setup --reconfigure "$dir" "-Dtests=$want" >/dev/null
fi
