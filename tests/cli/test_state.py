"""`--prompt-cache FILE` on `gemfa generate` and `gemfa chat`, and chat's /undo and
/retry (docs/cli.md): a cached run gives the same answer as an uncached one, decodes
only what the cache lacks, and a state of another model or a damaged file is
reported on stderr and rebuilt."""
import json
import os
import re
import subprocess
import tempfile
import unittest

CLI = os.environ["GEMFA_CLI"]
TINY = os.path.join(os.environ["GEMFA_TEST_DATA"], "tiny-gemma3n")
PROMPT = "سلام! حالت چطوره؟ امروز هوا خوب است"


def gemfa(*args, stdin=None):
    p = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def generate(prompt, cache=None, *extra):
    args = ["generate", "-m", TINY, "-p", prompt, "-n", "8", "--temp", "0", "--json", *extra]
    if cache:
        args += ["--prompt-cache", cache]
    rc, out, err = gemfa(*args)
    assert rc == 0, err
    m = re.search(r"prompt cache: (\d+) of (\d+) prompt tokens reused", err)
    return json.loads(out), (int(m.group(1)) if m else None), err


class GeneratePromptCache(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.cache = os.path.join(self.dir.name, "prompt.state")

    def tearDown(self):
        self.dir.cleanup()

    def test_reuse_gives_the_same_answer(self):
        plain, _, _ = generate(PROMPT)
        first, reused, err = generate(PROMPT, self.cache)
        self.assertEqual(reused, 0)
        self.assertNotIn("not usable", err)  # a missing cache is silent
        self.assertTrue(os.path.getsize(self.cache) > 96)
        again, reused, _ = generate(PROMPT, self.cache)
        n = len(plain["prompt_ids"])
        self.assertEqual(reused, n - 1)  # everything but the last id, decoded for its logits
        self.assertEqual(first["ids"], plain["ids"])
        self.assertEqual(again["ids"], plain["ids"])

    def test_longest_common_prefix(self):
        generate(PROMPT, self.cache)
        longer = PROMPT + " و فردا هم"
        want, _, _ = generate(longer)
        got, reused, _ = generate(longer, self.cache)
        self.assertEqual(got["ids"], want["ids"])
        ids_a = generate(PROMPT)[0]["prompt_ids"]
        common = 0
        while common < len(ids_a) and ids_a[common] == want["prompt_ids"][common]:
            common += 1
        self.assertEqual(reused, common)
        # and back to a shorter prompt: truncated to it
        shorter = PROMPT[:10]
        want, _, _ = generate(shorter)
        got, reused, _ = generate(shorter, self.cache)
        self.assertEqual(got["ids"], want["ids"])
        self.assertGreater(reused, 0)

    def test_other_model_state_is_rebuilt(self):
        generate(PROMPT, self.cache, "--weights", "int8")
        got, reused, err = generate(PROMPT, self.cache)
        self.assertIn("GEMFA_ERR_MODEL_MISMATCH", err)
        self.assertIn("rebuilding", err)
        self.assertEqual(reused, 0)
        self.assertEqual(got["ids"], generate(PROMPT)[0]["ids"])
        _, reused, err = generate(PROMPT, self.cache)  # rebuilt for this model
        self.assertGreater(reused, 0)
        self.assertNotIn("not usable", err)

    def test_damaged_state_is_rebuilt(self):
        generate(PROMPT, self.cache)
        with open(self.cache, "r+b") as f:
            f.seek(200)
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 0x40]))
        got, reused, err = generate(PROMPT, self.cache)
        self.assertIn("GEMFA_ERR_FORMAT", err)
        self.assertEqual(reused, 0)
        with open(self.cache, "r+b") as f:
            f.truncate(50)
        _, reused, err = generate(PROMPT, self.cache)
        self.assertIn("GEMFA_ERR_FORMAT", err)
        with open(self.cache, "wb") as f:
            f.write(b"not a state at all")
        _, _, err = generate(PROMPT, self.cache)
        self.assertIn("not a libgemfa session state", err)
        _, reused, err = generate(PROMPT, self.cache)
        self.assertGreater(reused, 0)


def chat(lines, *args):
    rc, out, err = gemfa("chat", "-m", TINY, "--json", "--temp", "0", "-n", "6", *args,
                         stdin="".join(l + "\n" for l in lines))
    assert rc == 0, err
    return [json.loads(l) for l in out.splitlines() if l.strip()], err


class ChatCommands(unittest.TestCase):
    def test_undo(self):
        turns, err = chat(["سلام", "یک", "/undo", "دو"])
        self.assertIn("(last exchange removed)", err)
        direct, _ = chat(["سلام", "دو"])
        self.assertEqual(len(turns), 3)
        self.assertEqual(turns[2]["prompt_ids"], direct[1]["prompt_ids"])
        self.assertEqual(turns[2]["ids"], direct[1]["ids"])
        # the undone exchange was cut from the cache: the new turn reuses the first one
        self.assertGreaterEqual(turns[2]["reused"], len(direct[0]["prompt_ids"]))

    def test_retry(self):
        turns, _ = chat(["سلام", "/retry"], "--temp", "1.5", "--seed", "7")
        self.assertEqual(len(turns), 2)
        self.assertEqual(turns[1]["prompt_ids"], turns[0]["prompt_ids"])
        self.assertEqual(turns[1]["decoded"], 1)  # only the last prompt id, for its logits

    def test_nothing_to_undo(self):
        turns, err = chat(["/undo", "/retry", "سلام"])
        self.assertIn("(nothing to undo)", err)
        self.assertIn("(nothing to retry)", err)
        self.assertEqual(len(turns), 1)

    def test_prompt_cache_keeps_the_system_prompt(self):
        with tempfile.TemporaryDirectory() as d:
            cache = os.path.join(d, "chat.state")
            system = "تو یک دستیار مفید هستی. " * 4
            first, _ = chat(["سلام"], "--system", system, "--prompt-cache", cache)
            self.assertTrue(os.path.exists(cache))
            second, err = chat(["خداحافظ"], "--system", system, "--prompt-cache", cache)
            self.assertNotIn("not usable", err)
            # the new conversation shares the system turn with the cached one
            self.assertGreater(second[0]["reused"], 10)
            plain, _ = chat(["خداحافظ"], "--system", system)
            self.assertEqual(second[0]["ids"], plain[0]["ids"])


if __name__ == "__main__":
    unittest.main()
