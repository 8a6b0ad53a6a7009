"""gemfa.Speculator: greedy output equals plain greedy, drafts as models or
functions, statistics, errors leave the session as it was."""
from __future__ import annotations

import os
import unittest

import gemfa

from support import DATA, tiny_model

OTHER = os.path.join(DATA, "runtime", "tiny10-s1")  # another random model, same 1024 ids
PROMPT = [2, 105, 17, 300, 9, 44, 1000, 3]
N = 24


def plain_greedy(model, n=N):
    s = model.session()
    s.decode(PROMPT)
    smp = gemfa.Sampler(temperature=0)
    out = []
    for _ in range(n):
        out.append(smp.sample(s.logits, history=s.tokens))
        s.decode([out[-1]])
    return out


def run(spec, smp, n=N):
    out = []
    while len(out) < n:
        out += spec.step(smp)
    return out[:n]


class TestSpeculator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = tiny_model("auto")
        cls.other = gemfa.Model(OTHER)
        cls.want = plain_greedy(cls.model)

    @classmethod
    def tearDownClass(cls):
        cls.other.close()

    def test_greedy_equals_plain_with_model_drafts(self):
        for draft, all_kept in ((self.model, True), (self.other, False)):
            for k in (1, 3, 8):
                s = self.model.session()
                s.decode(PROMPT)
                with gemfa.Speculator(s, draft, k=k) as spec:
                    self.assertEqual(run(spec, gemfa.Sampler(temperature=0)), self.want)
                    st = spec.stats
                    self.assertEqual(st["emitted"], st["accepted"] + st["steps"])
                    if all_kept:
                        self.assertEqual(st["acceptance"], 1.0)
                    else:
                        self.assertLess(st["acceptance"], 1.0)

    def test_function_draft_and_flush(self):
        want = self.want

        def oracle(tokens, max_ids):
            at = len(tokens) - len(PROMPT)
            return want[at:at + max_ids]

        s = self.model.session()
        s.decode(PROMPT)
        spec = gemfa.Speculator(s, oracle, k=4)
        got = spec.step(gemfa.Sampler(temperature=0))
        self.assertEqual(got, want[:5])
        self.assertEqual(len(s), len(PROMPT) + 4)  # the last one is pending
        spec.flush()
        self.assertEqual(s.tokens, PROMPT + want[:5])
        spec.k = 2
        self.assertEqual(spec.step(gemfa.Sampler(temperature=0)), want[5:8])
        spec.close()

    def test_errors(self):
        s = self.model.session()
        s.decode(PROMPT)
        for k in (0, -3, 33, 2 ** 40):
            with self.assertRaises(gemfa.InvalidArgumentError):
                gemfa.Speculator(s, self.model, k=k)
        with self.assertRaises(TypeError):
            gemfa.Speculator(s, "not a draft")
        with self.assertRaises(TypeError):
            gemfa.Speculator(s, self.model, k=2.0)

        def broken(tokens, max_ids):
            raise KeyError("draft bug")

        spec = gemfa.Speculator(s, broken, k=3)
        with self.assertRaises(KeyError):
            spec.step(gemfa.Sampler(temperature=0))
        self.assertEqual(len(s), len(PROMPT))

        def too_many(tokens, max_ids):
            return [5] * (max_ids + 1)

        spec = gemfa.Speculator(s, too_many, k=3)
        with self.assertRaises(ValueError):
            spec.step(gemfa.Sampler(temperature=0))
        self.assertEqual(len(s), len(PROMPT))

        spec = gemfa.Speculator(s, self.model, k=2)
        smp = gemfa.Sampler(temperature=0)
        smp.set_constraint(gemfa.JsonConstraint(self.model))
        with self.assertRaises(gemfa.UnsupportedError):
            spec.step(smp)
        spec.step(gemfa.Sampler(temperature=0))
        s.decode([3])  # the session used directly between steps
        with self.assertRaises(gemfa.InvalidArgumentError):
            spec.step(gemfa.Sampler(temperature=0))
        spec.reset()
        self.assertGreaterEqual(len(spec.step(gemfa.Sampler(temperature=0))), 1)

    def test_keeps_session_and_draft_alive(self):
        draft = gemfa.Model(OTHER)
        s = self.model.session()
        s.decode(PROMPT)
        spec = gemfa.Speculator(s, draft, k=2)
        draft.close()
        s.close()
        self.assertEqual(len(run(spec, gemfa.Sampler(temperature=0), 6)), 6)
        spec.close()
        with self.assertRaises(gemfa.ClosedError):
            spec.step(gemfa.Sampler(temperature=0))


if __name__ == "__main__":
    unittest.main()
