#!/usr/bin/python3
"""`gemfa info` as a program: --json output checked against values computed
here from the checkpoint's own files (config.json, safetensors headers),
plus exit codes and messages for errors and usage errors."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

CLI = os.environ["GEMFA_CLI"]
TINY = os.path.join(os.environ["GEMFA_TEST_DATA"], "tiny-gemma3n")


def run(*args):
    p = subprocess.run([CLI, "info", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def headers(model_dir):
    """Every tensor's header entry across the shards of model_dir."""
    out = {}
    with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    for s in shards:
        with open(os.path.join(model_dir, s), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            h = json.loads(f.read(n))
        h.pop("__metadata__", None)
        out.update(h)
    return out


class InfoJson(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rc, out, err = run("-m", TINY, "--json")
        assert rc == 0, err
        cls.info = json.loads(out)
        with open(os.path.join(TINY, "config.json")) as f:
            cls.tc = json.load(f)["text_config"]
        cls.tensors = headers(TINY)

    def test_shape_fields(self):
        tc, i = self.tc, self.info
        self.assertEqual(i["n_layers"], tc["num_hidden_layers"])
        self.assertEqual(i["hidden_size"], tc["hidden_size"])
        self.assertEqual(i["vocab_size"], tc["vocab_size"])
        self.assertEqual(i["n_heads"], tc["num_attention_heads"])
        self.assertEqual(i["n_kv_heads"], tc["num_key_value_heads"])
        self.assertEqual(i["head_dim"], tc["head_dim"])
        self.assertEqual(i["sliding_window"], tc["sliding_window"])
        self.assertEqual(i["context_length"], tc["max_position_embeddings"])
        self.assertEqual(i["ffn_width"], tc["intermediate_size"])
        self.assertEqual(i["activation_sparsity"], tc["activation_sparsity_pattern"])

    def test_layer_types_and_kv_source(self):
        types = ["sliding" if t == "sliding_attention" else "full" for t in self.tc["layer_types"]]
        self.assertEqual(self.info["layer_types"], types)
        # spec section 5, computed independently
        L = self.tc["num_hidden_layers"]
        S = L - self.tc["num_kv_shared_layers"]
        want = [i if i < S else max(j for j in range(S) if types[j] == types[i]) for i in range(L)]
        self.assertEqual(self.info["kv_source"], want)
        self.assertEqual(want[20:], [18, 18, 18, 18, 19])

    def test_params_and_bytes(self):
        text = {k: v for k, v in self.tensors.items() if k.startswith("model.language_model.")}
        n_params = 0
        for v in text.values():
            n = 1
            for d in v["shape"]:
                n *= d
            n_params += n
        self.assertEqual(self.info["n_params"], n_params)
        ple = self.tensors["model.language_model.embed_tokens_per_layer.weight"]["shape"]
        self.assertEqual(self.info["n_params_ple"], ple[0] * ple[1])
        bf16 = sum(v["data_offsets"][1] - v["data_offsets"][0] for v in text.values())
        self.assertEqual(self.info["bytes_by_dtype"], {"bf16": bf16})

    def test_ids_and_type(self):
        with open(os.path.join(TINY, "generation_config.json")) as f:
            gen = json.load(f)
        self.assertEqual(self.info["eog_ids"], gen["eos_token_id"])
        self.assertEqual(self.info["special_ids"]["eos"], gen["eos_token_id"][0])
        self.assertEqual(self.info["special_ids"]["bos"], 2)
        self.assertEqual(self.info["weight_type"], "bf16")
        self.assertIsInstance(self.info["has_tokenizer"], bool)

    def test_weights_option(self):
        rc, out, err = run("-m", TINY, "--json", "--weights", "int8", "-t", "2")
        self.assertEqual(rc, 0, err)
        i = json.loads(out)
        self.assertEqual(i["weight_type"], "int8")
        self.assertLess(i["weight_bytes"], self.info["weight_bytes"])

    def test_human_readable(self):
        rc, out, err = run("-m", TINY)
        self.assertEqual(rc, 0, err)
        self.assertIn("25 (20 sliding, 5 full", out)
        self.assertIn("20->18", out)
        self.assertIn("24->19", out)


class InfoErrors(unittest.TestCase):
    def test_missing_directory(self):
        rc, out, err = run("-m", "/nonexistent/gemfa-model", "--json")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("/nonexistent/gemfa-model", err)
        self.assertIn("GEMFA_ERR_NOT_FOUND", err)

    def test_broken_checkpoint(self):
        with tempfile.TemporaryDirectory() as d:
            for name in os.listdir(TINY):
                if name not in ("config.json", "golden"):
                    os.symlink(os.path.join(TINY, name), os.path.join(d, name))
            with open(os.path.join(d, "config.json"), "w") as f:
                f.write('{"text_config": {"hidden_size": 64,')
            rc, out, err = run("-m", d)
            self.assertEqual(rc, 1)
            self.assertIn("config.json", err)
            self.assertIn("GEMFA_ERR_FORMAT", err)

    def test_usage_errors(self):
        self.assertEqual(run("--frobnicate")[0], 2)
        self.assertEqual(run("-m")[0], 2)
        self.assertEqual(run("--weights", "int4")[0], 2)
        rc, out, _ = run("--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: gemfa info", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
