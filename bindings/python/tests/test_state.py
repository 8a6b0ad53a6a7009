"""Session.save / Context.load_session / Session.truncate (docs/session-state.md)."""
from __future__ import annotations

import os
import pathlib
import tempfile
import unittest

import numpy as np

import gemfa

from support import DATA, read_i32, tiny_model

ALT = [2, 105, 17, 300, 9]


class TestState(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model("f32")
        cls.ids = read_i32("long.tokens.i32.bin")

    def fresh(self, ids):
        s = self.m.session()
        if ids:
            s.decode(ids)
        return s

    def test_save_bytes_and_restore(self):
        s = self.fresh(self.ids[:20])
        data = s.save()
        self.assertIsInstance(data, bytes)
        self.assertEqual(data[:8], b"GFSTATE\x1a")
        ctx = self.m.context()
        for source in (data, bytearray(data), memoryview(data)):
            r = ctx.load_session(source)
            self.assertIsInstance(r, gemfa.Session)
            self.assertIs(r.context, ctx)
            self.assertEqual(r.tokens, self.ids[:20])
            self.assertEqual(r.max_context, s.max_context)
            np.testing.assert_array_equal(r.logits, s.logits)
            want = s.fork().decode(ALT, all_logits=True)
            got = r.decode(ALT, all_logits=True)
            self.assertTrue(np.array_equal(got, want), "restored session continues differently")

    def test_save_file_and_restore(self):
        s = self.fresh(self.ids)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "state.bin")
            self.assertIsNone(s.save(p))
            with open(p, "rb") as f:
                self.assertEqual(f.read(), s.save())
            r = self.m.context().load_session(pathlib.Path(p), context=100)
            self.assertEqual(r.max_context, 100)
            self.assertEqual(r.tokens, self.ids)
            self.assertTrue(np.array_equal(r.decode(ALT), s.decode(ALT)))
            r2 = self.m.load_session(p)  # str path, own context
            self.assertEqual(len(r2), len(self.ids))
            self.assertEqual(r2.tokens, self.ids)

    def test_empty_session(self):
        s = self.m.session(context=16)
        r = self.m.context().load_session(s.save())
        self.assertEqual(len(r), 0)
        self.assertIsNone(r.logits)
        self.assertEqual(r.max_context, 16)

    def test_errors(self):
        ctx = self.m.context()
        data = self.fresh(self.ids[:5]).save()
        with self.assertRaises(gemfa.FormatError):
            ctx.load_session(data[:-1])
        with self.assertRaises(gemfa.FormatError):
            ctx.load_session(b"")
        damaged = bytearray(data)
        damaged[-3] ^= 1
        with self.assertRaises(gemfa.FormatError):
            ctx.load_session(damaged)
        with self.assertRaises(gemfa.ContextFullError):
            ctx.load_session(data, context=4)
        with self.assertRaises(gemfa.NotFoundError):
            ctx.load_session("/nonexistent/state")
        with self.assertRaises(FileNotFoundError):
            ctx.load_session("/nonexistent/state")
        with self.assertRaises(gemfa.IoError):
            ctx.load_session(os.path.dirname(__file__))  # a directory
        with self.assertRaises(TypeError):
            ctx.load_session(12)
        with self.assertRaises(TypeError):
            ctx.load_session(data, context="4")
        with self.assertRaises(gemfa.InvalidArgumentError):
            ctx.load_session(data, context=-1)
        with self.assertRaises(TypeError):
            self.m.session().save(b"/tmp/x")  # bytes are data, not a path
        # another model, and the same checkpoint with other weights
        other = gemfa.Model(os.path.join(DATA, "runtime", "tiny10-s1"), weights="f32")
        with self.assertRaises(gemfa.ModelMismatchError) as cm:
            other.context().load_session(data)
        self.assertEqual(cm.exception.status_name, "GEMFA_ERR_MODEL_MISMATCH")
        with self.assertRaises(gemfa.ModelMismatchError):
            tiny_model("int8").context().load_session(data)
        other.close()

    def test_truncate(self):
        s = self.fresh(self.ids)
        n = len(self.ids)
        for k in (n, n - 1, 30, 7, 0):
            s.truncate(k)
            self.assertEqual(len(s), k)
            self.assertEqual(s.tokens, self.ids[:k])
            if k < n:
                self.assertIsNone(s.logits)
            f = self.fresh(self.ids[:k])
            got, want = s.fork().decode(ALT), f.decode(ALT)
            self.assertLessEqual(float(np.max(np.abs(got - want))), 1e-2, f"k={k}")
            s.decode(self.ids[k:]) if k < n else None
        # same pieces: bit for bit
        a = self.fresh(self.ids[:12])
        a.decode(self.ids[12:])
        a.truncate(12)
        b = self.fresh(self.ids[:12])
        self.assertTrue(np.array_equal(a.decode(ALT), b.decode(ALT)))

    def test_truncate_errors(self):
        s = self.fresh(self.ids[:4])
        with self.assertRaises(gemfa.InvalidArgumentError):
            s.truncate(5)
        with self.assertRaises(gemfa.InvalidArgumentError):
            s.truncate(-1)
        with self.assertRaises(TypeError):
            s.truncate(1.0)
        self.assertEqual(len(s), 4)
        self.assertIsNotNone(s.logits)
        s.close()
        with self.assertRaises(gemfa.ClosedError):
            s.truncate(0)
        with self.assertRaises(gemfa.ClosedError):
            s.save()


if __name__ == "__main__":
    unittest.main()


class TestKvType(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model("f32")
        cls.ids = read_i32("long.tokens.i32.bin")

    def test_f16_sessions(self):
        a = self.m.session(kv_type="f32")
        b = self.m.session(kv_type=gemfa.KvType.F16)
        self.assertIs(a.kv_type, gemfa.KvType.F32)
        self.assertIs(b.kv_type, gemfa.KvType.F16)
        self.assertEqual(2 * b.kv_bytes, a.kv_bytes)
        self.assertIs(self.m.session().kv_type, gemfa.KvType.F32)
        la, lb = a.decode(self.ids[:40]), b.decode(self.ids[:40])
        diff = float(np.max(np.abs(np.asarray(la) - np.asarray(lb))))
        self.assertGreater(diff, 0.0)   # f16 rounds the keys and values...
        # ...within its documented bound (docs/numerics.md: the random tiny
        # model amplifies the 2^-12 rounding ~300x; 0.30 measured)
        self.assertLess(diff, 1.0)
        data = b.save()
        r = self.m.context().load_session(data)
        self.assertIs(r.kv_type, gemfa.KvType.F16)
        with self.assertRaises(gemfa.InvalidArgumentError) as e:
            self.m.context().load_session(data, kv_type="f32")
        self.assertIn("f16", str(e.exception))
        self.assertIs(self.m.load_session(data, kv_type="f16").kv_type, gemfa.KvType.F16)

    def test_bad_kv_type(self):
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.session(kv_type="q4")
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.session(kv_type=5)
        with self.assertRaises(TypeError):
            self.m.session(kv_type=1.5)
