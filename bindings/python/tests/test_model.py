"""Loading, properties, options, callbacks and lifetime of gemfa.Model."""
from __future__ import annotations

import errno
import gc
import os
import pathlib
import tempfile
import unittest
import weakref

import gemfa

from support import TINY, config, generation_config, tiny_model


class TestModelInfo(unittest.TestCase):
    def setUp(self):
        self.m = tiny_model()
        self.tc = config()["text_config"]

    def test_properties_match_config(self):
        m, tc = self.m, self.tc
        self.assertEqual(m.vocab_size, tc["vocab_size"])
        self.assertEqual(m.n_layers, tc["num_hidden_layers"])
        self.assertEqual(m.hidden_size, tc["hidden_size"])
        self.assertEqual(m.n_heads, tc["num_attention_heads"])
        self.assertEqual(m.n_kv_heads, tc["num_key_value_heads"])
        self.assertEqual(m.head_dim, tc["head_dim"])
        self.assertEqual(m.sliding_window, tc["sliding_window"])
        self.assertEqual(m.context_length, tc["max_position_embeddings"])
        self.assertEqual(m.get(gemfa.Prop.N_KV_SHARED_LAYERS), tc["num_kv_shared_layers"])
        self.assertTrue(m.has_weights)
        self.assertTrue(m.has_tokenizer)
        self.assertIs(m.weight_type, gemfa.WeightType.F32)
        self.assertGreater(m.n_params, 0)
        self.assertGreater(m.weight_bytes, 0)

    def test_special_ids(self):
        m = self.m
        self.assertEqual(m.bos_id, generation_config()["bos_token_id"])
        self.assertEqual(m.pad_id, generation_config()["pad_token_id"])
        self.assertEqual(m.start_of_turn_id, m.token_id("<start_of_turn>"))
        self.assertEqual(m.end_of_turn_id, m.token_id("<end_of_turn>"))
        self.assertEqual(sorted(m.eog_ids), sorted(generation_config()["eos_token_id"]))
        for tid in m.eog_ids:
            self.assertTrue(m.is_eog(tid))
        self.assertFalse(m.is_eog(m.bos_id))
        self.assertIn(m.eos_id, m.eog_ids)

    def test_info_dict_and_layers(self):
        info = self.m.info()
        self.assertEqual(info["vocab_size"], self.m.vocab_size)
        self.assertEqual(len(info), len(gemfa.Prop))
        layers = self.m.layers
        self.assertEqual(len(layers), self.tc["num_hidden_layers"])
        pattern = self.tc["activation_sparsity_pattern"]
        types = self.tc.get("layer_types")
        for i, layer in enumerate(layers):
            self.assertIsInstance(layer, gemfa.LayerInfo)
            self.assertAlmostEqual(layer.sparsity, pattern[i], places=6)
            if types:
                want = gemfa.LayerType.FULL if types[i] == "full_attention" \
                    else gemfa.LayerType.SLIDING
                self.assertEqual(layer.type, want, f"layer {i}")
            self.assertTrue(0 <= layer.kv_source <= i)

    def test_layer_out_of_range(self):
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.layer(self.m.n_layers)
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.layer(-1)
        with self.assertRaises(TypeError):
            self.m.layer("0")
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.layer(2 ** 32)

    def test_unknown_prop(self):
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.get(9999)

    def test_repr(self):
        self.assertIn("tiny-gemma3n", repr(self.m))


class TestModelLoad(unittest.TestCase):
    def assert_not_found(self, path, missing):
        with self.assertRaises(FileNotFoundError) as cm:
            gemfa.Model(path)
        e = cm.exception
        self.assertIs(type(e), gemfa.NotFoundError)
        self.assertIsInstance(e, gemfa.IoError)  # as 0.1.0 raised for a missing path
        self.assertEqual(e.code, gemfa.Status.NOT_FOUND)
        self.assertEqual(e.errno, errno.ENOENT)
        self.assertEqual(e.filename, missing)
        self.assertIn(missing, e.message)  # the library said what is missing

    def checkpoint_copy(self, d, leave_out=()):
        """A checkpoint directory in d: the tiny model's files as symlinks."""
        for name in os.listdir(TINY):
            if name not in leave_out and not os.path.isdir(os.path.join(TINY, name)):
                os.symlink(os.path.join(TINY, name), os.path.join(d, name))

    def test_missing_directory_is_not_found(self):
        self.assert_not_found("/nonexistent/model/dir", "/nonexistent/model/dir")
        with tempfile.TemporaryDirectory() as d:
            gone = os.path.join(d, "gone")
            self.assert_not_found(pathlib.Path(gone), gone)

    def test_file_instead_of_directory_is_not_found(self):
        cfg = os.path.join(TINY, "config.json")
        self.assert_not_found(cfg, cfg)
        self.assert_not_found(os.path.join(cfg, "sub"), os.path.join(cfg, "sub"))  # ENOTDIR

    def test_missing_config_is_not_found(self):
        with tempfile.TemporaryDirectory() as d:
            self.checkpoint_copy(d, leave_out=("config.json",))
            self.assert_not_found(d, os.path.join(d, "config.json"))

    def test_missing_shard_is_not_found(self):
        shard = "model-00002-of-00002.safetensors"
        with tempfile.TemporaryDirectory() as d:
            self.checkpoint_copy(d, leave_out=(shard,))
            self.assert_not_found(d, os.path.join(d, shard))

    def test_unreadable_file_is_io_error_not_not_found(self):
        with tempfile.TemporaryDirectory() as d:
            self.checkpoint_copy(d, leave_out=("config.json",))
            os.mkdir(os.path.join(d, "config.json"))  # exists, but not a regular file
            with self.assertRaises(gemfa.IoError) as cm:
                gemfa.Model(d)
            e = cm.exception
            self.assertIs(type(e), gemfa.IoError)
            self.assertIsInstance(e, OSError)
            self.assertNotIsInstance(e, FileNotFoundError)
            self.assertEqual(e.code, gemfa.Status.IO)
            self.assertIsNone(e.errno)
            self.assertEqual(e.filename, os.path.join(d, "config.json"))

    def test_malformed_config_is_format_error(self):
        with tempfile.TemporaryDirectory() as d:
            for name in os.listdir(TINY):
                if name != "config.json" and not os.path.isdir(os.path.join(TINY, name)):
                    os.symlink(os.path.join(TINY, name), os.path.join(d, name))
            with open(os.path.join(d, "config.json"), "w") as f:
                f.write("{ not json")
            with self.assertRaises(gemfa.FormatError):
                gemfa.Model(d)

    def test_wrong_argument_types(self):
        with self.assertRaises(TypeError):
            gemfa.Model(42)
        with self.assertRaises(ValueError):
            gemfa.Model("a\0b")
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.Model(TINY, weights="f64")
        with self.assertRaises(TypeError):
            gemfa.Model(TINY, threads="2")
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.Model(TINY, threads=-1)
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.Model(TINY, threads=2 ** 40)  # would truncate to 0 in ctypes

    def test_weight_types(self):
        for w, want in (("auto", None), ("bf16", gemfa.WeightType.BF16),
                        (gemfa.WeightType.INT8, gemfa.WeightType.INT8)):
            with gemfa.Model(TINY, weights=w) as m:
                if want is not None:
                    self.assertIs(m.weight_type, want)
                self.assertEqual(m.vocab_size, config()["text_config"]["vocab_size"])

    def test_vocab_only(self):
        with gemfa.Model(TINY, vocab_only=True) as m:
            self.assertFalse(m.has_weights)
            self.assertEqual(m.tokenize("سلام", add_bos=False), tiny_model().tokenize(
                "سلام", add_bos=False))
            with self.assertRaises(gemfa.NoWeightsError):
                m.session()

    def test_progress_callback(self):
        seen = []
        with gemfa.Model(TINY, progress=lambda f, stage: seen.append((f, stage))) as m:
            self.assertTrue(m.has_weights)
        self.assertTrue(seen)
        self.assertTrue(all(0.0 <= f <= 1.0 for f, _ in seen))
        self.assertTrue(all(isinstance(s, str) for _, s in seen))

    def test_progress_false_cancels(self):
        with self.assertRaises(gemfa.CancelledError):
            gemfa.Model(TINY, progress=lambda f, s: False)

    def test_progress_exception_propagates(self):
        class Boom(Exception):
            pass

        def progress(f, s):
            raise Boom("from the callback")
        with self.assertRaises(Boom):
            gemfa.Model(TINY, progress=progress)


class TestModelLifetime(unittest.TestCase):
    def test_close_is_idempotent_and_blocks_use(self):
        m = gemfa.Model(TINY, vocab_only=True)
        self.assertFalse(m.closed)
        m.close()
        m.close()
        self.assertTrue(m.closed)
        with self.assertRaises(gemfa.ClosedError):
            m.tokenize("a")
        with self.assertRaises(gemfa.ClosedError):
            _ = m.vocab_size
        with self.assertRaises(gemfa.ClosedError):
            m.session()
        self.assertIn("closed", repr(m))

    def test_context_manager(self):
        with gemfa.Model(TINY, vocab_only=True) as m:
            self.assertFalse(m.closed)
        self.assertTrue(m.closed)
        with self.assertRaises(gemfa.ClosedError):
            with m:
                pass

    def test_finalizer_frees_forgotten_model(self):
        m = gemfa.Model(TINY, vocab_only=True)
        handle = m._handle
        ref = weakref.ref(m)
        del m
        gc.collect()
        self.assertIsNone(ref())
        self.assertFalse(handle.alive)

    def test_children_keep_model_alive(self):
        m = gemfa.Model(TINY, weights="f32")
        handle = m._handle
        s = m.session(context=16, threads=1)
        d = m.detokenizer()
        m.close()
        self.assertTrue(m.closed)
        self.assertTrue(handle.alive)            # still held by the session and stream
        ids = tiny_model().tokenize("سلام")
        s.decode(ids)                             # works: the C model is alive
        self.assertEqual(d.feed(ids[1]), tiny_model().detokenize(ids[1:2]))
        s.close()
        self.assertTrue(handle.alive)
        d.close()
        self.assertFalse(handle.alive)           # freed with the last child

    def test_session_outlives_dropped_model(self):
        s = gemfa.Model(TINY, weights="f32").session(context=16, threads=1)
        gc.collect()
        s.decode([2, 6])
        self.assertEqual(s.n_tokens, 2)
        s.close()


if __name__ == "__main__":
    unittest.main()


class TestMatFormer(unittest.TestCase):
    """MatFormer sub-models: the option and derive() give the same logits,
    share weights (either may be closed first), and bad specs raise."""
    SPEC = "ffn=64:skip=3,21"
    IDS = [2, 17, 300, 45, 901]

    def logits(self, m):
        with m.context() as ctx, ctx.session() as s:
            s.decode(self.IDS)
            return list(s.logits)

    def test_option_and_derive_agree(self):
        base = gemfa.Model(TINY, weights="f32")
        sub = base.derive(self.SPEC)
        loaded = gemfa.Model(TINY, weights="f32", matformer=self.SPEC)
        self.assertEqual(sub.matformer, self.SPEC)
        self.assertEqual(loaded.matformer, self.SPEC)
        self.assertIsNone(base.matformer)
        self.assertEqual(sub.n_layers, 23)
        self.assertEqual(sub.get(gemfa.Prop.BASE_LAYERS), 25)
        self.assertEqual(sub.get(gemfa.Prop.SKIPPED_LAYERS), 2)
        self.assertEqual(sub.get(gemfa.Prop.MATFORMER), 1)
        self.assertEqual([sub.base_layer(i) for i in range(4)], [0, 1, 2, 4])
        self.assertEqual(sub.layer(0).ffn_width, 64)
        want = self.logits(loaded)
        base.close()  # the sub-model keeps the shared weights alive
        self.assertEqual(self.logits(sub), want)
        self.assertNotEqual(self.logits(tiny_model("f32")), want)
        sub.close()
        loaded.close()

    def test_bad_specs(self):
        m = tiny_model("f32")
        for spec in ("", "ffn=0", "ffn=129", "skip=18", "skip=25", "garbage", "ffn=64,64"):
            with self.assertRaises(gemfa.InvalidArgumentError, msg=spec):
                m.derive(spec)
        with self.assertRaises(gemfa.ModelMismatchError):
            m.derive("e2b")
        with self.assertRaises(TypeError):
            m.derive(64)
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.Model(TINY, matformer="ffn=x")
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.Model(TINY, matformer="ffn=1000")
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.Model(TINY, matformer="a\0b")
