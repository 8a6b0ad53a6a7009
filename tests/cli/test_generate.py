"""`gemfa generate` end to end on the tiny model: greedy output against the
numpy reference's argmax chain, reproducible seeds, streaming == JSON text,
stop ids, and the CLI's error and usage exits."""
import json
import os
import subprocess
import unittest

CLI = os.environ["GEMFA_CLI"]
DATA = os.environ["GEMFA_TEST_DATA"]
TINY = os.path.join(DATA, "tiny-gemma3n")
PROMPT = "سلام! لطفاً در مورد تاریخ ایران توضیح کوتاهی بدهید."
EOG = {1, 7}  # the tiny checkpoint's eos_token_id


def gemfa(*args, stdin=None):
    p = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def detokenize(ids, skip_special=False):
    rc, out, err = gemfa("detokenize", "-m", TINY, *(["--skip-special"] if skip_special else []),
                         stdin=json.dumps({"ids": ids}) + "\n")
    assert rc == 0, err
    return json.loads(out)["text"]


def special_ids():
    with open(os.path.join(TINY, "tokenizer.json")) as f:
        return {t["id"] for t in json.load(f)["added_tokens"] if t.get("special")}


def generate_json(*args):
    rc, out, err = gemfa("generate", "-m", TINY, *args, "--json")
    assert rc == 0, err
    return json.loads(out)


class Greedy(unittest.TestCase):
    def test_matches_reference_argmax_chain(self):
        with open(os.path.join(DATA, "greedy", "chat-01.greedy.json")) as f:
            ref = json.load(f)
        got = generate_json("--chat", "-p", PROMPT, "--temp", "0", "-n", str(len(ref["ids"])),
                            "--weights", "f32")
        self.assertEqual(got["prompt_ids"], ref["prompt_ids"])
        compared = 0
        for i, (want, margin) in enumerate(zip(ref["ids"], ref["margins"])):
            if margin < 0.05:
                break  # too close to call in f32: the chains may part here
            self.assertEqual(got["ids"][i], want, f"step {i}")
            compared += 1
        self.assertGreaterEqual(compared, 8, "the reference chain gives too few comparable steps")

    def test_top_k_one_equals_greedy(self):
        a = generate_json("-p", PROMPT, "--temp", "0", "-n", "12", "--seed", "5")
        b = generate_json("-p", PROMPT, "--top-k", "1", "-n", "12", "--seed", "9")
        self.assertEqual(a["ids"], b["ids"])


class Sampling(unittest.TestCase):
    def test_same_seed_same_tokens(self):
        a = generate_json("-p", PROMPT, "-n", "16", "--seed", "1234")
        b = generate_json("-p", PROMPT, "-n", "16", "--seed", "1234")
        c = generate_json("-p", PROMPT, "-n", "16", "--seed", "4321")
        self.assertEqual(a["ids"], b["ids"])
        self.assertNotEqual(a["ids"], c["ids"])

    def test_random_seed_is_printed_and_reusable(self):
        rc, out, err = gemfa("generate", "-m", TINY, "-p", PROMPT, "-n", "8", "--json")
        self.assertEqual(rc, 0, err)
        seed = json.loads(out)["seed"]
        self.assertIn(f"seed: {seed}", err)
        again = generate_json("-p", PROMPT, "-n", "8", "--seed", str(seed))
        self.assertEqual(again["ids"], json.loads(out)["ids"])

    def test_streamed_text_equals_json_text(self):
        args = ["generate", "-m", TINY, "--chat", "-p", PROMPT, "-n", "20", "--seed", "77"]
        rc, out, err = gemfa(*args)
        self.assertEqual(rc, 0, err)
        self.assertIn("tok/s", err)
        data = generate_json("--chat", "-p", PROMPT, "-n", "20", "--seed", "77")
        self.assertEqual(out, data["text"] + "\n")
        self.assertEqual(len(data["ids"]), 20)

    def test_stop_id_ends_the_run_and_stays_out_of_the_text(self):
        stopped = None
        for seed in range(1, 60):
            d = generate_json("--chat", "-p", PROMPT, "-n", "150", "--seed", str(seed))
            if d["stop"] == "eog":
                stopped = d
                break
        self.assertIsNotNone(stopped, "no seed in 1..59 reached a stop id")
        self.assertIn(stopped["ids"][-1], EOG)
        self.assertTrue(all(i not in EOG for i in stopped["ids"][:-1]))
        self.assertEqual(detokenize(stopped["ids"][:-1], skip_special=True), stopped["text"])

    def test_statistics_start_on_a_new_line(self):
        """stdout is the text plus a newline only when the text does not end
        with one, so the statistics on stderr start a line of their own."""
        endings = set()
        for seed in range(1, 40):
            args = ["-p", PROMPT, "-n", "3", "--seed", str(seed)]
            text = generate_json(*args)["text"]
            rc, out, err = gemfa("generate", "-m", TINY, *args)
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, text if text == "" or text.endswith("\n") else text + "\n")
            endings.add(text.endswith("\n"))
            if endings == {True, False}:
                break
        self.assertEqual(endings, {True, False}, "seeds 1..39 do not give both kinds of ending")

    def test_context_limit_stops_generation(self):
        d = generate_json("-p", PROMPT, "-n", "100", "-c", "40", "--seed", "3")
        self.assertEqual(d["stop"], "context_full")
        self.assertEqual(len(d["prompt_ids"]) + len(d["ids"]), 41)  # the last id is never decoded


class SpecialTokens(unittest.TestCase):
    """Special tokens (<end_of_image>...) are left out of the text as
    Python's generate and HF's skip_special_tokens do; --special shows them.
    The ids are the same either way."""

    @classmethod
    def setUpClass(cls):
        """A seed whose answer holds special tokens and no invalid byte runs
        (the stream and the batch detokenizer write those differently, as
        gemfa.h says)."""
        specials = special_ids() - EOG
        for seed in range(1, 200):
            shown = generate_json("-p", PROMPT, "-n", "20", "--seed", str(seed), "--special")
            ids = [i for i in shown["ids"] if i not in EOG]
            if any(i in specials for i in ids) and shown["text"] == detokenize(ids):
                cls.seed, cls.shown, cls.ids = seed, shown, ids
                cls.hidden = generate_json("-p", PROMPT, "-n", "20", "--seed", str(seed))
                return
        raise AssertionError("no seed in 1..199 samples a special token in valid text")

    def test_hidden_by_default(self):
        self.assertEqual(self.hidden["ids"], self.shown["ids"])
        self.assertEqual(self.hidden["text"], detokenize(self.ids, skip_special=True))
        self.assertNotEqual(self.hidden["text"], self.shown["text"])

    def test_special_shows_them(self):
        with open(os.path.join(TINY, "tokenizer.json")) as f:
            names = {t["id"]: t["content"] for t in json.load(f)["added_tokens"]}
        for i in self.ids:
            if i in names:
                self.assertIn(names[i], self.shown["text"])

    def test_streamed_text_hides_them_too(self):
        rc, out, err = gemfa("generate", "-m", TINY, "-p", PROMPT, "-n", "20", "--seed",
                             str(self.seed))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.rstrip("\n"), self.hidden["text"].rstrip("\n"))
        for tok in ("<end_of_image>", "<start_of_image>", "<image_soft_token>", "<bos>", "<pad>"):
            self.assertNotIn(tok, out)


class LongForms(unittest.TestCase):
    def test_long_and_short_forms_agree(self):
        short = generate_json("-p", PROMPT, "-n", "7", "-c", "64", "-t", "1", "--seed", "11")
        long = generate_json("--prompt", PROMPT, "--max-tokens", "7", "--ctx", "64",
                             "--threads", "1", "--model", TINY, "--seed", "11")
        self.assertEqual(short["ids"], long["ids"])
        self.assertEqual(short["text"], long["text"])

    def test_help_lists_the_long_forms(self):
        rc, out, _ = gemfa("generate", "--help")
        self.assertEqual(rc, 0)
        for form in ("-p, --prompt", "-n, --max-tokens", "-c, --ctx", "-m, --model",
                     "-t, --threads", "--special", "--bidi", "--weights", "-h, --help"):
            self.assertIn(form, out)
        self.assertIn("int8|q4", out)  # the weight types the library supports
        self.assertNotIn("q2", out)


class Errors(unittest.TestCase):
    def test_out_of_range_values_name_the_range(self):
        for opt, bad, rng in (
                ("-n", "-1", "[0, 1073741824]"), ("--max-tokens", "1073741825", "[0, 1073741824]"),
                ("-c", "0", "[1, 1073741824]"), ("--ctx", "5000", "[1, 4096]"),
                ("-t", "1025", "[0, 1024]"), ("--threads", "-2", "[0, 1024]"),
                ("--temp", "101", "[0, 100]"), ("--temp", "-0.5", "[0, 100]"),
                ("--top-p", "1.5", "(0, 1]"), ("--top-p", "0", "(0, 1]"),
                ("--top-k", "-1", "[0, 1073741824]"), ("--min-p", "2", "[0, 1]"),
                ("--repeat-penalty", "0", "(0, 100]"), ("--repeat-penalty", "1000", "(0, 100]"),
                ("--frequency-penalty", "3", "[-2, 2]"), ("--presence-penalty", "-2.5", "[-2, 2]"),
                ("--repeat-last-n", "-1", "[0, 1048576]"),
                ("--seed", "-1", "[0, 9223372036854775807]"),
                ("--seed", "9223372036854775808", "[0, 9223372036854775807]")):
            rc, out, err = gemfa("generate", "-m", TINY, "-p", "x", opt, bad)
            self.assertEqual(rc, 2, f"{opt} {bad}: {err}")
            self.assertIn(rng, err, f"{opt} {bad}")
            self.assertEqual(out, "")

    def test_penalties_change_the_answer(self):
        base = generate_json("-p", PROMPT, "-n", "30", "--temp", "0")
        pen = generate_json("-p", PROMPT, "-n", "30", "--temp", "0", "--presence-penalty", "2",
                            "--frequency-penalty", "2", "--repeat-last-n", "0")
        self.assertNotEqual(base["ids"], pen["ids"])

    def test_bidi_does_not_go_with_json(self):
        rc, _, err = gemfa("generate", "-m", TINY, "-p", "x", "--bidi", "--json")
        self.assertEqual(rc, 2)
        self.assertIn("--bidi", err)

    def test_usage_errors_exit_2(self):
        for args in (["generate"], ["generate", "-p", "x", "--system", "s"],
                     ["generate", "-p", "x", "--temp", "abc"], ["generate", "-p", "x", "-n", "-1"],
                     ["generate", "-p", "x", "--weights", "q3"], ["generate", "-p", "x", "--bogus"],
                     ["generate", "-p", "x", "--max-tokens"], ["generate", "--ctx", "8"],
                     ["generate", "-p", "x", "--top-p", "0"]):
            rc, _, err = gemfa(*args)
            self.assertEqual(rc, 2, f"{args}: {err}")
            self.assertTrue(err.strip(), args)

    def test_missing_model_exits_1(self):
        rc, out, err = gemfa("generate", "-m", "/nonexistent/model", "-p", "x")
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/model", err)
        self.assertEqual(out, "")

    def test_help_and_version(self):
        rc, out, _ = gemfa("generate", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("--chat", out)
        rc, out, _ = gemfa("generate", "--version")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("gemfa "))


class StopStringsAndLogprobs(unittest.TestCase):
    """--stop and --logprobs: the text ends before the first stop string (found
    across token boundaries), and logprobs match a log-softmax of the raw logits
    that `gemfa logits` writes, computed here in double precision."""

    def greedy(self, *args):
        return generate_json("-p", PROMPT, "--temp", "0", "-n", "24", "--weights", "f32", *args)

    def test_stop_string_across_tokens(self):
        full = self.greedy()
        text = full["text"]
        # two whole tokens (valid UTF-8, not just spaces) make a stop string that
        # spans a token boundary
        lp = self.greedy("--logprobs", "0")
        pieces = [bytes(e["bytes"]) for e in lp["logprobs"]]
        stop = None
        for k in range(2, len(pieces) - 1):
            try:
                cand = (pieces[k] + pieces[k + 1]).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if cand.strip() and len(pieces[k]) and len(pieces[k + 1]) and cand in text:
                stop = cand
                break
        self.assertIsNotNone(stop, "no two-token stop string in the greedy answer")
        got = self.greedy("--stop", stop, "--stop", "never seen here")
        self.assertEqual(got["stop"], "stop_string")
        self.assertEqual(got["text"], text[:text.find(stop)])
        self.assertEqual(got["ids"], full["ids"][:len(got["ids"])])
        self.assertLess(len(got["ids"]), len(full["ids"]))
        # streaming shows the same text
        rc, out, err = gemfa("generate", "-m", TINY, "-p", PROMPT, "--temp", "0", "-n", "24",
                             "--weights", "f32", "--stop", stop)
        self.assertEqual(rc, 0, err)
        # a newline ends the streamed text unless it already ends one
        self.assertEqual(out, got["text"] + ("" if got["text"].endswith("\n") else "\n"))
        self.assertIn("stopped at a stop string", err)

    def test_stop_string_not_found_changes_nothing(self):
        full = self.greedy()
        got = self.greedy("--stop", "\u2603\u2603", "--stop", "</answer>")
        self.assertEqual((got["text"], got["ids"], got["stop"]),
                         (full["text"], full["ids"], full["stop"]))

    def test_logprobs_match_raw_logits(self):
        import struct
        import tempfile
        import math
        got = self.greedy("--logprobs", "5", "-n", "6")
        self.assertEqual(len(got["logprobs"]), len(got["ids"]))
        ids = got["prompt_ids"] + got["ids"]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "logits.f32")
            rc, _, err = gemfa("logits", "-m", TINY, "--weights", "f32", "--all", "--tokens",
                               ",".join(map(str, ids)), "-o", path)
            self.assertEqual(rc, 0, err)
            with open(path, "rb") as f:
                data = f.read()
        vocab = len(data) // 4 // len(ids)
        rows = [struct.unpack_from(f"<{vocab}f", data, 4 * vocab * r) for r in range(len(ids))]
        for step, entry in enumerate(got["logprobs"]):
            row = rows[len(got["prompt_ids"]) - 1 + step]
            m = max(row)
            lse = m + math.log(sum(math.exp(x - m) for x in row))
            self.assertAlmostEqual(entry["logprob"], row[got["ids"][step]] - lse, delta=2e-3)
            best = sorted(range(vocab), key=lambda i: (-row[i], i))[:5]
            tops = entry["top_logprobs"]
            self.assertEqual(len(tops), 5)
            for k, alt in enumerate(tops):
                # 4e-3: the decode steps' alternatives drift from the one-batch
                # logits by up to 1.7e-3 on x86 AVX2 and 2.2e-3 with the aarch64
                # NEON helpers (rounding only: the tiny random model amplifies it)
                self.assertAlmostEqual(alt["logprob"], row[best[k]] - lse, delta=4e-3)
                if k:
                    self.assertLessEqual(alt["logprob"], tops[k - 1]["logprob"])
            # greedy: the chosen token is the best one
            self.assertEqual(entry["token"], tops[0]["token"])
            self.assertEqual(entry["bytes"], tops[0]["bytes"])
        # bytes concatenate to the text, token is their UTF-8 reading
        raw = b"".join(bytes(e["bytes"]) for e in got["logprobs"])
        try:
            self.assertEqual(raw.decode("utf-8"), got["text"])
        except UnicodeDecodeError:  # byte tokens that form no character: U+FFFD in text
            pass
        for e in got["logprobs"]:
            self.assertEqual(e["token"], bytes(e["bytes"]).decode("utf-8", "replace"))

    def test_logprobs_zero_gives_no_alternatives(self):
        got = self.greedy("--logprobs", "0", "-n", "3")
        self.assertEqual([e["top_logprobs"] for e in got["logprobs"]], [[], [], []])
        self.assertNotIn("logprobs", self.greedy("-n", "3"))

    def test_usage_errors(self):
        for args in (["--stop", ""], ["--logprobs", "3"], ["--logprobs", "21", "--json"],
                     ["--logprobs", "-1", "--json"], ["--stop", "\udcff"]):
            try:
                rc, _, err = gemfa("generate", "-m", TINY, "-p", "x", *args)
            except UnicodeEncodeError:
                continue  # the invalid-UTF-8 argument cannot be passed from here
            self.assertEqual(rc, 2, (args, err))
