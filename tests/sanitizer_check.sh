#!/usr/bin/env bash
# sanitizer_check.sh PROGRAM [ARGS...] — the `meson test --wrapper` of the
# sanitizer builds.  Runs PROGRAM, passes its output through, and fails
# (one extra TAP line 'not ok - sanitizer report', exit 1) when its stderr
# holds a sanitizer report.
#
# Why: Criterion runs each test in a forked child and reads the result over a
# pipe before the child exits, so a LeakSanitizer report printed at the
# child's exit (exit status 23) is lost and the test still passes.  ASan,
# UBSan (-fno-sanitize-recover) and TSan (halt_on_error) errors abort the
# child and fail the test already; this check is the backstop for them too.
set -uo pipefail
err=$(mktemp "${TMPDIR:-/tmp}/gemfa-sanitizer-XXXXXX")
trap 'rm -f "$err"' EXIT
# through a pipe: Criterion opens /dev/stdout itself, which on a regular
# file would start again at offset 0 and overwrite what comes after
"$@" 2>"$err" | cat
rc=$?
cat "$err" >&2
pattern='ERROR: (LeakSanitizer|AddressSanitizer)|WARNING: ThreadSanitizer|runtime error: |ERROR: UndefinedBehaviorSanitizer'
if grep -Eq "$pattern" "$err"; then
    first=$(grep -Em1 "$pattern" "$err")
    echo "not ok - sanitizer report: ${first}"
    echo "sanitizer_check.sh: $(basename "$1"): ${first}" >&2
    exit 1
fi
exit $rc
