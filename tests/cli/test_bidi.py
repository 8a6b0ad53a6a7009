"""`gemfa generate --bidi` and `gemfa chat --bidi`: every finished line comes
out in the visual order GNU FriBidi's own fribidi_log2vis gives (called here
through ctypes, independently of the C code), minus the U+FEFF filler FriBidi
leaves after a LAM-ALEF ligature; on a terminal, rows fit its width.  Skipped
when this build of gemfa has no FriBidi."""
import collections
import ctypes
import ctypes.util
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import unicodedata
import unittest

CLI = os.environ["GEMFA_CLI"]
TINY = os.path.join(os.environ["GEMFA_TEST_DATA"], "tiny-gemma3n")
PROMPT = "سلام! لطفاً در مورد تاریخ ایران توضیح کوتاهی بدهید."
FILL = "\ufeff"


def gemfa(*args, stdin=None):
    p = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def build_has_fribidi():
    rc, _, err = gemfa("generate", "-m", TINY, "-p", "x", "-n", "0", "--bidi")
    if rc != 0:
        assert rc == 2 and "lacks GNU FriBidi" in err, err
        return False
    return True


def load_fribidi():
    for name in ("libfribidi.so.0", ctypes.util.find_library("fribidi")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                pass
    return None


HAS_FRIBIDI = build_has_fribidi()
FRIBIDI = load_fribidi()
FRIBIDI_PAR_ON = 0x40  # FRIBIDI_TYPE_ON_VAL: direction from the first strong character


def visual(line):
    """fribidi_log2vis of one line (shaping and reordering with
    FRIBIDI_FLAGS_DEFAULT | FRIBIDI_FLAGS_ARABIC), ligature fill dropped."""
    if not line:
        return line
    n = len(line)
    src = (ctypes.c_uint32 * n)(*map(ord, line))
    out = (ctypes.c_uint32 * n)()
    direction = ctypes.c_uint32(FRIBIDI_PAR_ON)
    ok = FRIBIDI.fribidi_log2vis(src, n, ctypes.byref(direction), out, None, None, None)
    assert ok, "fribidi_log2vis failed"
    return "".join(map(chr, out)).replace(FILL, "")


def columns(s):
    """Terminal columns s takes at most: none for combining marks, format
    and control characters (ZWNJ), up to 8 for a tab, one for the rest."""
    return sum(8 if c == "\t" else unicodedata.category(c) not in ("Mn", "Me", "Cf", "Cc")
               for c in s)


def is_rtl_letter(c):
    return "\u0600" <= c <= "\u06ff"


@unittest.skipUnless(HAS_FRIBIDI, "this build of gemfa has no GNU FriBidi (-Dbidi): --bidi "
                                  "reports that instead, as checked by test_without_fribidi")
@unittest.skipUnless(FRIBIDI, "libfribidi.so.0 is not loadable from Python")
class Bidi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        """A seed whose answer has several lines with Persian letters."""
        for seed in range(1, 100):
            args = ["-p", PROMPT, "-n", "60", "--seed", str(seed)]
            rc, out, err = gemfa("generate", "-m", TINY, *args, "--json")
            assert rc == 0, err
            text = json.loads(out)["text"]
            rtl = [l for l in text.split("\n") if any(map(is_rtl_letter, l))]
            if len(rtl) >= 2 and "\n" in text.strip("\n"):
                cls.args, cls.text = args, text
                return
        raise AssertionError("no seed in 1..99 gives two Persian lines")

    def test_known_line(self):
        """A fixed case worked out by hand: a right-to-left paragraph puts the
        Latin word and the digits (left to right inside) on the left, and the
        letters take their joining forms."""
        self.assertEqual(visual("سلام 123 abc"),
                         "abc 123 \ufee1\ufefc\ufeb3")  # MEEM final, LAM-ALEF final, SEEN initial

    def test_generate_lines_are_in_visual_order(self):
        rc, out, err = gemfa("generate", "-m", TINY, *self.args, "--bidi")
        self.assertEqual(rc, 0, err)
        want = [visual(l) for l in self.text.split("\n")]
        got = out.split("\n")
        if not self.text.endswith("\n"):
            self.assertEqual(got[-1], "")  # the newline before the statistics
            got = got[:-1]
        self.assertEqual(got, want)
        self.assertNotEqual(got, self.text.split("\n"))  # something was reordered

    def test_chat_lines_are_in_visual_order(self):
        args = ["-n", "60", "--seed", self.args[-1], "--temp", "1"]
        rc, out, err = gemfa("chat", "-m", TINY, *args, "--json", stdin=PROMPT + "\n")
        self.assertEqual(rc, 0, err)
        text = json.loads(out)["text"]
        rc, out, err = gemfa("chat", "-m", TINY, *args, "--bidi", stdin=PROMPT + "\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "\n".join(visual(l) for l in text.split("\n")) + "\n")

    def test_rows_fit_the_terminal(self):
        """On a terminal, a line wider than the terminal is broken into rows
        before reordering (else the terminal would wrap the reordered line
        from its visual left): no row is wider, and the rows hold the same
        characters as the visual lines."""
        width = 24
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
        p = subprocess.Popen([CLI, "generate", "-m", TINY, *self.args, "--bidi"], stdout=slave,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        os.close(slave)
        out = b""
        while True:
            r, _, _ = select.select([master], [], [], 60)
            if not r:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        rows = out.decode().replace("\r\n", "\n").split("\n")
        lines = self.text.split("\n")
        self.assertGreater(max(map(columns, lines)), width, "no line is wider than the terminal")
        self.assertGreater(len(rows), len(lines))
        for row in rows:
            self.assertLessEqual(columns(row), width, row)
        self.assertEqual(collections.Counter("".join(rows)),
                         collections.Counter("".join(visual(l) for l in lines)))


class WithoutFribidi(unittest.TestCase):
    def test_without_fribidi(self):
        rc, _, err = gemfa("generate", "-m", TINY, "-p", "x", "-n", "1", "--bidi")
        if HAS_FRIBIDI:
            self.assertEqual(rc, 0, err)
        else:
            self.assertEqual(rc, 2)
            self.assertIn("lacks GNU FriBidi", err)


if __name__ == "__main__":
    unittest.main()
