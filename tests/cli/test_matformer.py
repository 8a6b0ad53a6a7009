"""`gemfa --matformer SPEC` against checkpoints sliced in numpy
(tests/tools/slice_gemma3n.py): on the full checkpoint it gives the logits
gemfa gives on the sliced one (bit for bit) and those of the numpy reference
(tests/tools/gemma3n_ref.py) on the sliced one within the golden tolerance.
Fixtures: tiny (25 layers, KV sharing from 20) and a generated tiny10 (10
layers, 6-8 read layer 5, 9 reads 4), with skips before and inside the
KV-shared range and per-layer widths; `gemfa info` shows the slicing; bad
specs fail with clear messages."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

CLI = os.environ["GEMFA_CLI"]
DATA = os.environ["GEMFA_TEST_DATA"]
TOOLS = os.path.join(os.environ["GEMFA_SOURCE_ROOT"], "tests", "tools")
PY = "/usr/bin/python3"
TINY = os.path.join(DATA, "tiny-gemma3n")
IDS = "2,6,475,8,617,105,33,900,17,44"
TOL = 1e-2  # the golden tolerance (tests/runtime/rt_helpers.h RT_LOGITS_TOL)


def run(*args, timeout=120):
    p = subprocess.run(list(args), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def ok(*args):
    rc, out, err = run(*args)
    assert rc == 0, "%s: %s" % (" ".join(args), err)
    return out


class Slicing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gemfa-matformer-")
        cls.tiny10 = os.path.join(cls.tmp, "tiny10")
        ok(PY, os.path.join(TOOLS, "make_tiny_gemma3n.py"), "--preset", "tiny10", "--seed", "3",
           "--out", cls.tiny10)
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def path(self, name):
        Slicing.n += 1
        return os.path.join(self.tmp, "%s-%d" % (name, Slicing.n))

    def logits(self, model, *extra):
        out = self.path("logits.bin")
        ok(CLI, "logits", "-m", model, "--all", "--tokens", IDS, "-o", out, *extra)
        return np.fromfile(out, "<f4")

    def check(self, model, spec, weights="auto"):
        sliced = self.path("sliced")
        ok(PY, os.path.join(TOOLS, "slice_gemma3n.py"), "--spec", spec, model, sliced)
        w = ("--weights", weights)
        on_full = self.logits(model, "--matformer", spec, *w)
        on_sliced = self.logits(sliced, *w)
        self.assertEqual(on_full.shape, on_sliced.shape)
        self.assertEqual(float(np.abs(on_full - on_sliced).max()), 0.0,
                         "%s: --matformer on the full checkpoint vs the sliced checkpoint" % spec)
        if weights == "int8":  # quantized: the float reference does not apply
            return sliced
        ref = self.path("ref.bin")
        ok(PY, os.path.join(TOOLS, "gemma3n_ref.py"), "run", sliced, "--tokens", IDS,
           "--logits-bin", ref)
        want = np.fromfile(ref, "<f4")
        d = float(np.abs(on_full - want).max())
        self.assertLess(d, TOL, "%s: gemfa vs the numpy reference on the sliced checkpoint" % spec)
        full = self.logits(model, *w)
        self.assertGreater(float(np.abs(full - on_full).max()), 1e-3, "the slice changes nothing")
        return sliced

    def test_tiny_narrow_and_skip_shared(self):
        self.check(TINY, "ffn=64:skip=3,21")

    def test_tiny_skip_every_shared_layer(self):
        self.check(TINY, "skip=20,21,22,23,24")

    def test_tiny_f32(self):
        self.check(TINY, "ffn=40", weights="f32")

    def test_tiny_int8(self):
        # blocks of 32 along down_proj's input: slicing at a multiple of 32 keeps them
        self.check(TINY, "ffn=96:skip=3,21", weights="int8")

    def test_tiny10_per_layer_widths(self):
        # kept: 0 2 3 4 5 6 8 (1 before sharing, 7 and 9 shared: 9 is the only full reader of 4)
        self.check(self.tiny10, "ffn=128,96,64,32,128,16,64:skip=1,7,9")

    def test_tiny10_skip_sources_refused(self):
        for spec, source in (("skip=5", 5), ("skip=4", 4), ("ffn=64:skip=2,5", 5)):
            rc, _, err = run(CLI, "info", "-m", self.tiny10, "--matformer", spec)
            self.assertEqual(rc, 1, spec)
            self.assertIn("layer %d cannot be skipped" % source, err)

    def test_info(self):
        d = json.loads(ok(CLI, "info", "--json", "--matformer", "ffn=64:skip=3,21"))
        self.assertEqual(d["matformer"], "ffn=64:skip=3,21")
        self.assertEqual(d["n_layers"], 23)
        self.assertEqual(d["base_layers"], 25)
        self.assertEqual(d["skipped_layers"], [3, 21])
        self.assertEqual(d["ffn_width"], [64] * 23)
        self.assertEqual(d["n_kv_shared_layers"], 4)
        whole = json.loads(ok(CLI, "info", "--json"))
        self.assertIsNone(whole["matformer"])
        self.assertEqual(whole["skipped_layers"], [])
        self.assertLess(d["weight_bytes"], whole["weight_bytes"])
        text = ok(CLI, "info", "--matformer", "ffn=64:skip=3,21")
        self.assertIn("matformer      ffn=64:skip=3,21: 23 of 25 layers, skipped 3 21", text)
        self.assertIn("FFN widths     64 from layer 0", text)

    def test_bench(self):
        args = ("bench", "-p", "4", "-n", "4", "--batch", "0", "--json")
        sub = json.loads(ok(CLI, *args, "--matformer", "ffn=64:skip=3,21"))
        whole = json.loads(ok(CLI, *args))
        self.assertEqual(sub["matformer"], "ffn=64:skip=3,21")
        self.assertNotIn("matformer", whole)
        self.assertLess(sub["bytes_per_token"], whole["bytes_per_token"])
        self.assertGreater(sub["decode_tok_s"], 0)

    def test_bad_specs(self):
        cases = [
            ("e2b", "E4B-style checkpoint"),
            ("ffn=129", "expected 1..128"),
            ("ffn=0", "expected 1..128"),
            ("ffn=64,64", "2 widths for 25 kept layers"),
            ("skip=25", "the model has layers 0..24"),
            ("skip=18", "layer 18 cannot be skipped"),
            ("ffn=64:skip=3,3", "listed twice"),
            ("garbage", "not a preset"),
            ("ffn=6 4", "unexpected character"),
        ]
        for spec, msg in cases:
            rc, _, err = run(CLI, "logits", "--tokens", "2", "-o", os.devnull, "--matformer", spec)
            self.assertEqual(rc, 1, spec)
            self.assertIn(msg, err, spec)
        rc, _, err = run(CLI, "info", "--matformer", "ffn=48", "--weights", "int8")
        self.assertEqual(rc, 1)
        self.assertIn("multiple of 32", err)
        rc, _, err = run(CLI, "info", "--matformer")
        self.assertEqual(rc, 2, err)


if __name__ == "__main__":
    unittest.main()
