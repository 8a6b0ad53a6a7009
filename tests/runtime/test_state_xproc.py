#!/usr/bin/python3
"""test_state_xproc.py — a session saved by one process and restored by
another continues with bit-identical logits (tests/runtime/state_tool.c).
Usage: test_state_xproc.py STATE_TOOL (data from $GEMFA_TEST_DATA)."""
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = sys.argv.pop(1) if len(sys.argv) > 1 else None
DATA = os.environ.get("GEMFA_TEST_DATA", os.path.join(os.path.dirname(__file__), "..", "data"))
IDS = os.path.join(DATA, "runtime", "long300.ids.txt")


def tool(*args, weights=None, check=True):
    env = dict(os.environ)
    if weights:
        env["GEMFA_TEST_WEIGHTS"] = weights
    return subprocess.run([TOOL, *map(str, args)], env=env, capture_output=True, text=True,
                          check=check, timeout=300)


class CrossProcess(unittest.TestCase):
    def roundtrip(self, model, n, weights=None):
        model = os.path.join(DATA, model)
        with tempfile.TemporaryDirectory() as d:
            state, a, b = (os.path.join(d, x) for x in ("state", "a.f32", "b.f32"))
            tool("run", model, IDS, n, state, a, weights=weights)
            tool("resume", model, IDS, n, state, b, weights=weights)
            with open(a, "rb") as fa, open(b, "rb") as fb:
                la, lb = fa.read(), fb.read()
            self.assertGreater(len(la), 0)
            self.assertEqual(len(la), len(lb))
            self.assertTrue(la == lb, f"{model} n={n}: logits differ across processes")

    def test_tiny_short(self):
        self.roundtrip("tiny-gemma3n", 9, "f32")

    def test_tiny_ring_wrapped(self):
        self.roundtrip("tiny-gemma3n", 280, "f32")

    def test_tiny10_int8(self):
        self.roundtrip(os.path.join("runtime", "tiny10-s1"), 150, "int8")

    def test_tiny10_as_stored_empty_session(self):
        self.roundtrip(os.path.join("runtime", "tiny10-s1"), 0)

    def test_other_model_rejected(self):
        with tempfile.TemporaryDirectory() as d:
            state, out = os.path.join(d, "state"), os.path.join(d, "out")
            tool("run", os.path.join(DATA, "tiny-gemma3n"), IDS, 5, state, out)
            r = tool("resume", os.path.join(DATA, "runtime", "tiny10-s1"), IDS, 5, state, out,
                     check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("GEMFA_ERR_MODEL_MISMATCH", r.stderr)
            # the same checkpoint with other weights kept
            r = tool("resume", os.path.join(DATA, "tiny-gemma3n"), IDS, 5, state, out,
                     weights="int8", check=False)
            self.assertIn("GEMFA_ERR_MODEL_MISMATCH", r.stderr)


if __name__ == "__main__":
    unittest.main()
