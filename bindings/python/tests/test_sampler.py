"""gemfa.Sampler: settings, validation, reproducibility."""
from __future__ import annotations

import math
import unittest

import numpy as np

import gemfa

from support import tiny_model


class TestSampler(unittest.TestCase):
    def test_greedy_is_argmax(self):
        logits = [0.1, 2.5, -1.0, 2.4, 0.0]
        with gemfa.Sampler(temperature=0) as smp:
            self.assertEqual(smp.sample(logits), 1)
            self.assertEqual(smp.sample(np.array(logits, dtype=np.float64)), 1)

    def test_logit_bias_bans_and_clears(self):
        logits = [0.1, 2.5, -1.0, 2.4, 0.0]
        smp = gemfa.Sampler(temperature=0, logit_bias={1: -math.inf})
        self.assertEqual(smp.sample(logits), 3)
        smp.clear_logit_bias()
        self.assertEqual(smp.sample(logits), 1)
        smp.close()

    def test_outlives_its_model(self):
        # gemfa.h: the sampler copies the model's defaults and keeps no pointer to it
        m = gemfa.Model(tiny_model().path, vocab_only=True)
        smp = gemfa.Sampler(m, seed=3)
        twin = gemfa.Sampler(m, seed=3)
        m.close()
        self.assertFalse(m._handle.alive)  # the C model is freed: no child holds it
        logits = [float(i % 7) for i in range(300)]
        picks = [smp.sample(logits, history=[1, 2]) for _ in range(20)]
        self.assertEqual(picks, [twin.sample(logits, history=[1, 2]) for _ in range(20)])
        smp.set_top_k(1)
        self.assertEqual(smp.sample(logits), 6)
        smp.close()
        twin.close()

    def test_repetition_penalty_sees_history(self):
        logits = [1.0, 3.0, 2.9]
        smp = gemfa.Sampler(temperature=0, repetition_penalty=2.0)
        self.assertEqual(smp.sample(logits), 1)
        self.assertEqual(smp.sample(logits, history=[1]), 2)
        smp.close()

    def test_same_seed_same_draws(self):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=64).astype(np.float32)

        def draws(seed):
            with gemfa.Sampler(temperature=1.0, seed=seed) as smp:
                return [smp.sample(logits) for _ in range(40)]
        self.assertEqual(draws(3), draws(3))
        self.assertNotEqual(draws(3), draws(4))
        with gemfa.Sampler(temperature=1.0, seed=3) as smp:
            first = [smp.sample(logits) for _ in range(10)]
            smp.set_seed(3)
            self.assertEqual([smp.sample(logits) for _ in range(10)], first)

    def test_top_k_one_is_greedy(self):
        logits = [0.5, 0.4, 3.0, 0.1]
        with gemfa.Sampler(temperature=5.0, top_k=1, seed=1) as smp:
            self.assertEqual({smp.sample(logits) for _ in range(20)}, {2})

    def test_from_session_without_copies(self):
        m = tiny_model("f32")
        with m.session(context=16) as s, gemfa.Sampler(m, temperature=0) as smp:
            logits = s.decode([2, 6, 475])
            self.assertEqual(smp.sample(s), int(np.argmax(logits)))
            self.assertEqual(s.sample(smp), int(np.argmax(logits)))
            with m.session(context=4) as empty:
                with self.assertRaises(gemfa.InvalidArgumentError):
                    smp.sample(empty)

    def test_model_defaults(self):
        m = tiny_model("f32")
        with m.sampler(seed=5) as a, gemfa.Sampler(m, seed=5) as b:
            logits = np.linspace(0, 1, 100, dtype=np.float32)
            self.assertEqual([a.sample(logits) for _ in range(10)],
                             [b.sample(logits) for _ in range(10)])

    def test_invalid_settings(self):
        with gemfa.Sampler() as smp:
            for call in (lambda: smp.set_temperature(-1), lambda: smp.set_temperature(math.nan),
                         lambda: smp.set_top_k(-1), lambda: smp.set_top_p(0),
                         lambda: smp.set_top_p(1.5), lambda: smp.set_min_p(2),
                         lambda: smp.set_penalties(0), lambda: smp.set_seed(-1),
                         lambda: smp.set_seed(2 ** 64), lambda: smp.set_top_k(2 ** 40)):
                with self.assertRaises(gemfa.InvalidArgumentError):
                    call()
            for call in (lambda: smp.set_temperature("hot"), lambda: smp.set_top_k(1.5),
                         lambda: smp.set_seed(1.0), lambda: smp.sample("abc"),
                         lambda: smp.sample([1.0], history=["a"])):
                with self.assertRaises(TypeError):
                    call()
            with self.assertRaises(gemfa.InvalidArgumentError):
                smp.sample([])
            with self.assertRaises(gemfa.InvalidArgumentError):
                smp.sample([-math.inf, -math.inf])
            with self.assertRaises(TypeError):
                gemfa.Sampler("model")

    def test_closed(self):
        smp = gemfa.Sampler()
        smp.close()
        smp.close()
        with self.assertRaises(gemfa.ClosedError):
            smp.sample([1.0])


class TestLogging(unittest.TestCase):
    def test_callback_receives_messages_and_is_kept(self):
        import gc
        lines = []
        gemfa.set_log_callback(lambda level, msg: lines.append((level, msg)),
                               gemfa.LogLevel.DEBUG)
        gc.collect()  # the trampoline must survive: the module holds it
        try:
            with self.assertRaises(gemfa.IoError):
                gemfa.Model("/nonexistent/model")
            m = gemfa.Model(tiny_model().path, vocab_only=True)
            m.close()
        finally:
            gemfa.set_log_callback(None)
        for level, msg in lines:
            self.assertIsInstance(level, gemfa.LogLevel)
            self.assertIsInstance(msg, str)

    def test_bad_arguments(self):
        with self.assertRaises(TypeError):
            gemfa.set_log_callback("not callable")
        with self.assertRaises(ValueError):
            gemfa.set_log_callback(None, 7)


if __name__ == "__main__":
    unittest.main()
