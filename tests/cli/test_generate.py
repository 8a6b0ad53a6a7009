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
        self.assertNotIn("q4", out)  # only the weight types the library supports


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
                     ["generate", "-p", "x", "--weights", "q4"], ["generate", "-p", "x", "--bogus"],
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
