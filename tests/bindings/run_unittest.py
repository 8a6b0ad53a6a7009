#!/usr/bin/python3
"""Runs a unittest suite and writes 'SUITE passed failed' to a result file.

Usage: run_unittest.py SUITE RESULT_FILE TEST_DIR

A test method counts once: it fails if it or any of its subtests failed or
errored.  Module import errors count as failures.  Exit status 1 on any
failure, so callers can fail the run."""
import sys
import unittest


class CountingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failed_ids = set()
        self.all_ids = set()

    def startTest(self, test):
        self.all_ids.add(test.id())
        super().startTest(test)

    def addFailure(self, test, err):
        self.failed_ids.add(test.id())
        super().addFailure(test, err)

    def addError(self, test, err):
        self.failed_ids.add(getattr(test, "id", lambda: str(test))())
        super().addError(test, err)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self.failed_ids.add(test.id())
        super().addSubTest(test, subtest, err)

    def addUnexpectedSuccess(self, test):
        self.failed_ids.add(test.id())
        super().addUnexpectedSuccess(test)


def main(argv):
    suite_name, result_file, test_dir = argv[1:4]
    suite = unittest.defaultTestLoader.discover(test_dir, top_level_dir=test_dir)
    runner = unittest.TextTestRunner(verbosity=1, resultclass=CountingResult)
    result = runner.run(suite)
    skipped = {t.id() for t, _ in result.skipped}
    failed = len(result.failed_ids)
    passed = len(result.all_ids - result.failed_ids - skipped)
    with open(result_file, "a") as f:
        f.write(f"{suite_name} {passed} {failed}\n")
    print(f"{suite_name}: {passed} passed, {failed} failed, {len(skipped)} skipped")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
