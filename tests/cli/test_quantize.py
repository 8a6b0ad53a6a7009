"""`gemfa quantize` on the tiny model: the quantized directory loads as int8
(mapped), gives the logits of `--weights int8` on the source bit for bit,
keeps the tokenizer, refuses other weight types; usage and error exits."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

CLI = os.environ["GEMFA_CLI"]
DATA = os.environ["GEMFA_TEST_DATA"]
TINY = os.path.join(DATA, "tiny-gemma3n")
IDS = "2,6,475,8,617,105,33,900"


def gemfa(*args):
    p = subprocess.run([CLI, *args], capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode()


class Quantize(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gemfa-quantize-")
        cls.out = os.path.join(cls.tmp, "q8")
        rc, out, err = gemfa("quantize", "-m", TINY, "-o", cls.out, "-t", "2", "--json")
        assert rc == 0, err
        cls.report = json.loads(out)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_report(self):
        r = self.report
        self.assertGreater(r["tensors_quantized"], 0)
        self.assertGreater(r["tensors_copied"], 0)
        self.assertEqual(r["bytes"], os.path.getsize(os.path.join(self.out, "model.safetensors")))

    def test_directory(self):
        names = set(os.listdir(self.out))
        for f in ("config.json", "tokenizer.json", "generation_config.json", "model.safetensors"):
            self.assertIn(f, names)
        self.assertFalse(any(n.endswith(".tmp") or n.endswith(".index.json") for n in names))

    def test_loads_as_int8(self):
        rc, out, err = gemfa("info", "-m", self.out, "--json")
        self.assertEqual(rc, 0, err)
        info = json.loads(out)
        rc, out, err = gemfa("info", "-m", TINY, "--weights", "int8", "--json")
        ref = json.loads(out)
        self.assertEqual(info["weight_type"], "int8")
        self.assertEqual(info["n_params"], ref["n_params"])
        self.assertEqual(info["weight_bytes"], ref["weight_bytes"])

    def test_same_logits_as_int8_at_load(self):
        a = os.path.join(self.tmp, "a.bin")
        b = os.path.join(self.tmp, "b.bin")
        rc, _, err = gemfa("logits", "-m", self.out, "--tokens", IDS, "--all", "-o", a)
        self.assertEqual(rc, 0, err)
        rc, _, err = gemfa("logits", "-m", TINY, "--weights", "int8", "--tokens", IDS, "--all",
                           "-o", b)
        self.assertEqual(rc, 0, err)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            self.assertEqual(fa.read(), fb.read())

    def test_tokenizer_kept(self):
        p = subprocess.run([CLI, "generate", "-m", self.out, "-p", "سلام", "-n", "4", "--temp",
                            "0", "--json"], capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(len(json.loads(p.stdout)["ids"]), 4)

    def test_other_weights_refused(self):
        rc, _, err = gemfa("logits", "-m", self.out, "--weights", "bf16", "--tokens", "2", "-o",
                           os.path.join(self.tmp, "c.bin"))
        self.assertEqual(rc, 1)
        self.assertIn("pre-quantized int8", err)

    def test_quantized_again_refused(self):
        rc, _, err = gemfa("quantize", "-m", self.out, "-o", os.path.join(self.tmp, "again"))
        self.assertEqual(rc, 1)
        self.assertIn("already int8", err)


class Errors(unittest.TestCase):
    def test_usage(self):
        for args in (["-o", "/tmp/x"], ["-m", TINY], ["-m", TINY, "-o", "/tmp/x", "--bogus"],
                     ["-m", TINY, "-o", "/tmp/x", "--weights", "bf16"]):
            rc, _, err = gemfa("quantize", *args)
            self.assertEqual(rc, 2, args)
            self.assertIn("quantize", err)

    def test_missing_source(self):
        with tempfile.TemporaryDirectory() as d:
            rc, _, err = gemfa("quantize", "-m", "/nonexistent-gemfa", "-o", d)
            self.assertEqual(rc, 1)
            self.assertIn("gemfa", err)

    def test_help(self):
        rc, out, _ = gemfa("quantize", "--help")
        self.assertEqual(rc, 0)
        self.assertIn(b"-o DST", out)


if __name__ == "__main__":
    unittest.main()
