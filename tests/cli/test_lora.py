"""`--lora DIR[:SCALE]` on the tiny model against checkpoints merged in numpy
by tests/tools/make_lora.py: logits bit for bit equal to the merged copy in
f32, bf16 and int8 (the merge rounds as libgemfa does, before conversion),
and within the golden tolerance of tests/tools/gemma3n_ref.py (float64) run
on the merged copy; scale != 1, rslora, two adapters at once, the three
PEFT name prefixes, f32/bf16/f16 adapters.  Then the hostile adapters of
docs/lora.md, one table row each: a clear status, never a crash."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

CLI = os.environ["GEMFA_CLI"]
DATA = os.environ["GEMFA_TEST_DATA"]
TINY = os.path.join(DATA, "tiny-gemma3n")
TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools")
sys.path.insert(0, TOOLS)
import make_lora  # noqa: E402

PY = "/usr/bin/python3"
IDS = "2,6,475,8,617,105,33,900"
GOLDEN_TOL = 1e-2  # as tests/runtime/test_golden.c against the float64 reference
VOCAB = 1024


def gemfa(*args):
    p = subprocess.run([CLI, *args], capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode()


def tool(*args):
    subprocess.run([PY, os.path.join(TOOLS, "make_lora.py"), *args], check=True,
                   capture_output=True, timeout=120)


class Lora(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gemfa-lora-")
        t = lambda *p: os.path.join(cls.tmp, *p)  # noqa: E731
        cls.a1, cls.a2, cls.a3 = t("a1"), t("a2"), t("a3")
        # all projections, f32, the multimodal checkpoint's prefix
        tool("make", TINY, "--out", cls.a1, "--rank", "4", "--alpha", "8", "--seed", "1")
        # rslora, bf16, text-only style names, some projections and layers
        tool("make", TINY, "--out", cls.a2, "--rank", "2", "--alpha", "4", "--rslora",
             "--dtype", "bf16", "--style", "model", "--targets", "q_proj,o_proj,down_proj",
             "--layers", "0,3,7,19,24", "--seed", "2")
        # f16, legacy prefix, target_modules as a regex string
        tool("make", TINY, "--out", cls.a3, "--rank", "8", "--alpha", "16", "--dtype", "f16",
             "--style", "legacy", "--targets", "gate_proj,up_proj,k_proj,v_proj",
             "--target-regex", r".*\.(gate|up|k|v)_proj", "--seed", "3")
        cls.m1, cls.m12, cls.m3 = t("m1"), t("m12"), t("m3")
        tool("merge", TINY, "--out", cls.m1, cls.a1 + ":0.5")
        tool("merge", TINY, "--out", cls.m12, cls.a1 + ":0.5", cls.a2 + ":-2")
        tool("merge", TINY, "--out", cls.m3, cls.a3)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def logits(self, *args):
        out = os.path.join(self.tmp, "l.bin")
        rc, _, err = gemfa("logits", "--tokens", IDS, "--all", "-o", out, "-t", "2", *args)
        self.assertEqual(rc, 0, err)
        return np.fromfile(out, dtype="<f4").reshape(-1, VOCAB)

    def same(self, merged, loras, weights):
        lora_args = [x for a in loras for x in ("--lora", a)]
        got = self.logits("-m", TINY, "--weights", weights, *lora_args)
        want = self.logits("-m", merged, "--weights", weights)
        np.testing.assert_array_equal(got, want, err_msg="%s %s" % (loras, weights))
        return got

    def test_bit_for_bit_with_numpy_merge(self):
        for w in ("f32", "bf16", "int8"):
            self.same(self.m1, [self.a1 + ":0.5"], w)
            self.same(self.m12, [self.a1 + ":0.5", self.a2 + ":-2"], w)
            self.same(self.m3, [self.a3], w)

    def test_adapter_changes_the_output(self):
        base = self.logits("-m", TINY, "--weights", "f32")
        lora = self.logits("-m", TINY, "--weights", "f32", "--lora", self.a1 + ":0.5")
        self.assertGreater(np.max(np.abs(base - lora)), 20 * GOLDEN_TOL)
        zero = self.logits("-m", TINY, "--weights", "f32", "--lora", self.a1 + ":0")
        np.testing.assert_array_equal(base, zero)

    def test_against_reference_on_merged_copy(self):
        got = self.logits("-m", TINY, "--weights", "f32", "--lora", self.a1 + ":0.5",
                          "--lora", self.a2 + ":-2")
        ref_bin = os.path.join(self.tmp, "ref.bin")
        subprocess.run([PY, os.path.join(TOOLS, "gemma3n_ref.py"), "run", self.m12,
                        "--tokens", IDS, "--logits-bin", ref_bin],
                       check=True, capture_output=True, timeout=300)
        ref = np.fromfile(ref_bin, dtype="<f4").reshape(-1, VOCAB)
        self.assertLess(np.max(np.abs(got - ref)), GOLDEN_TOL)
        base = self.logits("-m", TINY, "--weights", "f32")
        self.assertGreater(np.max(np.abs(base - ref)), 20 * GOLDEN_TOL)

    def test_info_counts(self):
        rc, out, err = gemfa("info", "-m", TINY, "--json", "--lora", self.a1, "--lora", self.a2)
        self.assertEqual(rc, 0, err)
        info = json.loads(out)
        # 25 layers x 7 projections, less k/v of the 5 KV-shared layers
        self.assertEqual(info["lora"], {"adapters": 2, "matrices": 25 * 7 - 10})
        rc, out, err = gemfa("info", "-m", TINY, "--json")
        self.assertEqual(json.loads(out)["lora"], {"adapters": 0, "matrices": 0})
        rc, out, err = gemfa("info", "-m", TINY, "--lora", self.a2)
        self.assertIn("LoRA           1 adapters merged into 15 matrices", out.decode())

    def test_scale_after_last_colon_only_if_a_number(self):
        odd = os.path.join(self.tmp, "dir:with:colons")
        if not os.path.exists(odd):
            os.symlink(self.a1, odd)
        a = self.logits("-m", TINY, "--weights", "f32", "--lora", odd)
        b = self.logits("-m", TINY, "--weights", "f32", "--lora", self.a1)
        np.testing.assert_array_equal(a, b)
        a = self.logits("-m", TINY, "--weights", "f32", "--lora", odd + ":0.5")
        b = self.logits("-m", TINY, "--weights", "f32", "--lora", self.a1 + ":5e-1")
        np.testing.assert_array_equal(a, b)
        for bad in (":2", "", self.a1 + ":nan", self.a1 + ":inf", self.a1 + ":1e39"):
            rc, _, err = gemfa("info", "-m", TINY, "--lora", bad)
            self.assertEqual(rc, 2, (bad, err))
        rc, _, err = gemfa("info", "-m", TINY, "--lora")
        self.assertEqual(rc, 2, err)

    def test_every_weight_loading_subcommand(self):
        rc, out, err = gemfa("generate", "-m", TINY, "-n", "3", "--seed", "1", "--lora", self.a1,
                             "-p", "hello")
        self.assertEqual(rc, 0, err)
        rc, out, err = gemfa("bench", "-m", TINY, "--lora", self.a1, "--help")
        self.assertEqual(rc, 0, err)
        self.assertIn("--lora", out.decode())
        rc, _, err = gemfa("generate", "-m", TINY, "-n", "1", "--lora",
                           os.path.join(self.tmp, "nope"), "-p", "hi")
        self.assertEqual(rc, 1)
        self.assertIn("GEMFA_ERR_NOT_FOUND", err)


# ------------------------------------------------------------ hostile input

def slurp(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def spill(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def read_all(path):
    hdr, base = make_lora.read_header(path)
    with open(path, "rb") as f:
        blob = f.read()
    out = []
    for name, e in hdr.items():
        a, b = e["data_offsets"]
        out.append([name, e["dtype"], list(e["shape"]), blob[base + a:base + b]])
    return out


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gemfa-lora-bad-")
        cls.good = os.path.join(cls.tmp, "good")
        tool("make", TINY, "--out", cls.good, "--rank", "4", "--layers", "0,1,24")
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def variant(self, config=None, tensors=None, raw=None):
        """A copy of the good adapter with config edits (dict merged in, or a
        function), tensor edits (a function on the list) or raw file bytes."""
        Hostile.n += 1
        d = os.path.join(self.tmp, "v%d" % Hostile.n)
        shutil.copytree(self.good, d)
        cpath = os.path.join(d, "adapter_config.json")
        wpath = os.path.join(d, "adapter_model.safetensors")
        if config is not None:
            c = json.loads(slurp(cpath))
            if callable(config):
                config(c)
            else:
                c.update(config)
            spill(cpath, json.dumps(c))
        if tensors is not None:
            items = read_all(wpath)
            edited = tensors(items)
            items = items if edited is None else edited
            make_lora.write_safetensors(wpath, [tuple(i) for i in items])
        if raw is not None:
            for name, data in raw.items():
                p = os.path.join(d, name)
                if data is None:
                    os.remove(p)
                else:
                    spill(p, data(slurp(p)))
        return d

    def expect(self, status, d, *extra, model=TINY):
        rc, _, err = gemfa("info", "-m", model, "--lora", d, *extra)
        self.assertEqual(rc, 1, err)  # an error exit, never a signal
        self.assertIn("GEMFA_ERR_" + status, err)
        return err

    def test_table(self):
        q = ".self_attn.q_proj"

        def drop(suffix):
            return lambda items: [i for i in items if not i[0].endswith(suffix)]

        def edit(pred, fn):
            def f(items):
                for i in items:
                    if pred(i[0]):
                        fn(i)
            return f

        def first_a(n):
            return n.endswith("layers.0" + q + ".lora_A.weight")

        def add(name, dtype, shape, data):
            return lambda items: items + [[name, dtype, shape, data]]

        def widen_a(i):  # an adapter for a model with hidden size 128
            i[2] = [4, 128]
            i[3] = bytes(4 * 4 * 128)

        cases = [
            ("bad JSON", "FORMAT", dict(raw={"adapter_config.json": lambda b: b[:-5]})),
            ("config is a list", "FORMAT", dict(raw={"adapter_config.json": lambda b: b"[1]"})),
            ("no config", "NOT_FOUND", dict(raw={"adapter_config.json": None})),
            ("no weights", "NOT_FOUND", dict(raw={"adapter_model.safetensors": None})),
            ("truncated weights", "FORMAT",
             dict(raw={"adapter_model.safetensors": lambda b: b[:len(b) - 100]})),
            ("garbage weights", "FORMAT",
             dict(raw={"adapter_model.safetensors": lambda b: b"\xff" * 64})),
            ("rank 0", "CONFIG", dict(config={"r": 0})),
            ("rank negative", "CONFIG", dict(config={"r": -3})),
            ("rank a string", "CONFIG", dict(config={"r": "4"})),
            ("rank not the tensors'", "CONFIG", dict(config={"r": 8})),
            ("alpha a string", "CONFIG", dict(config={"lora_alpha": "x"})),
            ("alpha overflows float", "CONFIG", dict(config={"lora_alpha": 1e300})),
            ("rslora not a bool", "CONFIG", dict(config={"use_rslora": 3})),
            ("target_modules a number", "CONFIG", dict(config={"target_modules": 5})),
            ("another PEFT method", "UNSUPPORTED", dict(config={"peft_type": "IA3"})),
            ("modules_to_save", "UNSUPPORTED", dict(config={"modules_to_save": ["lm_head"]})),
            ("DoRA", "UNSUPPORTED", dict(config={"use_dora": True})),
            ("rank_pattern", "UNSUPPORTED", dict(config={"rank_pattern": {"q_proj": 2}})),
            ("alpha_pattern", "UNSUPPORTED", dict(config={"alpha_pattern": {"q_proj": 2}})),
            ("unknown target module", "MODEL_MISMATCH",
             dict(config={"target_modules": ["q_proj", "c_attn"]})),
            ("module not in target_modules", "FORMAT",
             dict(config={"target_modules": ["q_proj"]})),
            ("missing B", "TENSOR_MISSING", dict(tensors=drop("layers.1" + q + ".lora_B.weight"))),
            ("missing A", "TENSOR_MISSING",
             dict(tensors=drop("layers.24.mlp.down_proj.lora_A.weight"))),
            ("no tensors", "TENSOR_MISSING", dict(tensors=lambda items: [])),
            ("another hidden size", "MODEL_MISMATCH", dict(tensors=edit(first_a, widen_a))),
            ("A and B ranks differ", "TENSOR_SHAPE",
             dict(tensors=edit(first_a, lambda i: (i.__setitem__(2, [2, 64]),
                                                   i.__setitem__(3, bytes(2 * 64 * 4)))))),
            ("3-D A", "TENSOR_SHAPE",
             dict(tensors=edit(first_a, lambda i: i.__setitem__(2, [4, 8, 8])))),
            ("int8 A", "TENSOR_SHAPE",
             dict(tensors=edit(first_a, lambda i: (i.__setitem__(1, "I8"),
                                                   i.__setitem__(3, bytes(4 * 64)))))),
            ("layer beyond the model", "MODEL_MISMATCH", dict(
                config={"target_modules": "x"},
                tensors=add("base_model.model.model.language_model.layers.99.self_attn.q_proj"
                            ".lora_A.weight", "F32", [4, 64], bytes(4 * 64 * 4)))),
        ]
        a99 = "base_model.model.model.language_model.layers.99.self_attn.q_proj.lora_%s.weight"
        cases[-1][2]["tensors"] = lambda items: items + [
            [a99 % "A", "F32", [4, 64], bytes(4 * 64 * 4)],
            [a99 % "B", "F32", [64, 4], bytes(64 * 4 * 4)]]
        other = "base_model.model.model.layers.0.self_attn.qkv_proj.lora_%s.weight"
        cases.append(("another architecture's module", "MODEL_MISMATCH", dict(
            config={"target_modules": ".*qkv_proj"},
            tensors=lambda items: [[other % "A", "F32", [4, 64], bytes(4 * 64 * 4)],
                                   [other % "B", "F32", [192, 4], bytes(192 * 4 * 4)]])))
        cases.append(("DoRA magnitude tensor", "UNSUPPORTED", dict(tensors=lambda items: items + [[
            "base_model.model.model.language_model.layers.0.self_attn.q_proj"
            ".lora_magnitude_vector", "F32", [64], bytes(256)]])))
        cases.append(("modules_to_save tensor", "UNSUPPORTED", dict(tensors=lambda items: items + [[
            "base_model.model.lm_head.modules_to_save.default.weight", "F32", [4, 4],
            bytes(64)]])))
        lm = "base_model.model.lm_head.lora_%s.weight"
        cases.append(("lm_head tied to the embedding", "UNSUPPORTED", dict(
            config={"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                       "up_proj", "down_proj", "lm_head"]},
            tensors=lambda items: items + [[lm % "A", "F32", [4, 64], bytes(4 * 64 * 4)],
                                           [lm % "B", "F32", [1024, 4], bytes(1024 * 16)]])))

        def twice(items):  # the same module under two prefixes
            extra = [[i[0].replace("model.language_model.", "model."), i[1], i[2], i[3]]
                     for i in items if "layers.0" + q in i[0]]
            return items + extra
        cases.append(("one module under two names", "FORMAT", dict(tensors=twice)))
        for name, status, kw in cases:
            with self.subTest(name):
                self.expect(status, self.variant(**kw))

    def test_pre_quantized_checkpoint(self):
        q8 = os.path.join(self.tmp, "q8")
        rc, _, err = gemfa("quantize", "-m", TINY, "-o", q8, "-t", "2")
        self.assertEqual(rc, 0, err)
        self.expect("UNSUPPORTED", self.good, model=q8)

    def test_fuzzed_configs_never_crash(self):
        """Random edits of adapter_config.json: every run ends in success or
        an error exit with a status (never a signal)."""
        rng = np.random.default_rng(7)
        base = slurp(os.path.join(self.good, "adapter_config.json"))
        d = self.variant()
        cpath = os.path.join(d, "adapter_config.json")
        junk = [b"null", b"0", b"-1", b"1e999", b'"', b"[", b"{", b"}", b"]", b",", b"true",
                b'"q_proj"', b"\x00", b"\xff", b"99999999999999999999"]
        for it in range(60):
            b = bytearray(base)
            for _ in range(int(rng.integers(1, 4))):
                op = int(rng.integers(0, 3))
                pos = int(rng.integers(0, len(b)))
                if op == 0:
                    b[pos] = int(rng.integers(0, 256))
                elif op == 1:
                    del b[pos:pos + int(rng.integers(1, 8))]
                else:
                    b[pos:pos] = junk[int(rng.integers(0, len(junk)))]
            spill(cpath, bytes(b))
            rc, _, err = gemfa("info", "-m", TINY, "--lora", d)
            self.assertIn(rc, (0, 1), err)
            if rc:
                self.assertIn("GEMFA_ERR_", err)


if __name__ == "__main__":
    unittest.main()
