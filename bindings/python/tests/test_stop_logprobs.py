"""Stop strings and log-probabilities: gemfa.StopMatcher, gemfa.logprobs, and
Session.generate(stop=..., logprobs=N) on the tiny model."""
from __future__ import annotations

import math
import random
import unittest

import gemfa

from support import greedy, jsonl, tiny_model


def naive_logprobs(row):
    """log-softmax in double precision, NaN as -inf and +inf as the largest float."""
    big = 3.4028234663852886e38
    xs = [(-math.inf if math.isnan(x) else big if x == math.inf else x) for x in row]
    m = max(xs)
    lse = m + math.log(sum(math.exp(x - m) for x in xs))
    return [x - lse for x in xs]


class TestStopMatcher(unittest.TestCase):
    def test_pieces_hold_and_hit(self):
        m = gemfa.StopMatcher(["</answer>", "\n\n"])
        self.assertEqual(m.feed("42 </ans"), ("42 ", False))
        self.assertEqual(m.held, 5)
        self.assertEqual(m.feed("wer> more"), ("", True))
        self.assertEqual(m.feed("later"), ("", True))
        m.reset()
        self.assertEqual(m.feed("a\n"), ("a", False))
        self.assertEqual(m.flush(), "\n")
        m.close()

    def test_persian_split_inside_characters(self):
        m = gemfa.StopMatcher("دنیا")  # one str is one stop string
        out, hit = m.feed("سلام دن")
        self.assertEqual((out, hit), ("سلام ", False))
        self.assertEqual(m.held, len("دن".encode()))
        self.assertEqual(m.feed("یا!"), ("", True))

    def test_bad_stop_strings(self):
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.StopMatcher(["ok", ""])
        with self.assertRaises(gemfa.InvalidUtf8Error):
            gemfa.StopMatcher([b"\xc3("])
        with self.assertRaises(TypeError):
            gemfa.StopMatcher(5)
        m = gemfa.StopMatcher([])
        self.assertEqual(m.feed("anything"), ("anything", False))


class TestLogprobs(unittest.TestCase):
    def test_against_double_precision(self):
        rng = random.Random(3)
        for n, sigma in ((1, 1.0), (7, 2.0), (1000, 5.0), (70000, 3.0)):
            row = [rng.gauss(0, sigma) for _ in range(n)]
            want = naive_logprobs(row)
            order = sorted(range(n), key=lambda i: (-row[i], i))
            token = rng.randrange(n)
            lp, tops = gemfa.logprobs(row, token, top=5)
            self.assertAlmostEqual(lp, want[token], delta=1e-5 * (1 + abs(want[token])))
            self.assertEqual([i for i, _ in tops], order[:5])
            for i, v in tops:
                self.assertAlmostEqual(v, want[i], delta=1e-5 * (1 + abs(want[i])))

    def test_ties_nan_inf_and_sizes(self):
        lp, tops = gemfa.logprobs([0.5] * 4, 3, top=10)
        self.assertAlmostEqual(lp, -math.log(4), places=6)
        self.assertEqual([i for i, _ in tops], [0, 1, 2, 3])
        lp, tops = gemfa.logprobs([1.0, float("nan"), 2.0, float("-inf")], 1, top=4)
        self.assertEqual(lp, -math.inf)
        self.assertEqual([i for i, _ in tops], [2, 0])
        lp, tops = gemfa.logprobs([1.0, float("inf")], 1)
        self.assertEqual((lp, tops), (0.0, []))
        self.assertEqual(gemfa.logprobs([1.0, 2.0], top=1)[0], None)
        try:
            import numpy
            lp, _ = gemfa.logprobs(numpy.array([1.0, 2.0, 3.0]), 2)
            self.assertAlmostEqual(lp, naive_logprobs([1.0, 2.0, 3.0])[2], places=6)
        except ImportError:  # pragma: no cover
            pass

    def test_errors(self):
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.logprobs([float("nan")] * 3, 0)
        with self.assertRaises(gemfa.InvalidArgumentError):
            gemfa.logprobs([], None, top=1)
        with self.assertRaises(gemfa.InvalidTokenError):
            gemfa.logprobs([1.0, 2.0], 2)
        with self.assertRaises(gemfa.InvalidTokenError):
            gemfa.logprobs([1.0, 2.0], 2**40)
        with self.assertRaises(ValueError):
            gemfa.logprobs([1.0], 0, top=-1)
        with self.assertRaises(TypeError):
            gemfa.logprobs([1.0], "0")


class TestGenerateStopLogprobs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model("f32")
        cls.ref = greedy()
        chat = {r["id"]: r for r in jsonl("tiny.chat.expected.jsonl")}
        cls.user = chat["chat-01-user-gen"]["messages"][0]["content"]

    def run_greedy(self, **kw):
        with self.m.session(context=256) as s:
            g = s.generate(self.user, max_new_tokens=len(self.ref["ids"]), temperature=0, **kw)
            pieces = list(g)
            return g, pieces, s.tokens

    def two_token_stop(self, g):
        """Text of two consecutive generated tokens (valid UTF-8, not blank)."""
        for k in range(2, len(g.ids) - 1):
            raw = b"".join(bytes(e["bytes"]) for e in g.logprobs[k:k + 2])
            try:
                cand = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if cand.strip() and all(g.logprobs[j]["bytes"] for j in (k, k + 1)) \
                    and cand in g.text:
                return cand
        self.fail("no two-token stop string in the greedy answer")

    def test_stop_string_ends_the_text_and_the_session_keeps_the_tokens(self):
        full, _, _ = self.run_greedy(logprobs=0)
        stop = self.two_token_stop(full)
        g, pieces, tokens = self.run_greedy(stop=[stop, "never here"])
        self.assertEqual(g.stop_reason, "stop_string")
        self.assertEqual(g.text, full.text[:full.text.find(stop)])
        self.assertEqual("".join(pieces), g.text)
        self.assertTrue(all(stop not in p for p in pieces))
        self.assertEqual(g.ids, full.ids[:len(g.ids)])
        self.assertLess(len(g.ids), len(full.ids))
        self.assertEqual(tokens, g.prompt_ids + g.ids)
        # the tokens that spelled the stop string were decoded into the session
        self.assertIn(stop, self.m.detokenize(g.ids, skip_special=True))

    def test_absent_stop_string_changes_nothing(self):
        full, _, _ = self.run_greedy()
        g, _, _ = self.run_greedy(stop=["\u2603\u2603"])
        self.assertEqual((g.text, g.ids, g.stop_reason), (full.text, full.ids, "length"))
        self.assertIsNone(g.logprobs)

    def test_logprobs_match_the_raw_logits(self):
        g, _, _ = self.run_greedy(logprobs=5)
        self.assertEqual(len(g.logprobs), len(g.ids))
        with self.m.session(context=256) as s:
            row = s.decode(g.prompt_ids)
            for step, (token, entry) in enumerate(zip(g.ids, g.logprobs)):
                row = list(row)
                want = naive_logprobs(row)
                self.assertEqual(set(entry), {"token", "logprob", "bytes", "top_logprobs"})
                self.assertAlmostEqual(entry["logprob"], want[token], delta=1e-4)
                order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:5]
                self.assertEqual(len(entry["top_logprobs"]), 5)
                for i, alt in zip(order, entry["top_logprobs"]):
                    self.assertAlmostEqual(alt["logprob"], want[i], delta=1e-4)
                    self.assertEqual(bytes(alt["bytes"]).decode("utf-8", "replace"),
                                     alt["token"])
                # greedy: the chosen token is the top one
                self.assertEqual(entry["bytes"], entry["top_logprobs"][0]["bytes"])
                row = s.decode([token])
        # every entry's bytes are what the token adds to the text
        raw = b"".join(bytes(e["bytes"]) for e in g.logprobs)
        try:
            self.assertEqual(raw.decode("utf-8"), self.m.detokenize(g.ids, skip_special=False))
        except UnicodeDecodeError:
            pass  # a byte token that forms no character: U+FFFD in the text

    def test_argument_errors(self):
        with self.m.session(context=64) as s:
            for bad in (-1, 21):
                with self.assertRaises(gemfa.InvalidArgumentError):
                    s.generate("x", logprobs=bad)
            for bad in ("5", True, 2.0):
                with self.assertRaises(TypeError):
                    s.generate("x", logprobs=bad)
            with self.assertRaises(gemfa.InvalidArgumentError):
                s.generate("x", stop=[""])
            with self.assertRaises(TypeError):
                s.generate("x", stop=5)
            self.assertEqual(s.n_tokens, 0, "nothing ran")


if __name__ == "__main__":
    unittest.main()
