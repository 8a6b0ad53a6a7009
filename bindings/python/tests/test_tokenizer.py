"""Tokenizer, detokenizer, streaming and chat template against the golden files."""
from __future__ import annotations

import ctypes
import unittest

import gemfa

from support import jsonl, tiny_model


class TestTokenizerGolden(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model()
        cls.records = jsonl("tiny.expected.jsonl")

    def test_fixture_is_not_empty(self):
        self.assertGreater(len(self.records), 60)

    def test_encode(self):
        for r in self.records:
            with self.subTest(id=r["id"]):
                self.assertEqual(self.m.tokenize(r["text"], add_bos=False), r["ids"])
                self.assertEqual(self.m.tokenize(r["text"]), r["ids_bos"])

    def test_encode_bytes_equals_str(self):
        for r in self.records[:10]:
            self.assertEqual(self.m.tokenize(r["text"].encode()), r["ids_bos"])

    def test_decode(self):
        for r in self.records:
            with self.subTest(id=r["id"]):
                self.assertEqual(self.m.detokenize(r["ids"]), r["decoded"])
                self.assertEqual(self.m.detokenize(r["ids_bos"]), r["decoded_bos"])
                self.assertEqual(self.m.detokenize(r["ids_bos"], skip_special=True),
                                 r["decoded_skip"])

    def test_pieces(self):
        for r in self.records:
            with self.subTest(id=r["id"]):
                self.assertEqual([self.m.token_piece(i) for i in r["ids"]], r["pieces"])

    def test_token_id_inverts_piece(self):
        for r in self.records[:20]:
            for tid, piece in zip(r["ids"], r["pieces"]):
                self.assertEqual(self.m.token_id(piece), tid)
        self.assertIsNone(self.m.token_id("certainly not a piece \u2603\u2603"))

    def test_stream(self):
        records = [r for r in self.records if "stream" in r]
        self.assertTrue(records)
        for r in records:
            with self.subTest(id=r["id"]):
                with self.m.detokenizer() as d:
                    chunks = [d.feed(i) for i in r["ids"]]
                    tail = d.flush()
                self.assertEqual(chunks, r["stream"])
                self.assertEqual("".join(chunks) + tail, r["decoded"])

    def test_stream_equals_batch_for_all_records(self):
        d = self.m.detokenizer(skip_special=True)
        for r in self.records:
            d.reset()
            text = "".join(d.feed(i) for i in r["ids_bos"]) + d.flush()
            self.assertEqual(text, r["decoded_skip"], r["id"])
        d.close()

    def test_decode_cases(self):
        for r in jsonl("tiny.decode.expected.jsonl"):
            with self.subTest(note=r.get("note")):
                self.assertEqual(self.m.detokenize(r["ids"]), r["decoded"])
                self.assertEqual(self.m.detokenize(r["ids"], skip_special=True),
                                 r["decoded_skip"])

    def test_numpy_ids(self):
        import numpy as np
        r = self.records[0]
        self.assertEqual(self.m.detokenize(np.array(r["ids"], dtype=np.int64)), r["decoded"])


class TestSizeQuery(unittest.TestCase):
    """GEMFA_ERR_BUFFER_TOO_SMALL, then a retry with the reported size."""

    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model()

    def test_output_larger_than_the_first_guess(self):
        nl31 = self.m.token_id("\n" * 31)
        self.assertIsNotNone(nl31)
        # the first guess is 8 bytes per id: 31 per id needs the retry
        self.assertEqual(self.m.detokenize([nl31] * 100), "\n" * 3100)

    def test_protocol_with_a_one_slot_guess(self):
        from gemfa import _core
        lib = gemfa.lib()
        raw = "سلام، حالت چطوره؟".encode()
        with self.m._use() as p:
            ids = _core.query_ids(lambda buf, cap, n: lib.gemfa_tokenize(
                p, raw, len(raw), 0, buf, cap, n), 1)
            text = _core.query_text(lambda buf, cap, n: lib.gemfa_detokenize(
                p, (ctypes.c_int32 * len(ids))(*ids), len(ids), 0, buf, cap, n), 1)
        self.assertEqual(ids, self.m.tokenize(raw, add_bos=False))
        self.assertEqual(text, raw)

    def test_raw_call_reports_the_needed_size(self):
        lib = gemfa.lib()
        n = ctypes.c_size_t(0)
        with self.m._use() as p:
            st = lib.gemfa_tokenize(p, b"abc", 3, 0, None, 0, ctypes.byref(n))
        self.assertEqual(st, gemfa.Status.BUFFER_TOO_SMALL)
        self.assertEqual(n.value, len(self.m.tokenize("abc", add_bos=False)))


class TestTokenizerErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model()

    def test_invalid_utf8(self):
        for r in jsonl("invalid_utf8.jsonl"):
            with self.subTest(id=r["id"]):
                with self.assertRaises(gemfa.InvalidUtf8Error) as cm:
                    self.m.tokenize(bytes.fromhex(r["hex"]))
                self.assertEqual(cm.exception.code, gemfa.Status.INVALID_UTF8)

    def test_lone_surrogate_str_is_invalid_utf8(self):
        with self.assertRaises(gemfa.InvalidUtf8Error):
            self.m.tokenize("a\ud800b")

    def test_nul_inside_text_is_kept(self):
        ids = self.m.tokenize("a\0b", add_bos=False)
        self.assertEqual(self.m.detokenize(ids), "a\0b")

    def test_parse_special_flag(self):
        sot = self.m.start_of_turn_id
        self.assertEqual(self.m.tokenize("<start_of_turn>", add_bos=False), [sot])
        plain = self.m.tokenize("<start_of_turn>", add_bos=False, parse_special=False)
        self.assertNotIn(sot, plain)
        self.assertEqual(self.m.detokenize(plain), "<start_of_turn>")

    def test_empty(self):
        self.assertEqual(self.m.tokenize("", add_bos=False), [])
        self.assertEqual(self.m.tokenize(""), [self.m.bos_id])
        self.assertEqual(self.m.detokenize([]), "")

    def test_bad_ids(self):
        for bad in ([-1], [self.m.vocab_size], [2 ** 31 - 1], [2 ** 40]):
            with self.subTest(ids=bad):
                with self.assertRaises(gemfa.InvalidTokenError):
                    self.m.detokenize(bad)
        with self.assertRaises(gemfa.InvalidTokenError):
            self.m.token_piece(-5)
        with self.assertRaises(gemfa.InvalidTokenError):
            self.m.detokenizer().feed(self.m.vocab_size)

    def test_wrong_types(self):
        with self.assertRaises(TypeError):
            self.m.tokenize(123)
        with self.assertRaises(TypeError):
            self.m.tokenize(None)
        with self.assertRaises(TypeError):
            self.m.detokenize("abc")
        with self.assertRaises(TypeError):
            self.m.detokenize([1.5])
        with self.assertRaises(TypeError):
            self.m.detokenize([True])
        with self.assertRaises(TypeError):
            self.m.detokenize(5)

    def test_stream_closed(self):
        d = self.m.detokenizer()
        d.close()
        d.close()
        with self.assertRaises(gemfa.ClosedError):
            d.feed(2)

    def test_stream_unchanged_after_bad_id(self):
        # a held-back partial character survives a rejected id
        r = next(x for x in jsonl("tiny.decode.expected.jsonl") if x["decoded"] == "€")
        with self.m.detokenizer() as d:
            out = [d.feed(r["ids"][0])]
            with self.assertRaises(gemfa.InvalidTokenError):
                d.feed(-1)
            out += [d.feed(i) for i in r["ids"][1:]]
            self.assertEqual("".join(out) + d.flush(), "€")


class TestChatTemplate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model()
        cls.records = jsonl("tiny.chat.expected.jsonl")

    def test_render_and_tokenize(self):
        for r in self.records:
            with self.subTest(id=r["id"]):
                if "error" in r:
                    with self.assertRaises(gemfa.TemplateError):
                        self.m.apply_chat_template(r["messages"], r["add_generation_prompt"])
                    with self.assertRaises(gemfa.TemplateError):
                        self.m.chat_tokenize(r["messages"], r["add_generation_prompt"])
                    continue
                text = self.m.apply_chat_template(r["messages"],
                                                  add_generation_prompt=r["add_generation_prompt"])
                self.assertEqual(text, r["rendered"])
                self.assertEqual(self.m.tokenize(text, add_bos=False), r["ids"])
                self.assertEqual(self.m.chat_tokenize(r["messages"], r["add_generation_prompt"]),
                                 r["ids"])

    def test_message_forms(self):
        r = self.records[0]
        as_tuples = [(x["role"], x["content"]) for x in r["messages"]]
        self.assertEqual(self.m.apply_chat_template(as_tuples), r["rendered"])

        class Msg:
            def __init__(self, role, content):
                self.role, self.content = role, content
        as_objects = [Msg(x["role"], x["content"]) for x in r["messages"]]
        self.assertEqual(self.m.apply_chat_template(as_objects), r["rendered"])

    def test_injection_safe(self):
        msgs = [{"role": "user", "content": "a<end_of_turn>b"}]
        eot = self.m.end_of_turn_id
        default = self.m.chat_tokenize(msgs)
        safe = self.m.chat_tokenize(msgs, injection_safe=True)
        self.assertEqual(default.count(eot), 2)  # the typed one parsed, as in HF
        self.assertEqual(safe.count(eot), 1)

    def test_template_errors(self):
        with self.assertRaises(gemfa.TemplateError):
            self.m.apply_chat_template([])
        with self.assertRaises(gemfa.TemplateError):
            self.m.apply_chat_template([{"role": "assistant", "content": "x"}])
        with self.assertRaises(TypeError):
            self.m.apply_chat_template("hello")
        with self.assertRaises(TypeError):
            self.m.apply_chat_template([{"role": "user"}])
        with self.assertRaises(TypeError):
            self.m.apply_chat_template([{"role": 1, "content": "x"}])
        with self.assertRaises(gemfa.InvalidUtf8Error):
            self.m.apply_chat_template([{"role": "user", "content": b"\xff"}])


if __name__ == "__main__":
    unittest.main()
