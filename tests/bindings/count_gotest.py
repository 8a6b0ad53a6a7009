#!/usr/bin/python3
"""Reads `go test -json` events on stdin, echoes the test output, and appends
'SUITE passed failed' to a result file.  Top-level tests count once (their
subtests decide through them); a package that fails to build counts as one
failure.  Exit status 1 on any failure."""
import json
import sys


def main(argv):
    suite_name, result_file = argv[1:3]
    status = {}
    pkg_fail = 0
    for line in sys.stdin:
        try:
            ev = json.loads(line)
        except ValueError:
            sys.stdout.write(line)  # build errors are plain text
            continue
        out = ev.get("Output")
        if out:
            sys.stdout.write(out)
        test, action = ev.get("Test"), ev.get("Action")
        if action not in ("pass", "fail", "skip"):
            continue
        if test is None:
            if action == "fail":
                pkg_fail += 1
            continue
        if "/" not in test:
            status[(ev.get("Package"), test)] = action
    passed = sum(1 for a in status.values() if a == "pass")
    failed = sum(1 for a in status.values() if a == "fail")
    if failed == 0 and (pkg_fail or passed == 0):
        # a build failure, a panic outside tests, or no test ran at all
        failed = max(pkg_fail, 1)
    with open(result_file, "a") as f:
        f.write(f"{suite_name} {passed} {failed}\n")
    print(f"{suite_name}: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
