"""`--draft`, `--draft-model`, `--draft-k` on generate and chat, and `bench
--speculative-oracle` / `--draft` on the tiny model: the same ids as the
plain run (greedy), statistics in --json, usage errors."""
import json
import os
import subprocess
import unittest

CLI = os.environ["GEMFA_CLI"]
DATA = os.environ["GEMFA_TEST_DATA"]
TINY = os.path.join(DATA, "tiny-gemma3n")
OTHER = os.path.join(DATA, "runtime", "tiny10-s1")  # same 1024 ids, other random weights
STATS = {"k", "steps", "drafted", "accepted", "acceptance", "tokens_per_step", "draft_s",
         "verify_s"}


def gemfa(*args, stdin=None):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, input=stdin)
    return p.returncode, p.stdout, p.stderr


def generate(*extra):
    rc, out, err = gemfa("generate", "-m", TINY, "-t", "1", "-p", "hello world", "-n", "40",
                         "--temp", "0", "--json", *extra)
    assert rc == 0, err
    return json.loads(out)


class Generate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.plain = generate()

    def check(self, extra, accepted_all):
        got = generate(*extra)
        self.assertEqual(got["ids"], self.plain["ids"], extra)
        self.assertEqual(got["text"], self.plain["text"])
        self.assertEqual(got["stop"], self.plain["stop"])
        st = got["speculative"]
        self.assertEqual(set(st), STATS)
        self.assertGreater(st["steps"], 0)
        if accepted_all:
            self.assertEqual(st["accepted"], st["drafted"])
            self.assertEqual(st["acceptance"], 1.0)
        else:
            self.assertLess(st["accepted"], st["drafted"])

    def test_draft_model_self_and_other(self):
        for k in ("1", "4", "8"):
            self.check(["--draft-model", TINY, "--draft-k", k], True)
            self.check(["--draft-model", OTHER, "--draft-k", k], False)

    def test_draft_submodel(self):
        self.check(["--draft", "ffn=64", "--draft-k", "3"], False)
        self.check(["--draft", "ffn=32:skip=1,2"], False)

    def test_sampling_runs_and_stops(self):
        got = generate("--temp", "1", "--top-k", "5", "--seed", "7", "--draft-model", TINY,
                       "--draft-k", "3", "-n", "25")
        self.assertEqual(len(got["ids"]), 25)
        # the model as its own draft: p == q, so every draft is kept
        self.assertEqual(got["speculative"]["acceptance"], 1.0)

    def test_context_full(self):
        plain = generate("-c", "12")
        got = generate("-c", "12", "--draft-model", OTHER, "--draft-k", "4")
        self.assertEqual(got["stop"], "context_full")
        self.assertEqual(got["ids"], plain["ids"])

    def test_stderr_line(self):
        rc, out, err = gemfa("generate", "-m", TINY, "-p", "hi", "-n", "8", "--temp", "0",
                             "--draft-model", TINY)
        self.assertEqual(rc, 0, err)
        self.assertIn("speculative:", err)
        self.assertIn("drafts accepted", err)

    def test_usage_errors(self):
        for extra, why in ((["--draft-k", "2"], "--draft-k needs"),
                           (["--draft", "e2b", "--draft-model", TINY], "exclude each other"),
                           (["--draft-model", TINY, "--draft-k", "0"], "--draft-k"),
                           (["--draft-model", TINY, "--draft-k", "33"], "--draft-k"),
                           (["--draft-model", TINY, "--json-mode"], "do not go with a draft"),
                           (["--draft-model", TINY, "--json", "--logprobs", "2"],
                            "does not go with a draft")):
            rc, out, err = gemfa("generate", "-m", TINY, "-p", "hi", *extra)
            self.assertEqual(rc, 2, (extra, err))
            self.assertIn(why, err)

    def test_bad_drafts(self):
        rc, out, err = gemfa("generate", "-m", TINY, "-p", "hi", "--draft", "ffn=0")
        self.assertEqual(rc, 1)
        self.assertIn("GEMFA_ERR_INVALID_ARGUMENT", err)
        rc, out, err = gemfa("generate", "-m", TINY, "-p", "hi", "--draft-model",
                             os.path.join(DATA, "no-such-dir"))
        self.assertEqual(rc, 1)
        self.assertIn("GEMFA_ERR_NOT_FOUND", err)


class Chat(unittest.TestCase):
    def test_same_answers_and_cache(self):
        lines = "hello\nhow are you\n/retry\n/undo\nbye\n"
        args = ["chat", "-m", TINY, "-t", "1", "--temp", "0", "--json", "-n", "30", "-c", "200"]
        rc, plain, err = gemfa(*args, stdin=lines)
        self.assertEqual(rc, 0, err)
        for extra in (["--draft-model", TINY, "--draft-k", "4"],
                      ["--draft-model", OTHER, "--draft-k", "2"], ["--draft", "ffn=64"]):
            rc, out, err = gemfa(*args, *extra, stdin=lines)
            self.assertEqual(rc, 0, err)
            want = [json.loads(x) for x in plain.splitlines()]
            got = [json.loads(x) for x in out.splitlines()]
            self.assertEqual(len(got), len(want))
            for a, b in zip(want, got):
                # the same answers, and the same KV cache reuse: the session after
                # an answer is what the plain loop leaves
                for key in ("ids", "prompt_ids", "reused", "decoded"):
                    self.assertEqual(a[key], b[key], (extra, key))
                self.assertIn("speculative", b)


class Bench(unittest.TestCase):
    def bench(self, *extra):
        rc, out, err = gemfa("bench", "-m", TINY, "-t", "1", "--bw-mb", "16", "-p", "8", "-n",
                             "20", "--batch", "0", "--json", *extra)
        self.assertEqual(rc, 0, err)
        return json.loads(out)["speculative"]

    def test_oracle(self):
        st = self.bench("--speculative-oracle", "4")
        self.assertEqual(st["draft"], "oracle")
        self.assertEqual(st["k"], 4)
        self.assertEqual(st["acceptance"], 1.0)
        self.assertTrue(st["same_tokens"])
        self.assertGreater(st["tokens_per_step"], 4.0)
        for key in ("plain_tok_s", "speculative_tok_s", "speedup", "step_ms", "plain_step_ms"):
            self.assertGreater(st[key], 0, key)

    def test_draft(self):
        st = self.bench("--draft", "ffn=64", "--draft-k", "2")
        self.assertEqual(st["draft"], "ffn=64")
        self.assertTrue(st["same_tokens"])
        self.assertGreater(st["draft_row_ms"], 0)

    def test_usage(self):
        for extra in (["--speculative-oracle", "0"], ["--speculative-oracle", "33"],
                      ["--draft-k", "2"], ["--draft", "ffn=64", "--speculative-oracle", "2"]):
            rc, out, err = gemfa("bench", "-m", TINY, *extra)
            self.assertEqual(rc, 2, (extra, err))


if __name__ == "__main__":
    unittest.main()
