"""Every function of gemfa.h has a ctypes declaration with matching types, and
every gemfa_ symbol the library exports is declared."""
from __future__ import annotations

import ctypes
import re
import subprocess
import unittest
from ctypes import (POINTER, c_char, c_char_p, c_float, c_int, c_int32, c_int64, c_size_t,
                    c_uint, c_uint64, c_void_p)

import gemfa
from gemfa import _lib

from support import HEADER

L = _lib
# C type (as written in gemfa.h, whitespace-normalized) -> ctypes type.
C_TYPES = {
    "void": None,
    "unsigned": c_uint,
    "int": c_int,
    "size_t": c_size_t,
    "int32_t": c_int32,
    "int64_t": c_int64,
    "uint64_t": c_uint64,
    "float": c_float,
    "void *": c_void_p,
    "const void *": c_void_p,
    "const char *": c_char_p,
    "char *": L.char_buf,
    "const char **": POINTER(L.char_buf),
    "gemfa_status": c_int,
    "gemfa_log_level": c_int,
    "gemfa_weight_type": c_int,
    "gemfa_kv_type": c_int,
    "gemfa_kv_type *": POINTER(c_int),
    "gemfa_model_prop": c_int,
    "gemfa_log_fn": L.LOG_FN,
    "gemfa_progress_fn": L.PROGRESS_FN,
    "gemfa_cancel_fn": L.CANCEL_FN,
    "gemfa_draft_fn": L.DRAFT_FN,
    "gemfa_speculator_stats *": POINTER(L.SpeculatorStats),
    "int *": POINTER(c_int),
    "int32_t *": POINTER(c_int32),
    "const int32_t *": POINTER(c_int32),
    "const int32_t **": POINTER(POINTER(c_int32)),
    "int64_t *": POINTER(c_int64),
    "size_t *": POINTER(c_size_t),
    "float *": POINTER(c_float),
    "const float *": POINTER(c_float),
    "const float **": POINTER(POINTER(c_float)),
    "gemfa_layer_type *": POINTER(c_int),
    "const gemfa_message *": POINTER(L.Message),
    "uint8_t *": POINTER(ctypes.c_uint8),
    "const char *const *": POINTER(c_char_p),
    "const size_t *": POINTER(c_size_t),
}
for cname, pyname in [("gemfa_model", "model_p"), ("gemfa_model_options", "model_options_p"),
                      ("gemfa_detok_stream", "detok_stream_p"), ("gemfa_context", "context_p"),
                      ("gemfa_context_options", "context_options_p"),
                      ("gemfa_session", "session_p"),
                      ("gemfa_session_options", "session_options_p"),
                      ("gemfa_sampler", "sampler_p"),
                      ("gemfa_stop_matcher", "stop_matcher_p"),
                      ("gemfa_constraint", "constraint_p"),
                      ("gemfa_speculator", "speculator_p")]:
    t = getattr(L, pyname)
    C_TYPES[f"{cname} *"] = t
    C_TYPES[f"const {cname} *"] = t
    C_TYPES[f"{cname} **"] = POINTER(t)
    C_TYPES[f"{cname} *const *"] = POINTER(t)


def _norm(ctype: str) -> str:
    ctype = re.sub(r"\s+", " ", ctype.strip())
    ctype = re.sub(r"\s*\*\s*", " *", ctype)       # "char*" / "char *" -> "char *"
    ctype = ctype.replace("* *", "**").replace("*const", "*const ").replace("  ", " ")
    return ctype.strip()


def _split_param(param: str) -> str:
    """'const gemfa_model *model' -> 'const gemfa_model *'."""
    param = param.strip()
    m = re.match(r"^(.*?)([A-Za-z_]\w*)$", param)
    assert m, param
    return _norm(m.group(1))


def parse_header(path: str):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = {}
    for m in re.finditer(r"GEMFA_API\s+([^;(]*?)\b(gemfa_\w+)\s*\(([^)]*)\)\s*;", text):
        ret, name, params = _norm(m.group(1)), m.group(2), m.group(3).strip()
        args = [] if params in ("void", "") else [_split_param(p) for p in params.split(",")]
        out[name] = (ret, args)
    return out


class TestDeclarations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.header = parse_header(HEADER)

    def test_header_parsed(self):
        # Guard against a parser that silently finds nothing.
        self.assertGreater(len(self.header), 50)
        self.assertIn("gemfa_decode_batch", self.header)

    def test_every_header_function_declared_with_matching_types(self):
        for name, (ret, args) in self.header.items():
            with self.subTest(function=name):
                self.assertIn(name, L.SIGNATURES, "not declared in gemfa/_lib.py")
                restype, argtypes = L.SIGNATURES[name]
                self.assertIn(ret, C_TYPES, f"unknown C type {ret!r}: extend the test map")
                self.assertIs(restype, C_TYPES[ret], "return type")
                self.assertEqual(len(argtypes), len(args), "argument count")
                for i, (c, py) in enumerate(zip(args, argtypes)):
                    self.assertIn(c, C_TYPES, f"unknown C type {c!r}: extend the test map")
                    self.assertIs(py, C_TYPES[c], f"argument {i} ({c})")

    def test_no_declaration_without_header_function(self):
        self.assertEqual(sorted(set(L.SIGNATURES) - set(self.header)), [])

    def test_message_struct_layout(self):
        # struct gemfa_message { const char *role; const char *content; size_t content_len; }
        self.assertEqual(ctypes.sizeof(L.Message), 3 * ctypes.sizeof(c_void_p))
        self.assertEqual([f[0] for f in L.Message._fields_], ["role", "content", "content_len"])

    def test_exported_symbols_all_declared(self):
        gemfa.lib()
        path = loaded_library_file()
        nm = subprocess.run(["nm", "-D", "--defined-only", path], check=True,
                            capture_output=True, text=True).stdout
        exported = {line.split()[-1] for line in nm.splitlines()
                    if len(line.split()) == 3 and line.split()[1] == "T"}
        exported = {s for s in exported if s.startswith("gemfa_")}
        self.assertGreater(len(exported), 50)
        self.assertEqual(sorted(exported - set(L.SIGNATURES)), [], "exported but not declared")
        self.assertEqual(sorted(set(L.SIGNATURES) - exported), [], "declared but not exported")

    def test_status_enum_matches_library_names(self):
        for st in gemfa.Status:
            expected = "GEMFA_OK" if st == 0 else "GEMFA_ERR_" + st.name
            self.assertEqual(gemfa.status_name(st), expected)
        self.assertEqual(gemfa.status_name(999), "GEMFA_ERR_UNKNOWN")

    def test_status_enum_covers_the_header(self):
        with open(HEADER, encoding="utf-8") as f:
            text = f.read()
        body = text[text.index("typedef enum gemfa_status"):text.index("} gemfa_status;")]
        in_header = {name: int(v) for name, v in
                     re.findall(r"GEMFA_(?:ERR_)?(\w+) = (\d+)", body)}
        self.assertIn("NOT_FOUND", in_header)
        self.assertEqual({s.name: int(s) for s in gemfa.Status}, in_header)
        # and one exception class per status
        for name, v in in_header.items():
            if v:
                self.assertIsNot(type(gemfa.error_for(v, "")), gemfa.Error, name)


def loaded_library_file() -> str:
    """The file of the libgemfa mapped into this process."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and "libgemfa" in parts[-1]:
                return parts[-1]
    raise AssertionError("libgemfa is not mapped")


if __name__ == "__main__":
    unittest.main()
