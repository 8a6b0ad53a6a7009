"""Decoding against the golden logits, session state, errors, threads, cancellation."""
from __future__ import annotations

import gc
import threading
import unittest

import numpy as np

import gemfa
from gemfa import _core

from support import LOGITS_TOL, TINY, golden, read_f32, read_i32, tiny_model


def golden_seq(name: str):
    g = golden()["sequences"][name]
    tokens = read_i32(g["tokens_file"])
    n, vocab = g["logits_shape"]
    logits = np.array(read_f32(g["logits_file"]), dtype=np.float32).reshape(n, vocab)
    return g, tokens, logits


class TestGoldenLogits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model("f32")

    def assert_close(self, got, want, what):
        got = np.asarray(got, dtype=np.float64)
        self.assertEqual(got.shape, want.shape, what)
        diff = float(np.max(np.abs(got - want)))
        self.assertLessEqual(diff, LOGITS_TOL, f"{what}: max |diff| {diff}")

    def test_fixture(self):
        g, tokens, logits = golden_seq("long")
        self.assertEqual(tokens, g["tokens"])
        self.assertEqual(logits.shape, (39, self.m.vocab_size))

    def test_all_logits_prompt_batch(self):
        for name in ("short", "long"):
            g, tokens, want = golden_seq(name)
            with self.m.session(context=64, threads=2) as s:
                got = s.decode(tokens, all_logits=True)
                self.assertIsInstance(got, np.ndarray)
                self.assertEqual(got.dtype, np.float32)
                self.assert_close(got, want, name)
                self.assertEqual(s.n_tokens, len(tokens))
                self.assertEqual(s.tokens, tokens)
                # last-position logits of the batch equal its last row
                self.assert_close(s.logits, want[-1], f"{name} session.logits")

    def test_argmax_where_margin_is_clear(self):
        g, tokens, _ = golden_seq("long")
        with self.m.session(context=64) as s:
            got = s.decode(tokens, all_logits=True)
        for pos, (am, margin) in enumerate(zip(g["argmax_per_position"],
                                               g["top2_margin_per_position"])):
            if margin > 0.05:
                self.assertEqual(int(np.argmax(got[pos])), am, f"position {pos}")

    def test_token_by_token(self):
        _, tokens, want = golden_seq("long")
        with self.m.session(context=64, threads=1) as s:
            for i, t in enumerate(tokens):
                last = s.decode(t)  # one int
                self.assert_close(last, want[i], f"position {i}")

    def test_chunks(self):
        _, tokens, want = golden_seq("long")
        with self.m.session(context=64) as s:
            s.decode(tokens[:10])
            rows = s.decode(np.array(tokens[10:30], dtype=np.int32), all_logits=True)
            self.assert_close(rows, want[10:30], "chunk")
            last = s.decode(tokens[30:])
            self.assert_close(last, want[-1], "tail")

    def test_list_backend(self):
        _, tokens, want = golden_seq("short")
        saved = _core.use_numpy
        _core.use_numpy = False
        try:
            with self.m.session(context=16) as s:
                last = s.decode(tokens[:3])
                rows = s.decode(tokens[3:], all_logits=True)
        finally:
            _core.use_numpy = saved
        self.assertIsInstance(last, list)
        self.assertIsInstance(rows, list)
        self.assertIsInstance(rows[0], list)
        self.assert_close(last, want[2], "list last")
        self.assert_close(rows, want[3:], "list rows")

    def test_returned_logits_are_owned_copies(self):
        _, tokens, want = golden_seq("short")
        s = self.m.session(context=16)
        first = s.decode(tokens[:2])
        snapshot = first.copy()
        s.decode(tokens[2:])
        s.close()
        gc.collect()
        np.testing.assert_array_equal(first, snapshot)  # nothing changed or dangles
        first[:] = 0  # writable, ours

    def test_decode_batch_matches_single(self):
        _, tokens, want = golden_seq("long")
        with self.m.context(threads=2) as ctx:
            a, b = ctx.session(64), ctx.session(64)
            a.decode(tokens[:5])
            b.decode(tokens[:9])
            ctx.decode_batch([a, b], [tokens[5], tokens[9]])
            self.assert_close(a.logits, want[5], "batch a")
            self.assert_close(b.logits, want[9], "batch b")
            self.assertEqual((a.n_tokens, b.n_tokens), (6, 10))
            with self.assertRaises(gemfa.InvalidArgumentError):
                ctx.decode_batch([a, b], [1])
            other = self.m.session(context=8)
            with self.assertRaises(gemfa.InvalidArgumentError):
                ctx.decode_batch([a, other], [1, 1])
            other.close()


class TestSessionState(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model("f32")

    def test_fork_and_reset(self):
        _, tokens, want = golden_seq("long")
        with self.m.session(context=64) as s:
            s.decode(tokens[:20])
            f = s.fork()
            self.assertEqual(f.tokens, tokens[:20])
            self.assert_close_row(f.decode(tokens[20]), want[20])
            self.assert_close_row(s.decode(tokens[20]), want[20])
            s.reset()
            self.assertEqual(s.n_tokens, 0)
            self.assertEqual(s.tokens, [])
            self.assertIsNone(s.logits)
            self.assert_close_row(s.decode(tokens[0]), want[0])
            self.assertEqual(f.n_tokens, 21)
            s.close()
            self.assertEqual(f.n_tokens, 21)  # the fork does not depend on its origin
            f.close()

    def assert_close_row(self, got, want):
        self.assertLessEqual(float(np.max(np.abs(np.asarray(got) - want))), LOGITS_TOL)

    def test_sizes(self):
        with self.m.session(context=32) as s:
            self.assertEqual(s.max_context, 32)
            self.assertEqual(len(s), 0)
            self.assertGreater(s.memory_bytes, 0)
            self.assertIn("0/32", repr(s))
        with self.m.session() as s:
            self.assertEqual(s.max_context, self.m.context_length)

    def test_bad_context_sizes(self):
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.session(context=-1)
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.session(context=self.m.context_length + 1)
        with self.assertRaises(TypeError):
            self.m.session(context="8")
        with self.assertRaises(gemfa.InvalidArgumentError):
            self.m.session(threads=-1)

    def test_context_full_leaves_session_unchanged(self):
        _, tokens, want = golden_seq("long")
        with self.m.session(context=8) as s:
            s.decode(tokens[:6])
            before = s.logits
            with self.assertRaises(gemfa.ContextFullError) as cm:
                s.decode(tokens[6:9])
            self.assertEqual(cm.exception.code, gemfa.Status.CONTEXT_FULL)
            self.assertEqual(s.tokens, tokens[:6])
            np.testing.assert_array_equal(s.logits, before)
            s.decode(tokens[6:8])  # exactly full is fine
            self.assertEqual(s.n_tokens, 8)
            with self.assertRaises(gemfa.ContextFullError):
                s.decode(tokens[8])

    def test_bad_ids_leave_session_unchanged(self):
        with self.m.session(context=16) as s:
            s.decode([2, 6])
            for bad in ([-1], [self.m.vocab_size], [5, 2 ** 31 - 1], [2 ** 40]):
                with self.subTest(ids=bad):
                    with self.assertRaises(gemfa.InvalidTokenError):
                        s.decode(bad)
                    self.assertEqual(s.tokens, [2, 6])
            with self.assertRaises(gemfa.InvalidArgumentError):
                s.decode([])
            for bad in ("abc", [1.0], [None], [[1]], 2.0, np.zeros((2, 2), dtype=np.int32),
                        np.zeros(2, dtype=np.float32)):
                with self.subTest(ids=repr(bad)):
                    with self.assertRaises((TypeError, ValueError)):
                        s.decode(bad)
            self.assertEqual(s.tokens, [2, 6])

    def test_closed_session(self):
        s = self.m.session(context=8)
        s.close()
        s.close()
        self.assertTrue(s.closed)
        for call in (lambda: s.decode([2]), lambda: s.tokens, lambda: s.n_tokens, s.reset,
                     s.fork, lambda: s.logits):
            with self.assertRaises(gemfa.ClosedError):
                call()

    def test_sessions_cannot_be_constructed_directly(self):
        with self.assertRaises(TypeError):
            gemfa.Session()

    def test_context_keeps_sessions_working(self):
        ctx = self.m.context(threads=1)
        s = ctx.session(8)
        ctx.close()
        s.decode([2])
        f = s.fork()
        s.close()
        f.decode([6])
        self.assertEqual(f.tokens, [2, 6])
        f.close()
        self.assertFalse(ctx._handle.alive)


class TestCancelAndThreads(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model("f32")

    def test_cancel_callback(self):
        calls = []
        stop = [False]

        def cancel():
            calls.append(1)
            return stop[0]
        with self.m.session(context=16, cancel=cancel) as s:
            s.decode([2, 6])
            self.assertTrue(calls, "the cancel callback is polled during decode")
            stop[0] = True
            with self.assertRaises(gemfa.CancelledError):
                s.decode([475, 8])
            self.assertEqual(s.tokens, [2, 6])
            stop[0] = False
            s.decode([475, 8])
            self.assertEqual(s.tokens, [2, 6, 475, 8])

    def test_cancel_callback_exception_propagates(self):
        class Stop(Exception):
            pass

        def cancel():
            raise Stop()
        with self.m.session(context=16, cancel=cancel) as s:
            with self.assertRaises(Stop) as cm:
                s.decode([2, 6])
            self.assertIsInstance(cm.exception.__cause__, gemfa.CancelledError)
            self.assertEqual(s.n_tokens, 0)

    def test_cancel_method(self):
        with self.m.session(context=16) as s:
            s.cancel()
            with self.assertRaises(gemfa.CancelledError):
                s.decode([2])
            self.assertEqual(s.n_tokens, 0)
            s.decode([2])  # the request was consumed
            self.assertEqual(s.n_tokens, 1)

    def test_cancel_from_another_thread(self):
        started = threading.Event()
        with self.m.session(context=64, cancel=lambda: started.set()) as s:
            def canceller():
                started.wait(10)
                s.cancel()
            t = threading.Thread(target=canceller)
            t.start()
            _, tokens, _ = golden_seq("long")
            cancelled = 0
            try:
                for _ in range(1000):  # until the other thread's cancel lands
                    s.decode(tokens[:8])
                    s.reset()
            except gemfa.CancelledError:
                cancelled = 1
            t.join()
            self.assertEqual(cancelled, 1)

    def test_cancel_method_from_another_thread(self):
        # no cancel= function: the flag is polled in C, without the GIL
        with self.m.session(context=64) as s:
            self.assertIsNone(s.context._canceller.fn)
            t = threading.Timer(0.05, s.cancel)
            t.start()
            cancelled = False
            try:
                for i in range(100000):
                    if i % 20 == 0:  # 20 x 3 tokens fit the 64-token session
                        s.reset()
                    s.decode([2, 6, 475])
            except gemfa.CancelledError:
                cancelled = True
            t.join()
            self.assertTrue(cancelled)
            n = s.n_tokens
            s.decode([8])  # the request was consumed
            self.assertEqual(s.n_tokens, n + 1)

    def test_threads_with_own_sessions(self):
        _, tokens, want = golden_seq("long")
        errors = []

        def work():
            try:
                with self.m.session(context=64, threads=1) as s:
                    for _ in range(3):
                        rows = s.decode(tokens, all_logits=True)
                        if float(np.max(np.abs(rows - want))) > LOGITS_TOL:
                            errors.append("mismatch")
                        s.reset()
            except Exception as e:  # pragma: no cover - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_shared_session_is_serialized(self):
        # Misuse: one session from two threads.  The context lock serializes the
        # calls, so nothing crashes and every decode lands whole.
        with self.m.session(context=512, threads=1) as s:
            def work():
                for _ in range(20):
                    s.decode([2, 6, 475])
            threads = [threading.Thread(target=work) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(s.tokens, [2, 6, 475] * 40)

    def test_sibling_sessions_closed_while_one_decodes(self):
        _, tokens, want = golden_seq("short")
        with self.m.context(threads=1) as ctx:
            a = ctx.session(64)
            errors = []
            done = threading.Event()

            def work():
                try:
                    while not done.is_set():
                        a.reset()
                        rows = a.decode(tokens, all_logits=True)
                        if float(np.max(np.abs(rows - want))) > LOGITS_TOL:
                            errors.append("mismatch")
                except Exception as e:  # pragma: no cover
                    errors.append(repr(e))
            t = threading.Thread(target=work)
            t.start()
            for i in range(100):
                b = ctx.session(16)
                b.decode([2, 6])
                if i % 2:
                    b.close()
                else:
                    del b  # the finalizer frees it
                    gc.collect()
            done.set()
            t.join()
            a.close()
        self.assertEqual(errors, [])

    def test_close_while_other_thread_decodes(self):
        m = gemfa.Model(TINY, weights="f32")
        s = m.session(context=4096, threads=1)
        done = threading.Event()
        errors = []

        def work():
            try:
                while not done.is_set():
                    if s.n_tokens > 4000:
                        s.reset()  # never reach the context limit
                    s.decode([2, 6, 475, 8])
            except gemfa.ClosedError:
                pass
            except Exception as e:  # pragma: no cover
                errors.append(repr(e))
        t = threading.Thread(target=work)
        t.start()
        m.close()
        s.close()
        done.set()
        t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()


class TestWithoutNumpy(unittest.TestCase):
    def test_package_works_without_numpy(self):
        import os
        import subprocess
        import sys
        code = (
            "import sys; sys.modules['numpy'] = None\n"   # makes 'import numpy' fail
            "import gemfa, json\n"
            "from support import TINY, golden_short\n"
            "m = gemfa.Model(TINY, weights='f32')\n"
            "s = m.session(context=16)\n"
            "tokens, want = golden_short()\n"
            "last = s.decode(tokens)\n"
            "rows = s.decode([tokens[0]], all_logits=True)\n"
            "print(json.dumps([type(last).__name__, type(rows).__name__,\n"
            "      max(abs(a - b) for a, b in zip(last, want))]))\n")
        env = dict(os.environ)
        here = os.path.dirname(os.path.abspath(__file__))
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(here), here, env.get("PYTHONPATH", "")])
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        kind_last, kind_rows, diff = json.loads(r.stdout)
        self.assertEqual((kind_last, kind_rows), ("list", "list"))
        self.assertLessEqual(diff, LOGITS_TOL)
