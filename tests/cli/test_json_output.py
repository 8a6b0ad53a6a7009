"""`gemfa generate --json-schema FILE` / `--json-mode` on the tiny model:
answers that end parse (Python's json) and match the schema (checked here by
hand for this one schema), cut answers say so, and bad schemas or option
combinations fail with a message."""
import json
import os
import subprocess
import tempfile
import unittest

CLI = os.environ["GEMFA_CLI"]
TINY = os.path.join(os.environ["GEMFA_TEST_DATA"], "tiny-gemma3n")
SCHEMA = {"type": "object",
          "properties": {"name": {"type": "string", "maxLength": 5},
                         "n": {"type": "integer", "minimum": 0, "maximum": 9}},
          "required": ["name", "n"], "additionalProperties": False}


def gemfa(*args):
    p = subprocess.run([CLI, "generate", "-m", TINY, "-p", "JSON:", *args], capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


class JsonOutput(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.schema = os.path.join(self.dir.name, "s.json")
        with open(self.schema, "w") as f:
            json.dump(SCHEMA, f)

    def tearDown(self):
        self.dir.cleanup()

    def test_schema_answers_validate(self):
        for seed in range(1, 13):
            rc, out, err = gemfa("--json-schema", self.schema, "--temp", "1.5", "--seed",
                                 str(seed), "-n", "120", "--json")
            self.assertEqual(rc, 0, err)
            r = json.loads(out)
            self.assertEqual(r["stop"], "eog", r)
            v = json.loads(r["text"])
            self.assertEqual(set(v), {"name", "n"})
            self.assertIsInstance(v["name"], str)
            self.assertLessEqual(len(v["name"]), 5)
            self.assertIs(type(v["n"]), int)
            self.assertTrue(0 <= v["n"] <= 9)

    def test_streamed_text_is_the_json(self):
        rc, out, err = gemfa("--json-schema", self.schema, "--seed", "4", "-n", "120")
        self.assertEqual(rc, 0, err)
        json.loads(out)

    def test_json_mode_cut_is_reported(self):
        cut = 0
        for seed in range(1, 9):
            rc, out, err = gemfa("--json-mode", "--temp", "1.5", "--seed", str(seed), "-n", "6",
                                 "--json")
            self.assertEqual(rc, 0, err)
            r = json.loads(out)
            if r["stop"] == "eog":
                json.loads(r["text"])
            else:
                self.assertEqual(r["stop"], "length")
                cut += 1
        self.assertGreater(cut, 0)
        rc, out, err = gemfa("--json-mode", "--temp", "1.5", "--seed", "1", "-n", "1")
        self.assertIn("cut", err)

    def test_errors(self):
        rc, _, err = gemfa("--json-schema", os.path.join(self.dir.name, "missing.json"))
        self.assertEqual(rc, 1)
        self.assertIn("missing.json", err)
        bad = os.path.join(self.dir.name, "bad.json")
        for text, word in (('{"type":"string","pattern":"a"}', "pattern"), ("{", "FORMAT"),
                           ('{"maxLength":-1}', "maxLength")):
            with open(bad, "w") as f:
                f.write(text)
            rc, _, err = gemfa("--json-schema", bad)
            self.assertEqual(rc, 1, text)
            self.assertIn(word, err)
        rc, _, err = gemfa("--json-schema", self.schema, "--json-mode")
        self.assertEqual(rc, 2)
        self.assertIn("exclude", err)


if __name__ == "__main__":
    unittest.main()
