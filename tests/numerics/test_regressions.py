#!/usr/bin/python3
"""test_regressions.py - the worst sequences of the f32 accuracy sweep
(tests/numerics/sweep.py, issue 12), kept with their float64 reference logits
in tests/data/numerics/cases.json: at every kernel level this CPU runs,
`gemfa logits --all --weights f32` must stay within the bound libgemfa
guarantees at the stored positions,

    max |gemfa - ref64| <= 3 e_env + 2e-3

(e_env: the worst of the float32 reference and its peers summing in other
orders, over the same positions; docs/numerics.md).  Checkpoints that are not
fixtures are generated with tests/tools/make_tiny_gemma3n.py into a temporary
folder; if numpy's generator no longer reproduces them (sha256 differs) the
case is skipped, not failed."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

CLI = os.environ["GEMFA_CLI"]
DATA = os.environ["GEMFA_TEST_DATA"]
ROOT = os.environ.get("GEMFA_SOURCE_ROOT", os.path.dirname(os.path.dirname(DATA)))
CASES = os.path.join(DATA, "numerics")
GENERATOR = os.path.join(ROOT, "tests", "tools", "make_tiny_gemma3n.py")
LEVELS = ("scalar", "avx2", "avx512")  # never raised above the CPU's level


def load_cases():
    with open(os.path.join(CASES, "cases.json")) as f:
        return json.load(f)["cases"]


class Regressions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.models = {}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def model_for(self, case):
        if "model" in case:
            return os.path.join(DATA, case["model"])
        key = case["generate"]
        if key not in self.models:
            out = os.path.join(self.tmp.name, "m%d" % len(self.models))
            subprocess.run([sys.executable, GENERATOR, "--out", out] + key.split(), check=True,
                           stdout=subprocess.DEVNULL)
            self.models[key] = out
        out = self.models[key]
        for fn, want in case["sha256"].items():
            with open(os.path.join(out, fn), "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != want:
                    self.skipTest("generator output of %s changed (numpy version?)" % fn)
        return out

    def check(self, case):
        model = self.model_for(case)
        pos = case["positions"]
        want = np.fromfile(os.path.join(CASES, case["logits_file"]), "<f4")
        want = want.reshape(len(pos), -1).astype(np.float64)
        bound = 3 * case["e_env"] + 2e-3
        for lv in LEVELS:
            p = subprocess.run(
                [CLI, "logits", "-m", model, "--tokens", ",".join(map(str, case["ids"])),
                 "--all", "--weights", "f32", "-t", "1", "-o", "-"],
                env=dict(os.environ, GEMFA_KERNEL_LEVEL=lv), capture_output=True)
            self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
            got = np.frombuffer(p.stdout, "<f4").reshape(len(case["ids"]), -1)[pos]
            err = float(np.abs(got - want).max())
            self.assertLessEqual(err, bound, "%s at %s: max |gemfa - ref64| = %.3e > "
                                 "3 e_env + 2e-3 = %.3e" % (case["name"], lv, err, bound))


def _add_cases():
    """One test method per stored case (one TAP line each)."""
    for case in load_cases():
        name = "test_" + case["name"].replace("-", "_").replace(".", "_")
        setattr(Regressions, name, lambda self, c=case: self.check(c))


_add_cases()


if __name__ == "__main__":
    unittest.main()
