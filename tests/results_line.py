#!/usr/bin/python3
"""results_line.py SUITE TESTLOG.json [EXTRA_PASSED EXTRA_FAILED]

Prints 'SUITE passed failed' for one meson testlog.json, counted as
tests/summarize.py counts it (TAP cases, else one per test), plus optional
extra counts; the sanitizer/fuzz/valgrind runners write this line into
$BUILD/test-results/<suite>.txt for dev.sh's summary."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summarize  # noqa: E402


def main(argv):
    suite, log = argv[1], argv[2]
    passed, failed = summarize.meson_counts(log) if os.path.exists(log) else (0, 1)
    if len(argv) > 4:
        passed += int(argv[3])
        failed += int(argv[4])
    print(f"{suite} {passed} {failed}")


if __name__ == "__main__":
    main(sys.argv)
