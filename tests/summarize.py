#!/usr/bin/python3
"""Sums test results over all suites and prints one line: 'N passed, N failed'.

Inputs: meson's testlog.json (TAP tests count each case; other tests count
once) and any number of 'suite passed failed' lines in extra result files
(written by the Python, Go and fuzz runners)."""
import json
import re
import sys


def meson_counts(path):
    passed = failed = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            t = json.loads(line)
            out = t.get("stdout") or ""
            oks = len(re.findall(r"^ok\b", out, re.M))
            noks = len(re.findall(r"^not ok\b", out, re.M))
            if oks or noks:
                passed += oks
                failed += noks
                # a crash or timeout after some cases still counts as a failure
                if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and noks == 0:
                    failed += 1
            elif t["result"] in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif t["result"] != "SKIP":
                failed += 1
    return passed, failed


def main(argv):
    passed = failed = 0
    for path in argv[1:]:
        if path.endswith(".json"):
            p, f = meson_counts(path)
        else:
            p = f = 0
            with open(path) as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) == 3:
                        p += int(parts[1])
                        f += int(parts[2])
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
