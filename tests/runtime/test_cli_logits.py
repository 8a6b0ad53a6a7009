#!/usr/bin/python3
"""test_cli_logits.py - `gemfa logits` against the golden logits of
tests/data/tiny-gemma3n (float64 reference): last position and --all, to a
file and to stdout, plus its usage and error exits."""
import os
import subprocess
import tempfile
import unittest

import numpy as np

CLI = os.environ["GEMFA_CLI"]
DATA = os.environ["GEMFA_TEST_DATA"]
TINY = os.path.join(DATA, "tiny-gemma3n")
GOLDEN = os.path.join(TINY, "golden")
TOL = 1e-2      # golden.json: float32 engines, logits max |diff|
MARGIN = 0.05   # argmax must match where the golden top-2 margin exceeds this


def golden(seq):
    ids = np.fromfile(os.path.join(GOLDEN, seq + ".tokens.i32.bin"), "<i4")
    lg = np.fromfile(os.path.join(GOLDEN, seq + ".logits.f32.bin"), "<f4").reshape(len(ids), -1)
    return ids, lg


def run(*args):
    return subprocess.run([CLI, "logits", "-m", TINY] + list(args), capture_output=True)


class LogitsCli(unittest.TestCase):
    def check(self, got, want):
        self.assertEqual(got.shape, want.shape)
        self.assertLessEqual(float(np.max(np.abs(got - want))), TOL)
        top2 = np.sort(want, axis=-1)[:, -2:]
        sure = top2[:, 1] - top2[:, 0] > MARGIN
        np.testing.assert_array_equal(np.argmax(got, -1)[sure], np.argmax(want, -1)[sure])

    def test_all_positions_to_file(self):
        for seq in ("short", "long"):
            ids, want = golden(seq)
            with tempfile.TemporaryDirectory() as d:
                out = os.path.join(d, "l.bin")
                r = run("--tokens", ",".join(map(str, ids)), "--all", "--weights", "f32",
                        "-o", out)
                self.assertEqual(r.returncode, 0, r.stderr)
                got = np.fromfile(out, "<f4")
            self.assertEqual(got.size, want.size)
            self.check(got.reshape(want.shape), want)

    def test_last_position_to_stdout(self):
        ids, want = golden("long")
        r = run("--tokens", ",".join(map(str, ids)), "-o", "-")  # weights as stored (bf16)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = np.frombuffer(r.stdout, "<f4")
        self.assertEqual(got.size, want.shape[1])
        self.check(got.reshape(1, -1), want[-1:])

    def test_errors(self):
        self.assertEqual(run("--tokens", "2,x", "-o", "-").returncode, 2)
        self.assertEqual(run("--tokens", "2,,3", "-o", "-").returncode, 2)
        self.assertEqual(run("--tokens", "2,5").returncode, 2)          # no -o
        self.assertEqual(run("-o", "-").returncode, 2)                  # no --tokens
        self.assertEqual(run("--tokens", "2", "--bogus", "-o", "-").returncode, 2)
        r = run("--tokens", "2,1024", "-o", "-")                        # outside the vocabulary
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"GEMFA_ERR_INVALID_TOKEN", r.stderr)
        self.assertEqual(r.stdout, b"")
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"--tokens", r.stdout)


if __name__ == "__main__":
    unittest.main()
