"""`gemfa bench` on the tiny model: the JSON keys of the issue with sane
values (never timing thresholds: the machine is shared), the text report,
and usage errors."""
import json
import os
import subprocess
import unittest

CLI = os.environ["GEMFA_CLI"]
DATA = os.environ["GEMFA_TEST_DATA"]
TINY = os.path.join(DATA, "tiny-gemma3n")
KEYS = ["load_s", "prompt_tok_s", "decode_tok_s", "batch_tok_s", "peak_rss_mb",
        "bytes_per_token", "bandwidth_gbps", "roofline_fraction"]


def gemfa(*args):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def bench_json(*args):
    rc, out, err = gemfa("bench", "-m", TINY, "-t", "2", "--bw-mb", "64", "--json", *args)
    assert rc == 0, err
    return json.loads(out)


def tiny_bytes_per_token(weights_bytes_per_param, position):
    """Bytes one decode step reads, from the tiny config (independent of the
    C code): every matrix once (LM head = embed_tokens, tied), the two rows
    gathered (the per-layer table always as stored: bf16), and the
    keys/values (f32) the layers attend over at `position`."""
    with open(os.path.join(TINY, "config.json")) as f:
        c = json.load(f)
    t = c.get("text_config", c)
    H, L, P = t["hidden_size"], t["num_hidden_layers"], t["hidden_size_per_layer_input"]
    d, nh, nkv = t["head_dim"], t["num_attention_heads"], t["num_key_value_heads"]
    K, r, V = t["altup_num_inputs"], t["laurel_rank"], t["vocab_size"]
    F = t["intermediate_size"]
    F = F if isinstance(F, list) else [F] * L
    W, shared = t["sliding_window"], t["num_kv_shared_layers"]
    types = t["layer_types"]
    params = L * P * H + V * H + 2 * (K - 1) * H * H  # per-layer proj, LM head, altup
    for l in range(L):
        kv = 2 * nkv * d * H if l < L - shared else 0
        params += nh * d * H * 2 + kv + 3 * F[l] * H + K * H + 2 * r * H + 2 * P * H
    keys = sum(min(position + 1, W) if types[l] == "sliding_attention" else position + 1
               for l in range(L))
    return (params * weights_bytes_per_param + H * weights_bytes_per_param + L * P * 2
            + keys * 2 * nkv * d * 4)


class Json(unittest.TestCase):
    def test_long_forms_set_the_counts(self):
        r = bench_json("--prompt-tokens", "6", "--decode-tokens", "3", "--batch", "0",
                       "--threads", "1")
        self.assertEqual((r["prompt_tokens"], r["decode_tokens"], r["threads"]), (6, 3, 1))

    def test_keys_and_values(self):
        r = bench_json("-p", "16", "-n", "8", "--batch", "3")
        for k in KEYS:
            self.assertIn(k, r)
            self.assertIsInstance(r[k], (int, float), k)
        for k in ["prompt_tok_s", "decode_tok_s", "batch_tok_s", "bandwidth_gbps",
                  "roofline_fraction", "peak_rss_mb"]:
            self.assertGreater(r[k], 0, k)
        self.assertGreaterEqual(r["load_s"], 0)
        self.assertLess(r["peak_rss_mb"], 4096)  # the probe's buffer is not counted
        self.assertEqual((r["prompt_tokens"], r["decode_tokens"], r["batch"]), (16, 8, 3))
        self.assertEqual(r["weights"], "bf16")  # as stored
        # the ceiling and the fraction follow from the other keys
        ceiling = r["bandwidth_gbps"] * 1e9 / r["bytes_per_token"]
        # the printed values are rounded (bandwidth to 0.01 GB/s, the speed to
        # 0.001 tok/s): the check allows for that rounding and no more
        rounding = 0.005 / r["bandwidth_gbps"] + 0.0005 / r["decode_tok_s"]
        self.assertAlmostEqual(r["roofline_fraction"], r["decode_tok_s"] / ceiling,
                               delta=r["roofline_fraction"] * rounding + 1e-4)
        self.assertAlmostEqual(r["batch_speedup"], r["batch_tok_s"] / r["decode_tok_s"], delta=1e-2)

    def test_bytes_per_token_from_the_config(self):
        for weights, per_param in [("bf16", 2), ("f32", 4)]:
            r = bench_json("-p", "16", "-n", "8", "--batch", "0", "--weights", weights)
            self.assertEqual(r["weights"], weights)
            self.assertEqual(r["bytes_per_token"], tiny_bytes_per_token(per_param, 16 + 4))
            self.assertEqual(r["batch_tok_s"], 0)

    def test_depth_and_kv_bytes_from_the_config(self):
        with open(os.path.join(TINY, "config.json")) as f:
            c = json.load(f)
        t = c.get("text_config", c)
        L, shared, W = t["num_hidden_layers"], t["num_kv_shared_layers"], t["sliding_window"]
        d, nkv, types = t["head_dim"], t["num_key_value_heads"], t["layer_types"]
        full_ctx = t["max_position_embeddings"]

        def kv_bytes(elem, ctx):
            # only layers that own a KV cache store one; sliding layers keep
            # a ring of W - 1 + 256 (the context's chunk) slots
            slots = sum(min(W - 1 + 256, ctx) if types[l] == "sliding_attention" else ctx
                        for l in range(L - shared))
            return elem * 2 * nkv * d * slots

        for kv_type, elem in [("f32", 4), ("f16", 2)]:
            r = bench_json("-p", "16", "-n", "8", "--batch", "2", "--depth", "700",
                           "--kv-type", kv_type, "--repeat", "2")
            self.assertEqual((r["depth"], r["kv_type"]), (700, kv_type))
            self.assertEqual(r["kv_bytes"], kv_bytes(elem, 708))
            self.assertEqual(r["kv_bytes_full_context"], kv_bytes(elem, full_ctx))
            self.assertEqual(r["full_context"], full_ctx)
            f32_kv = tiny_bytes_per_token(2, 700 + 4) - tiny_bytes_per_token(2, -1)
            self.assertEqual(r["bytes_kv"], f32_kv * elem // 4)
            self.assertGreater(r["decode_tok_s"], 0)
            self.assertGreater(r["decode_shallow_tok_s"], 0)
            self.assertGreater(r["long_prompt_tok_s"], 0)
            self.assertAlmostEqual(r["depth_decode_ratio"],
                                   r["decode_tok_s"] / r["decode_shallow_tok_s"], delta=2e-3)
        r = bench_json("-p", "16", "-n", "4", "--batch", "0")
        self.assertEqual((r["depth"], r["kv_type"]), (16, "f32"))
        self.assertEqual((r["decode_shallow_tok_s"], r["long_prompt_tok_s"]), (0, 0))
        r = bench_json("-p", "16", "-n", "4", "--batch", "2", "--depth", "3000", "--zero-fill",
                       "--kv-type", "f16", "--repeat", "2")
        self.assertEqual((r["depth"], r["long_prompt_tok_s"]), (3000, 0))
        self.assertGreater(r["decode_tok_s"], 0)
        self.assertGreater(r["decode_shallow_tok_s"], 0)

    def test_depth_usage(self):
        for args in (["--depth", "3", "-p", "8"], ["--depth", "x"], ["--kv-type", "f8"],
                     ["--depth", "5000"]):
            rc, _, err = gemfa("bench", "-m", TINY, "--bw-mb", "16", *args)
            self.assertEqual(rc, 2, (args, err))

    def test_int8_reads_about_half_of_bf16(self):
        a = bench_json("-p", "8", "-n", "4", "--batch", "0", "--weights", "bf16")
        b = bench_json("-p", "8", "-n", "4", "--batch", "0", "--weights", "int8")
        self.assertEqual(b["weights"], "int8")
        # int8 + one f16 scale per 32 = 1.0625 bytes per weight (KV cache
        # and the matrices int8 cannot hold keep their size)
        ratio = b["bytes_weights"] / a["bytes_weights"]
        self.assertGreater(ratio, 0.5)
        self.assertLess(ratio, 0.6)

    def test_repeat_and_profile(self):
        rc, out, err = gemfa("bench", "-m", TINY, "-t", "1", "--bw-mb", "32", "-p", "4", "-n",
                             "3", "--repeat", "2", "--profile", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["repeat"], 2)
        self.assertIn("profile of 2 prompts", err)
        self.assertIn("profile of 6 decode steps", err)
        self.assertIn("thread-pool runs", err)


class Text(unittest.TestCase):
    def test_report(self):
        rc, out, err = gemfa("bench", "-m", TINY, "--bw-mb", "32", "-p", "8", "-n", "4")
        self.assertEqual(rc, 0, err)
        for word in ["load", "prompt", "decode", "batch", "peak RSS", "ceiling"]:
            self.assertIn(word, out)


class Errors(unittest.TestCase):
    def test_usage(self):
        for args in (["-p", "0"], ["-n", "x"], ["--batch", "-1"], ["--bogus"],
                     ["--weights", "int4"]):
            rc, _, err = gemfa("bench", "-m", TINY, *args)
            self.assertEqual(rc, 2, args)
            self.assertIn(args[1] if args[0] == "--weights" else args[0], err)

    def test_context_too_long(self):
        rc, _, err = gemfa("bench", "-m", TINY, "--bw-mb", "16", "-p", "1000000", "-n", "1")
        self.assertEqual(rc, 2)  # a value out of range is a usage error
        self.assertIn("context length", err)
        self.assertIn("at most 4096", err)  # the tiny model's max_position_embeddings

    def test_out_of_range_counts_name_the_range(self):
        for opt, bad, rng in (("-p", "0", "[1, 1048576]"), ("--prompt-tokens", "2000000", "[1, 1048576]"),
                              ("-n", "0", "[1, 1048576]"), ("--decode-tokens", "-3", "[1, 1048576]"),
                              ("--batch", "257", "[0, 256]"), ("--repeat", "0", "[1, 100]"),
                              ("--bw-mb", "8", "[16, 65536]"), ("-t", "-1", "[0, 1024]"),
                              ("--threads", "1025", "[0, 1024]")):
            rc, _, err = gemfa("bench", "-m", TINY, opt, bad)
            self.assertEqual(rc, 2, (opt, bad, err))
            self.assertIn(rng, err, (opt, bad))

    def test_missing_model(self):
        rc, _, err = gemfa("bench", "-m", "/nonexistent", "--bw-mb", "16")
        self.assertEqual(rc, 1)
        self.assertIn("gemfa", err)

    def test_help(self):
        rc, out, _ = gemfa("bench", "--help")
        self.assertEqual(rc, 0)
        for k in ["-p, --prompt-tokens N", "-n, --decode-tokens N", "--batch", "--weights",
                  "-m, --model DIR", "-t, --threads N"]:
            self.assertIn(k, out)


if __name__ == "__main__":
    unittest.main()
