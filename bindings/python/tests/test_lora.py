"""Model(lora=...): PEFT LoRA adapters merged at load (docs/lora.md).  The
adapter and its numpy-merged checkpoint come from tests/tools/make_lora.py
(run with /usr/bin/python3, which has numpy); the logits of the --lora load
equal those of the merged copy bit for bit."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import unittest

import gemfa

from support import SOURCE_ROOT, TINY

MAKE_LORA = os.path.join(SOURCE_ROOT, "tests", "tools", "make_lora.py")
IDS = [2, 6, 475, 8, 617]


def has_numpy() -> bool:
    try:
        return subprocess.run(["/usr/bin/python3", "-c", "import numpy"],
                              capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


@unittest.skipUnless(os.path.exists(MAKE_LORA) and has_numpy(), "needs make_lora.py and numpy")
class TestLora(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gemfa-py-lora-")
        cls.adapter = os.path.join(cls.tmp, "adapter")
        cls.merged = os.path.join(cls.tmp, "merged")
        tool = ["/usr/bin/python3", MAKE_LORA]
        subprocess.run(tool + ["make", TINY, "--out", cls.adapter, "--rank", "4", "--rslora"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run(tool + ["merge", TINY, "--out", cls.merged, cls.adapter + ":0.25"],
                       check=True, capture_output=True, timeout=120)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def logits(self, path, **kw):
        with gemfa.Model(path, weights="f32", **kw) as m:
            with m.session() as s:
                s.decode(IDS)
                return [float(x) for x in s.logits], m

    def test_same_logits_as_merged_checkpoint(self):
        got, _ = self.logits(TINY, lora=[(self.adapter, 0.25)])
        want, _ = self.logits(self.merged)
        base, _ = self.logits(TINY)
        self.assertEqual(got, want)
        self.assertNotEqual(got, base)

    def test_forms_and_counts(self):
        with gemfa.Model(TINY, lora=self.adapter) as m:
            self.assertEqual(m.lora_adapters, 1)
            self.assertEqual(m.lora_matrices, 25 * 7 - 10)
            self.assertEqual(m.info()["lora_adapters"], 1)
        with gemfa.Model(TINY, lora=[self.adapter, (self.adapter, -1)]) as m:
            self.assertEqual(m.lora_adapters, 2)
        with gemfa.Model(TINY, lora=(self.adapter, 0.5)) as m:
            self.assertEqual(m.lora_adapters, 1)
        with gemfa.Model(TINY) as m:
            self.assertEqual(m.lora_adapters, 0)

    def test_errors(self):
        with self.assertRaises(TypeError):
            gemfa.Model(TINY, lora=[(self.adapter, "1")])
        with self.assertRaises(TypeError):
            gemfa.Model(TINY, lora=[(self.adapter, 1, 2)])
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.Model(TINY, lora=[(self.adapter, math.nan)])
        with self.assertRaises(gemfa.NotFoundError):
            gemfa.Model(TINY, lora=os.path.join(self.tmp, "missing"))
        bad = os.path.join(self.tmp, "bad")
        shutil.copytree(self.adapter, bad, dirs_exist_ok=True)
        with open(os.path.join(bad, "adapter_config.json"), "w") as f:
            f.write('{"r": 0}')
        with self.assertRaises(gemfa.ConfigError):
            gemfa.Model(TINY, lora=bad)


if __name__ == "__main__":
    unittest.main()
