"""Correctness at long range (issue 15): a tiny10-shaped checkpoint generated
here with max_position_embeddings 32768 (tests/tools/make_tiny_gemma3n.py),
16,400 tokens decoded by `gemfa logits` with the f32 and the f16 KV cache,
against the numpy reference run in chunks through its KV cache
(gemma3n_ref.py logits_chunked: no whole score matrix).  The positions
checked lie past the fixtures' 4,096 up to 16,399: RoPE angles at large
positions, sliding rings (W = 8, 263 slots) wrapped ~60 times, full layers
attending over >16k keys in 32 splits.

Bounds: f32 KV within the golden tolerance (1e-2, tests/runtime/rt_helpers.h);
f16 KV within F16_TOL (docs/numerics.md, "KV types").  Takes ~30-60 s, so it
is left out of the sanitizer builds."""
import os
import random
import subprocess
import sys
import tempfile
import unittest

import numpy as np

SRC = os.environ["GEMFA_SOURCE_ROOT"]
CLI = os.environ["GEMFA_CLI"]
sys.path.insert(0, os.path.join(SRC, "tests", "tools"))
import gemma3n_ref  # noqa: E402

N = 16400
CHECK = [4095, 4096, 5000, 8191, 8192, 12000, 16383, 16384, N - 1]
GOLDEN_TOL = 1e-2
F16_TOL = 0.1  # 3x the 0.031 measured (docs/numerics.md, "KV types")


class LongContext(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gemfa-long-")
        cls.model = os.path.join(cls.tmp.name, "tiny10-32k")
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "tools", "make_tiny_gemma3n.py"),
                        "--out", cls.model, "--preset", "tiny10", "--seed", "3", "--text-only",
                        "--single-file", "--max-position-embeddings", "32768"],
                       check=True, capture_output=True)
        r = random.Random(15)
        cls.ids = [2] + [r.randrange(3, 992) for _ in range(N - 1)]
        ref = gemma3n_ref.Gemma3nText(cls.model).logits_chunked(cls.ids, 256, CHECK)
        cls.want = np.stack([ref[p] for p in CHECK])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def logits(self, kv_type):
        out = os.path.join(self.tmp.name, kv_type + ".bin")
        p = subprocess.run([CLI, "logits", "-m", self.model, "-t", "2", "--kv-type", kv_type,
                            "--all", "--tokens", ",".join(map(str, self.ids)), "-o", out],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        lg = np.fromfile(out, "<f4").reshape(N, -1)
        os.unlink(out)
        return lg[CHECK]

    def test_config(self):
        import json
        with open(os.path.join(self.model, "config.json")) as f:
            t = json.load(f)["text_config"]
        self.assertEqual(t["max_position_embeddings"], 32768)

    def test_f32_kv_within_golden_tolerance(self):
        d = np.abs(self.logits("f32") - self.want).max(axis=1)
        print("f32 KV: max |diff| %.3g" % d.max(), file=sys.stderr)
        for p, e in zip(CHECK, d):
            self.assertLessEqual(e, GOLDEN_TOL, "f32 KV, position %d: max |diff| %.3g" % (p, e))

    def test_f16_kv_within_its_bound(self):
        got = self.logits("f16")
        d = np.abs(got - self.want).max(axis=1)
        for p, e in zip(CHECK, d):
            self.assertLessEqual(e, F16_TOL, "f16 KV, position %d: max |diff| %.3g" % (p, e))
        self.assertGreater(d.max(), 0.0, "f16 rounding should show")
        agree = np.mean(got.argmax(axis=1) == self.want.argmax(axis=1))
        print("f16 KV: max |diff| %.3g, top-1 agreement %.2f" % (d.max(), agree), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
