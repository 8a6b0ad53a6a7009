"""JSON-constrained generation: Session.generate(json_schema=...), gemfa.JsonConstraint
and Sampler.set_constraint on the tiny model."""
from __future__ import annotations

import json
import unittest

import gemfa

from support import tiny_model

SCHEMA = {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 5},
                         "n": {"type": "integer", "minimum": 0, "maximum": 9},
                         "tags": {"type": "array", "items": {"enum": ["a", "ب"]}, "maxItems": 2}},
          "required": ["name", "n"]}


class TestJson(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = tiny_model()

    def check(self, v):
        self.assertTrue(set(v) <= {"name", "n", "tags"} and {"name", "n"} <= set(v), v)
        self.assertLessEqual(len(v["name"]), 5)
        self.assertIs(type(v["n"]), int)
        self.assertTrue(0 <= v["n"] <= 9)
        self.assertTrue(set(v.get("tags", [])) <= {"a", "ب"})

    def test_schema_dict_and_text(self):
        for seed in range(6):
            schema = SCHEMA if seed % 2 else json.dumps(SCHEMA)
            with self.m.session(context=512) as s:
                g = s.generate("JSON:", json_schema=schema, max_new_tokens=150, temperature=1.5,
                               seed=seed)
                text = "".join(g)
                self.assertEqual(g.stop_reason, "eog")
                self.check(json.loads(text))

    def test_any_json(self):
        ended = 0
        for seed in range(6):
            with self.m.session(context=512) as s:
                g = s.generate("x", json_schema={}, max_new_tokens=40, temperature=1.5, seed=seed)
                list(g)
                if g.stop_reason == "eog":
                    ended += 1
                    json.loads(g.text)
                else:
                    self.assertEqual(g.stop_reason, "length")
        self.assertGreater(ended, 0)

    def test_user_sampler_gets_its_constraint_back(self):
        smp = gemfa.Sampler(temperature=1.2, seed=3)
        c = gemfa.JsonConstraint(self.m, {"type": "boolean"})
        smp.set_constraint(c)
        with self.m.session(context=256) as s:
            g = s.generate("x", json_schema={"type": "null"}, sampler=smp, max_new_tokens=10)
            list(g)
            self.assertEqual(g.text.strip(), "null")
        self.assertIs(smp.constraint, c)
        smp.set_constraint(None)
        self.assertIsNone(smp.constraint)
        c.close()
        smp.close()

    def test_constraint_object(self):
        c = gemfa.JsonConstraint(self.m, {"enum": [True]})
        allowed = c.allowed()
        self.assertTrue(allowed)
        self.assertFalse(c.complete)
        for tok in allowed:
            piece = self.m.detokenize([tok])
            self.assertTrue("true".startswith(piece.lstrip()) or piece.isspace(), piece)
        with self.assertRaises(gemfa.InvalidTokenError):
            c.accept(1024 + 5)  # outside the vocabulary
        with self.assertRaises(gemfa.InvalidTokenError):
            c.accept(1)  # end of generation before the value
        c.reset()
        c.close()

    def test_bad_schemas(self):
        with self.m.session(context=64) as s:
            with self.assertRaises(gemfa.UnsupportedError):
                s.generate("x", json_schema={"type": "string", "pattern": "a"})
            with self.assertRaises(gemfa.FormatError):
                s.generate("x", json_schema="{")
            with self.assertRaises(gemfa.InvalidArgumentError):
                s.generate("x", json_schema={"maxLength": -1})
            with self.assertRaises(TypeError):
                s.generate("x", json_schema=3)
            self.assertEqual(s.n_tokens, 0)  # nothing ran
        with self.assertRaises(TypeError):
            gemfa.Sampler().set_constraint("not a constraint")


if __name__ == "__main__":
    unittest.main()
