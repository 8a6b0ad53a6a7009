"""Session.generate against the greedy reference chain; streaming, stopping, chat turns."""
from __future__ import annotations

import unittest

import gemfa

from support import greedy, jsonl, tiny_model


class TestGenerate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model("f32")
        cls.ref = greedy()
        chat = {r["id"]: r for r in jsonl("tiny.chat.expected.jsonl")}
        cls.chat01 = chat["chat-01-user-gen"]

    def test_reference_prompt_is_chat01(self):
        self.assertEqual(self.ref["prompt_ids"], self.chat01["ids"])

    def test_greedy_chain_matches_reference(self):
        n = len(self.ref["ids"])
        self.assertFalse(any(self.m.is_eog(t) for t in self.ref["ids"]))
        user_text = self.chat01["messages"][0]["content"]
        with self.m.session(context=256) as s:
            g = s.generate(user_text, max_new_tokens=n, temperature=0)
            self.assertEqual(g.prompt_ids, self.ref["prompt_ids"])
            pieces = list(g)
            self.assertEqual(g.ids, self.ref["ids"])
            self.assertEqual(g.stop_reason, "length")
            self.assertEqual("".join(pieces), g.text)
            self.assertEqual(g.text, self.m.detokenize(self.ref["ids"], skip_special=True))
            self.assertTrue(all(p for p in pieces))
            # every generated token was appended to the session
            self.assertEqual(s.tokens, self.ref["prompt_ids"] + self.ref["ids"])

    def test_messages_ids_and_continuation_give_the_same_chain(self):
        n = 12
        want = self.ref["ids"][:n]
        with self.m.session(context=256) as s:
            g = s.generate(self.chat01["messages"], max_new_tokens=n, temperature=0)
            list(g)
            self.assertEqual(g.ids, want)
        with self.m.session(context=256) as s:
            g = s.generate(self.ref["prompt_ids"], chat=False, max_new_tokens=5, temperature=0)
            list(g)
            g2 = s.generate(None, max_new_tokens=n - 5, temperature=0)
            list(g2)
            self.assertEqual(g.ids + g2.ids, want)
        with self.m.session(context=256) as s:
            rendered = self.chat01["rendered"]
            g = s.generate(rendered, chat=False, max_new_tokens=n, temperature=0)
            list(g)
            # the rendered text starts with "<bos>" itself: no second one is added
            self.assertEqual(g.prompt_ids, self.ref["prompt_ids"])
            self.assertEqual(g.ids, want)

    def test_stop_on_end_of_generation(self):
        eot = self.m.end_of_turn_id
        with self.m.session(context=256) as s:
            # bias <end_of_turn> to the top after 3 tokens: generation must stop there
            sampler = gemfa.Sampler(self.m, temperature=0)
            g = s.generate("سلام", sampler=sampler, max_new_tokens=50)
            at = None
            for _ in g:
                if at is None and len(g.ids) >= 3:
                    at = len(g.ids)
                    sampler.set_logit_bias(eot, 1e4)
            self.assertEqual(g.stop_reason, "eog")
            self.assertEqual(len(g.ids), at)
            self.assertNotIn(eot, g.ids)
            self.assertEqual(s.tokens[-at:], g.ids)  # the end id is not appended
            sampler.close()

    def test_second_chat_turn_closes_the_model_turn(self):
        eot, sot = self.m.end_of_turn_id, self.m.start_of_turn_id
        with self.m.session(context=512) as s:
            list(s.generate("سلام", max_new_tokens=4, temperature=0))
            before = s.tokens
            g = s.generate("ممنون", max_new_tokens=2, temperature=0)
            newline = self.m.tokenize("\n", add_bos=False)
            turn = self.m.chat_tokenize([{"role": "user", "content": "ممنون"}])
            self.assertEqual(g.prompt_ids, [eot] + newline + turn[1:])
            self.assertEqual(g.prompt_ids.count(self.m.bos_id), 0)
            list(g)
            self.assertEqual(s.tokens[:len(before)], before)
            self.assertIn(sot, g.prompt_ids)

    def test_multi_turn_matches_the_template(self):
        # history (turn 1 + a model reply) + the second turn's prompt must equal the
        # template's rendering of the whole conversation
        first = [{"role": "user", "content": "سلام"}]
        reply = "خوبم، ممنون."
        second = [{"role": "user", "content": "چه خبر؟"}]
        whole = first + [{"role": "assistant", "content": reply}] + second
        with self.m.session(context=512) as s:
            s.decode(self.m.chat_tokenize(first) + self.m.tokenize(reply, add_bos=False))
            g = s.generate(second, max_new_tokens=1, temperature=0)  # not run yet
            self.assertEqual(s.tokens + g.prompt_ids, self.m.chat_tokenize(whole))

    def test_context_full_stops_generation(self):
        with self.m.session(context=len(self.ref["prompt_ids"]) + 3) as s:
            g = s.generate(self.ref["prompt_ids"], chat=False, max_new_tokens=10, temperature=0)
            list(g)
            self.assertEqual(g.stop_reason, "context_full")
            self.assertEqual(g.ids, self.ref["ids"][:3])
            self.assertEqual(s.n_tokens, s.max_context)

    def test_prompt_longer_than_context(self):
        with self.m.session(context=5) as s:
            g = s.generate(self.chat01["messages"], max_new_tokens=3)
            with self.assertRaises(gemfa.ContextFullError):
                next(g)
            self.assertEqual(s.n_tokens, 0)

    def test_seeded_sampling_is_reproducible(self):
        runs = []
        no_end = {t: float("-inf") for t in self.m.eog_ids}  # always 16 tokens
        for seed in (7, 7, 8):
            with self.m.session(context=256) as s:
                smp = gemfa.Sampler(self.m, temperature=1.0, top_k=50, seed=seed,
                                    logit_bias=no_end)
                g = s.generate("سلام", max_new_tokens=16, sampler=smp)
                list(g)
                smp.close()
                self.assertEqual(len(g.ids), 16)
                runs.append(g.ids)
        self.assertEqual(runs[0], runs[1])
        self.assertNotEqual(runs[0], runs[2])

    def test_early_break_keeps_generated_tokens(self):
        with self.m.session(context=256) as s:
            g = s.generate("سلام", max_new_tokens=30, temperature=0)
            for i, _ in enumerate(g):
                if i == 2:
                    break
            g.close()
            self.assertEqual(g.stop_reason, "closed")
            self.assertEqual(s.tokens[-len(g.ids):], g.ids)
            self.assertEqual(s.n_tokens, len(g.prompt_ids) + len(g.ids))

    def test_cancel_during_generate(self):
        with self.m.session(context=256) as s:
            g = s.generate("سلام", max_new_tokens=30, temperature=0)
            next(g)
            n = s.n_tokens
            s.cancel()
            with self.assertRaises(gemfa.CancelledError):
                list(g)
            self.assertEqual(g.stop_reason, "error")
            self.assertEqual(s.n_tokens, n)

    def test_argument_errors(self):
        with self.m.session(context=64) as s:
            with self.assertRaises(gemfa.InvalidArgumentError):
                s.generate(None)  # empty session: nothing to continue from
            with self.assertRaises(gemfa.InvalidArgumentError):
                s.generate("x", max_new_tokens=-1)
            with self.assertRaises(TypeError):
                s.generate("x", max_new_tokens="3")
            with self.assertRaises(TypeError):
                s.generate("x", sampler=gemfa.Sampler(), temperature=0.5)
            with self.assertRaises(TypeError):
                s.generate(3.5)
            with self.assertRaises(gemfa.TemplateError):
                s.generate([{"role": "assistant", "content": "x"}])
            with self.assertRaises(gemfa.InvalidArgumentError):
                s.generate("x", temperature=-1)
            with self.assertRaises(gemfa.InvalidTokenError):
                list(s.generate([5, -3], chat=False))
            self.assertEqual(s.n_tokens, 0)


if __name__ == "__main__":
    unittest.main()
