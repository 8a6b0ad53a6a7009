"""`gemfa chat` on the tiny model: every turn's cached ids equal what the chat
template renders for the conversation so far (checked against `gemfa template`
and, for the answers, against a fresh `gemfa logits` run), /reset, dropping old
turns when the context fills, and Ctrl-C stopping an answer, not the program."""
import json
import os
import signal
import struct
import subprocess
import time
import unittest

CLI = os.environ["GEMFA_CLI"]
TINY = os.path.join(os.environ["GEMFA_TEST_DATA"], "tiny-gemma3n")
MESSAGES = ["سلام! حالت چطوره؟", "درباره‌ی تاریخ ایران بگو.", "ممنون، خداحافظ"]


def gemfa(*args, stdin=None):
    p = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def chat(lines, *args):
    rc, out, err = gemfa("chat", "-m", TINY, "--json", "--temp", "0", *args,
                         stdin="".join(l + "\n" for l in lines))
    assert rc == 0, err
    return [json.loads(l) for l in out.splitlines() if l.strip()], err


def chat_bytes(lines, *args):
    """Like chat, for input lines given as bytes (not necessarily UTF-8)."""
    p = subprocess.run([CLI, "chat", "-m", TINY, "--json", "--temp", "0", *args],
                       input=b"".join(l + b"\n" for l in lines), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.decode().splitlines()], p.stderr.decode()


def template_ids(messages):
    rc, out, err = gemfa("template", "-m", TINY,
                         stdin=json.dumps({"messages": messages, "add_generation_prompt": True}) + "\n")
    assert rc == 0, err
    return json.loads(out)["ids"]


def logits_argmax(ids):
    """Argmax and top-2 margin at every position, from a fresh session."""
    p = subprocess.run([CLI, "logits", "-m", TINY, "--tokens", ",".join(map(str, ids)), "--all",
                        "-o", "-"], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    n = len(p.stdout) // 4
    vals = struct.unpack(f"<{n}f", p.stdout)
    vocab = n // len(ids)
    out = []
    for t in range(len(ids)):
        row = sorted(range(vocab), key=lambda i: -vals[t * vocab + i])[:2]
        out.append((row[0], vals[t * vocab + row[0]] - vals[t * vocab + row[1]]))
    return out


class Turns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # --special: the text is then the whole answer, the assistant turn the
        # conversation holds (special tokens included even when hidden)
        cls.turns, cls.err = chat(MESSAGES, "-n", "12", "--special")

    def test_one_answer_per_message(self):
        self.assertEqual(len(self.turns), len(MESSAGES))

    def test_prompt_is_what_the_template_renders(self):
        history = []
        for msg, turn in zip(MESSAGES, self.turns):
            history.append({"role": "user", "content": msg})
            self.assertEqual(turn["prompt_ids"], template_ids(history))
            history.append({"role": "assistant", "content": turn["text"]})

    def test_cache_is_reused_between_turns(self):
        self.assertEqual(self.turns[0]["reused"], 0)
        for prev, turn in zip(self.turns, self.turns[1:]):
            self.assertGreaterEqual(turn["reused"], len(prev["prompt_ids"]))
            self.assertEqual(turn["reused"] + turn["decoded"], len(turn["prompt_ids"]))

    def test_answers_equal_a_fresh_run_of_the_rendered_conversation(self):
        for turn in self.turns[1:]:
            ids = turn["prompt_ids"] + turn["ids"][:-1]
            best = logits_argmax(ids)
            start = len(turn["prompt_ids"]) - 1
            for k, want in enumerate(turn["ids"]):
                top, margin = best[start + k]
                if margin < 0.05:
                    break
                self.assertEqual(want, top, f"answer token {k}")


class Lines(unittest.TestCase):
    def test_blank_lines_are_skipped(self):
        plain, _ = chat([MESSAGES[0], MESSAGES[1]], "-n", "4")
        spaced, _ = chat(["", "   ", MESSAGES[0], "\t \t", " ", MESSAGES[1], ""],
                         "-n", "4")
        self.assertEqual(spaced, plain)

    def test_crlf_line_ends(self):
        plain, _ = chat([MESSAGES[0], MESSAGES[1]], "-n", "4")
        crlf, _ = chat([MESSAGES[0] + "\r", "\r", MESSAGES[1] + "\r"], "-n", "4")
        self.assertEqual(crlf, plain)

    def test_unanswerable_lines_get_error_records_in_place(self):
        too_long = ("سلام " * 300).encode()
        turns, _ = chat_bytes([MESSAGES[0].encode(), b"caf\xe9 \xff", too_long,
                               MESSAGES[1].encode()], "-n", "6", "-c", "256", "--special")
        self.assertEqual(len(turns), 4)  # one record per message line
        self.assertIn("UTF-8", turns[1]["error"])
        self.assertIn("context", turns[2]["error"])
        self.assertEqual(set(turns[1]), {"error"})
        self.assertNotIn("error", turns[0])
        self.assertNotIn("error", turns[3])
        # the chat went on as if the bad lines had not been there
        self.assertEqual(turns[3]["prompt_ids"], template_ids([
            {"role": "user", "content": MESSAGES[0]},
            {"role": "assistant", "content": turns[0]["text"]},
            {"role": "user", "content": MESSAGES[1]}]))

    def test_without_json_the_reason_goes_to_stderr(self):
        p = subprocess.run([CLI, "chat", "-m", TINY, "-n", "3", "--seed", "1"],
                           input=b"\xff\xfe\n" + MESSAGES[0].encode() + b"\n",
                           capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"not valid UTF-8", p.stderr)
        self.assertNotIn(b"error", p.stdout)


class Special(unittest.TestCase):
    def test_hidden_unless_asked_and_kept_in_the_conversation(self):
        with open(os.path.join(TINY, "tokenizer.json")) as f:
            names = {t["id"]: t["content"] for t in json.load(f)["added_tokens"]
                     if t.get("special") and t["id"] not in (1, 7)}
        for seed in range(1, 100):
            args = ["-n", "20", "--temp", "1", "--seed", str(seed)]
            shown, _ = chat(MESSAGES[:2], *args, "--special")
            if any(i in names for i in shown[0]["ids"]):
                break
        else:
            self.fail("no seed in 1..99 samples a special token")
        hidden, _ = chat(MESSAGES[:2], *args)
        self.assertEqual([t["ids"] for t in hidden], [t["ids"] for t in shown])
        for i in shown[0]["ids"]:
            if i in names:
                self.assertIn(names[i], shown[0]["text"])
                self.assertNotIn(names[i], hidden[0]["text"])
        # the conversation holds the whole answer either way
        self.assertEqual(hidden[1]["prompt_ids"], shown[1]["prompt_ids"])
        self.assertEqual(hidden[1]["reused"], shown[1]["reused"])


class Commands(unittest.TestCase):
    def test_reset_starts_over(self):
        turns, err = chat([MESSAGES[0], "/reset", MESSAGES[1]], "-n", "4")
        self.assertEqual(len(turns), 2)
        self.assertIn("cleared", err)
        self.assertEqual(turns[1]["prompt_ids"], template_ids([{"role": "user", "content": MESSAGES[1]}]))

    def test_exit_stops_reading(self):
        turns, _ = chat([MESSAGES[0], "/exit", MESSAGES[1]], "-n", "4")
        self.assertEqual(len(turns), 1)

    def test_full_context_drops_oldest_turns_keeps_system(self):
        system = "تو یک دستیار فارسی هستی."
        turns, err = chat(MESSAGES * 3, "-n", "8", "-c", "96", "--system", system)
        self.assertEqual(len(turns), 9)
        self.assertIn("dropped", err)
        dropped = [t for t in turns if t["dropped_turns"] > 0]
        self.assertTrue(dropped)
        for t in turns:
            self.assertLessEqual(len(t["prompt_ids"]) + len(t["ids"]), 97)
        # the kept conversation starts with the system prompt folded into a user turn
        first_user = template_ids([{"role": "system", "content": system},
                                   {"role": "user", "content": "x"}])
        prefix = first_user[:first_user.index(8, 3) + 1]  # <bos><start_of_turn>user\n
        for t in turns:
            self.assertEqual(t["prompt_ids"][:len(prefix)], prefix)


class Interrupt(unittest.TestCase):
    def long_answer_seed(self):
        """A seed whose first answer runs long (random models stop at random)."""
        best = (0, None)
        for seed in range(1, 13):
            turns, _ = chat([MESSAGES[0]], "-n", "4000", "--seed", str(seed), "--temp", "1")
            best = max(best, (len(turns[0]["ids"]), seed))
        self.assertGreaterEqual(best[0], 300, "no seed in 1..12 gives a long answer")
        return best[1]

    def test_ctrl_c_stops_the_answer_not_the_program(self):
        seed = self.long_answer_seed()
        p = subprocess.Popen([CLI, "chat", "-m", TINY, "-n", "4000", "--seed", str(seed)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write((MESSAGES[0] + "\n").encode())
        p.stdin.flush()
        first = p.stdout.read(20)  # the answer is streaming now
        self.assertEqual(len(first), 20)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(input=(MESSAGES[1] + "\n").encode(), timeout=120)
        self.assertEqual(p.returncode, 0, err.decode())
        self.assertIn("(answer stopped)", err.decode())
        self.assertGreaterEqual((first + out).count(b"\n"), 2)  # the second answer came too


class Usage(unittest.TestCase):
    def test_bad_options(self):
        for args in (["chat", "--bogus"], ["chat", "-n", "0"], ["chat", "-c", "x"],
                     ["chat", "--max-tokens"], ["chat", "--bidi", "--json"]):
            rc, _, err = gemfa(*args, stdin="")
            self.assertEqual(rc, 2, f"{args}: {err}")

    def test_out_of_range_values_name_the_range(self):
        for opt, bad, rng in (("-n", "0", "[1, 1073741824]"), ("--max-tokens", "-5", "[1, 1073741824]"),
                              ("-c", "0", "[1, 1073741824]"), ("--ctx", "4097", "[1, 4096]"),
                              ("--threads", "2000", "[0, 1024]"), ("--temp", "nan", "[0, 100]"),
                              ("--top-k", "x", "[0, 1073741824]")):
            rc, _, err = gemfa("chat", "-m", TINY, opt, bad, stdin="")
            self.assertEqual(rc, 2, f"{opt} {bad}: {err}")
            self.assertIn(rng, err, f"{opt} {bad}")

    def test_long_forms(self):
        a, _ = chat(MESSAGES[:2], "-n", "5", "-c", "200", "-t", "1")
        b, _ = chat(MESSAGES[:2], "--max-tokens", "5", "--ctx", "200", "--threads", "1",
                    "--model", TINY)
        self.assertEqual(a, b)
        self.assertTrue(all(len(t["ids"]) <= 5 for t in a))
