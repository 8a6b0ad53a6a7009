"""docs/cli.md and `gemfa COMMAND --help` list the same options: for every
subcommand `gemfa --help` names, the option names in its --help (lines that
start with two spaces and '-') equal those of its section in docs/cli.md (the
first cells of its option tables, plus the common, vocabulary or sampling
option tables when its "Options:" line names them)."""
import os
import re
import subprocess
import unittest

CLI = os.environ["GEMFA_CLI"]
DOC = os.path.join(os.environ["GEMFA_SOURCE_ROOT"], "docs", "cli.md")
OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
SHARED = {"common options": "Common options", "vocabulary options": "Vocabulary options",
          "sampling options": "Sampling options"}


def run(*args):
    p = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def help_options(text):
    """Option names of a --help text: the option column of each option line."""
    names = set()
    for line in text.splitlines():
        if line.startswith("  -"):
            column = re.split(r"\s{2,}", line.strip())[0]
            names.update(OPTION.findall(column))
    return names


def commands():
    """Subcommand names as `gemfa --help` lists them."""
    text = run("--help")
    block = text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def doc_sections(text):
    """{heading: body} for every ## and ### heading."""
    out, name = {}, None
    for line in text.splitlines():
        m = re.match(r"#{2,3} (.+)", line)
        if m:
            name = m.group(1).strip()
            out[name] = []
        elif name:
            out[name].append(line)
    return out


def table_options(lines):
    names = set()
    for line in lines:
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2 and not set(cells[1].strip()) <= {"-"}:
            for code in re.findall(r"`([^`]*)`", cells[1]):
                names.update(OPTION.findall(code) if code.startswith("-") else [])
    return names


def doc_options(sections, name):
    lines = sections[name]
    names = table_options(lines)
    for line in lines:
        if line.startswith("Options:"):
            for phrase, section in SHARED.items():
                if phrase in line:
                    names |= table_options(sections[section])
    return names


class HelpMatchesDocs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DOC, encoding="utf-8") as f:
            cls.sections = doc_sections(f.read())
        cls.commands = commands()

    def test_every_command_has_a_section(self):
        self.assertGreaterEqual(len(self.commands), 9)
        for cmd in self.commands:
            self.assertIn(cmd, self.sections, f"docs/cli.md has no section '## {cmd}'")

    def test_options_agree(self):
        for cmd in self.commands:
            with self.subTest(cmd=cmd):
                in_help = help_options(run(cmd, "--help"))
                in_docs = doc_options(self.sections, cmd)
                self.assertTrue(in_help, f"{cmd} --help lists no options")
                self.assertEqual(in_help - in_docs, set(), f"{cmd}: in --help, not in docs/cli.md")
                self.assertEqual(in_docs - in_help, set(), f"{cmd}: in docs/cli.md, not in --help")

    def test_every_short_option_has_a_long_form(self):
        for cmd in self.commands:
            for line in run(cmd, "--help").splitlines():
                if re.match(r"  -\w[ ,]", line):
                    self.assertRegex(line, r"^  -\w, --[\w-]+", f"{cmd}: {line}")

    def test_vocabulary_commands_list_only_what_applies(self):
        for cmd in ("tokenize", "detokenize", "template"):
            names = help_options(run(cmd, "--help"))
            for irrelevant in ("-t", "--threads", "--weights", "--json"):
                self.assertNotIn(irrelevant, names, cmd)
            for needed in ("-m", "--model", "--help", "--version"):
                self.assertIn(needed, names, cmd)

    def test_the_parser_sees_options(self):
        """The parsers themselves: a doc table row and a help line."""
        self.assertEqual(table_options(["| `-n`, `--max-tokens N` | x |"]), {"-n", "--max-tokens"})
        self.assertEqual(help_options("  -c, --ctx N     context -x\n  not -y\n"), {"-c", "--ctx"})


if __name__ == "__main__":
    unittest.main()
