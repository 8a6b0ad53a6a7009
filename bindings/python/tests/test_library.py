"""Finding the shared library: GEMFA_LIBRARY, next to the package, the system loader."""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import gemfa

from test_declarations import loaded_library_file

PKG_DIR = os.path.dirname(os.path.abspath(gemfa.__file__))


def run_python(code: str, env_update: dict, pythonpath: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMFA_LIBRARY", "LD_LIBRARY_PATH")}
    env.update(env_update)
    env["PYTHONPATH"] = pythonpath
    # cwd: "/" so that the package in the current directory does not shadow PYTHONPATH
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, cwd="/")


class TestNamespace(unittest.TestCase):
    def test_only_public_names(self):
        # a fresh interpreter: what `import gemfa; dir(gemfa)` shows a user
        code = ("import gemfa, json; print(json.dumps([sorted(gemfa.__all__), "
                "[n for n in dir(gemfa) if not n.startswith('__')]]))")
        r = run_python(code, {}, os.path.dirname(PKG_DIR))
        self.assertEqual(r.returncode, 0, r.stderr)
        public, shown = json.loads(r.stdout)
        self.assertEqual(shown, public)
        self.assertNotIn("_core", shown)
        self.assertNotIn("annotations", shown)
        for name in public:
            self.assertTrue(hasattr(gemfa, name), name)
        self.assertIn("NotFoundError", public)

    def test_private_modules_stay_importable(self):
        from gemfa import _core, _lib  # noqa: F401 - the tests use them
        import gemfa._errors as errors_module
        self.assertIs(errors_module.NotFoundError, gemfa.NotFoundError)
        self.assertTrue(callable(_core.check))


class TestLibrary(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        gemfa.lib()
        cls.libfile = loaded_library_file()
        cls.pythonpath = os.path.dirname(PKG_DIR)

    def test_loaded_with_cdll_so_calls_release_the_gil(self):
        lib = gemfa.lib()
        self.assertIsInstance(lib, ctypes.CDLL)
        self.assertNotIsInstance(lib, ctypes.PyDLL)  # PyDLL would hold the GIL
        for name in ("gemfa_decode", "gemfa_decode_all", "gemfa_decode_batch",
                     "gemfa_model_load", "gemfa_tokenize"):
            flags = getattr(lib, name)._flags_
            self.assertFalse(flags & ctypes._FUNCFLAG_PYTHONAPI, name)

    def test_env_path_is_used(self):
        r = run_python("import gemfa; gemfa.version(); print(gemfa.library_path())",
                       {"GEMFA_LIBRARY": self.libfile}, self.pythonpath)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), os.path.abspath(self.libfile))

    def test_env_path_missing_says_what_was_tried(self):
        bad = "/nonexistent/dir/libgemfa.so.0"
        r = run_python("import gemfa\ntry:\n gemfa.version()\nexcept gemfa.LibraryNotFoundError"
                       " as e:\n print('TRIED', e.tried)\n print(e)",
                       {"GEMFA_LIBRARY": bad}, self.pythonpath)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("TRIED [('/nonexistent/dir/libgemfa.so.0', 'no such file')]", r.stdout)
        self.assertIn("GEMFA_LIBRARY", r.stdout)

    def test_not_a_library(self):
        with tempfile.TemporaryDirectory() as d:
            fake = os.path.join(d, "libgemfa.so.0")
            with open(fake, "w") as f:
                f.write("not an ELF file")
            r = run_python("import gemfa\ntry:\n gemfa.lib()\nexcept OSError as e:\n print(e)",
                           {"GEMFA_LIBRARY": fake}, self.pythonpath)
        self.assertIn(fake, r.stdout)
        self.assertIn("could not be loaded", r.stdout)

    def test_next_to_package(self):
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(PKG_DIR, os.path.join(d, "gemfa"),
                            ignore=shutil.ignore_patterns("__pycache__", "libgemfa*"))
            shutil.copy(self.libfile, os.path.join(d, "gemfa", "libgemfa.so.0"))
            r = run_python("import gemfa; gemfa.version(); print(gemfa.library_path())", {}, d)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), os.path.join(d, "gemfa", "libgemfa.so.0"))

    def test_system_loader(self):
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(PKG_DIR, os.path.join(d, "pkg", "gemfa"),
                            ignore=shutil.ignore_patterns("__pycache__", "libgemfa*"))
            libdir = os.path.join(d, "lib")
            os.mkdir(libdir)
            shutil.copy(self.libfile, os.path.join(libdir, "libgemfa.so.0"))
            code = "import gemfa; print(gemfa.version(), gemfa.library_path())"
            r = run_python(code, {"LD_LIBRARY_PATH": libdir}, os.path.join(d, "pkg"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.split(), [gemfa.version(), "libgemfa.so.0"])
            # and without it, the error lists every place searched
            r = run_python("import gemfa\ntry:\n gemfa.lib()\nexcept gemfa.LibraryNotFoundError"
                           " as e:\n print(len(e.tried)); print(e)", {}, os.path.join(d, "pkg"))
            self.assertIn(os.path.join(d, "pkg", "gemfa", "libgemfa.so.0"), r.stdout)
            self.assertIn("libgemfa.so.0: ", r.stdout)
            self.assertGreaterEqual(int(r.stdout.split()[0]), 5)

    def test_version(self):
        self.assertRegex(gemfa.version(), r"^\d+\.\d+\.\d+$")
        major, minor, patch = map(int, gemfa.version().split("."))
        self.assertEqual(gemfa.version_number(), major * 10000 + minor * 100 + patch)


if __name__ == "__main__":
    unittest.main()
