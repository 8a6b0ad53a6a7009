"""Finding libgemfa and declaring every C function of gemfa.h for ctypes.

The library is loaded lazily, on the first call that needs it, so that
``import gemfa`` always works (documentation tools, type checkers).

Search order (the error lists every attempt and why it failed):

1. ``$GEMFA_LIBRARY``: a path to the shared library.  When it is set it is the
   only candidate: an explicit choice is never silently replaced.
2. Next to the package: ``libgemfa.so.0`` / ``libgemfa.so`` in the package
   directory, then in the directory that contains the package.
3. The system loader: ``libgemfa.so.0`` (``LD_LIBRARY_PATH``, rpath, ld.so
   cache), then whatever ``ctypes.util.find_library("gemfa")`` names.

The library is opened with :class:`ctypes.CDLL`, which releases the GIL for
the duration of every foreign call (unlike ``ctypes.PyDLL``); decoding in one
Python thread therefore lets other Python threads run.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_float, c_int,
                    c_int32, c_int64, c_size_t, c_uint, c_uint8, c_uint64, c_void_p)
from typing import List, Optional, Tuple

# The major version this binding speaks; a library with another major has
# another ABI.  The minor must be at least the one the declarations follow.
ABI_MAJOR = 0
ABI_MIN_MINOR = 1

LIBRARY_ENV = "GEMFA_LIBRARY"
_SONAMES = ("libgemfa.so.0", "libgemfa.so")


class LibraryNotFoundError(OSError):
    """libgemfa could not be loaded; ``tried`` lists (candidate, reason)."""

    def __init__(self, tried: List[Tuple[str, str]]):
        self.tried = tried
        lines = "\n".join(f"  {cand}: {why}" for cand, why in tried)
        super().__init__(
            "libgemfa could not be loaded; tried:\n" + lines +
            f"\nSet {LIBRARY_ENV} to the path of libgemfa.so.0, or install libgemfa "
            "where the system loader finds it (LD_LIBRARY_PATH, ldconfig).")


# Opaque handle types: distinct pointer types, so ctypes refuses a session
# where a model is expected.
class _Opaque(Structure):
    pass


def _opaque(name: str):
    return POINTER(type(name, (_Opaque,), {}))


model_p = _opaque("gemfa_model")
model_options_p = _opaque("gemfa_model_options")
detok_stream_p = _opaque("gemfa_detok_stream")
context_p = _opaque("gemfa_context")
context_options_p = _opaque("gemfa_context_options")
session_p = _opaque("gemfa_session")
session_options_p = _opaque("gemfa_session_options")
sampler_p = _opaque("gemfa_sampler")
stop_matcher_p = _opaque("gemfa_stop_matcher")
constraint_p = _opaque("gemfa_constraint")
speculator_p = _opaque("gemfa_speculator")


class SpeculatorStats(Structure):
    """struct gemfa_speculator_stats (layout frozen by the ABI)."""
    _fields_ = [("steps", c_uint64), ("drafted", c_uint64), ("accepted", c_uint64),
                ("emitted", c_uint64), ("target_rows", c_uint64), ("draft_rows", c_uint64),
                ("draft_seconds", ctypes.c_double), ("verify_seconds", ctypes.c_double)]


class Message(Structure):
    """struct gemfa_message (layout frozen by the ABI)."""
    _fields_ = [("role", c_char_p), ("content", c_char_p), ("content_len", c_size_t)]


status_t = c_int  # enum gemfa_status
char_buf = POINTER(c_char)  # caller-provided output buffer / returned text pointer

LOG_FN = CFUNCTYPE(None, c_void_p, c_int, c_char_p)
PROGRESS_FN = CFUNCTYPE(c_int, c_void_p, c_float, c_char_p)
CANCEL_FN = CFUNCTYPE(c_int, c_void_p)
# int (*)(void *user, const int32_t *tokens, size_t n, int32_t *ids, size_t max)
DRAFT_FN = CFUNCTYPE(c_int, c_void_p, POINTER(c_int32), c_size_t, POINTER(c_int32), c_size_t)

P = POINTER

# name -> (restype, argtypes).  Every function of include/gemfa.h, in its
# order; tests/test_declarations.py checks this table against the header and
# against the symbols the built library exports.
SIGNATURES = {
    # version, status, logging
    "gemfa_version_number": (c_uint, []),
    "gemfa_version_string": (c_char_p, []),
    "gemfa_status_name": (c_char_p, [status_t]),
    "gemfa_last_error": (c_char_p, []),
    "gemfa_set_log_callback": (None, [LOG_FN, c_void_p, c_int]),
    # model options and loading
    "gemfa_model_options_new": (status_t, [P(model_options_p)]),
    "gemfa_model_options_free": (None, [model_options_p]),
    "gemfa_model_options_set_weights": (status_t, [model_options_p, c_int]),
    "gemfa_model_options_set_vocab_only": (status_t, [model_options_p, c_int]),
    "gemfa_model_options_set_progress": (status_t, [model_options_p, PROGRESS_FN, c_void_p]),
    "gemfa_model_options_set_threads": (status_t, [model_options_p, c_int]),
    "gemfa_model_options_add_lora": (status_t, [model_options_p, c_char_p, c_float]),
    "gemfa_model_load": (status_t, [c_char_p, model_options_p, P(model_p)]),
    "gemfa_model_free": (None, [model_p]),
    "gemfa_model_get": (status_t, [model_p, c_int, P(c_int64)]),
    "gemfa_model_layer": (status_t, [model_p, c_int, P(c_int), P(c_int), P(c_int64), P(c_float)]),
    "gemfa_model_is_eog": (c_int, [model_p, c_int32]),
    "gemfa_model_eog_ids": (status_t, [model_p, P(c_int32), c_size_t, P(c_size_t)]),
    # MatFormer sub-models
    "gemfa_model_options_set_matformer": (status_t, [model_options_p, c_char_p]),
    "gemfa_model_derive_submodel": (status_t, [model_p, c_char_p, P(model_p)]),
    "gemfa_model_base_layer": (status_t, [model_p, c_int, P(c_int)]),
    "gemfa_model_matformer": (c_char_p, [model_p]),
    # tokenizer
    "gemfa_tokenize": (status_t, [model_p, c_char_p, c_size_t, c_uint, P(c_int32), c_size_t,
                                  P(c_size_t)]),
    "gemfa_detokenize": (status_t, [model_p, P(c_int32), c_size_t, c_uint, char_buf, c_size_t,
                                    P(c_size_t)]),
    "gemfa_token_piece": (status_t, [model_p, c_int32, char_buf, c_size_t, P(c_size_t)]),
    "gemfa_token_bytes": (status_t, [model_p, c_int32, char_buf, c_size_t, P(c_size_t)]),
    "gemfa_token_id": (status_t, [model_p, c_char_p, c_size_t, P(c_int32)]),
    "gemfa_detok_stream_new": (status_t, [model_p, c_uint, P(detok_stream_p)]),
    "gemfa_detok_stream_free": (None, [detok_stream_p]),
    "gemfa_detok_stream_reset": (None, [detok_stream_p]),
    "gemfa_detok_stream_feed": (status_t, [detok_stream_p, c_int32, P(char_buf), P(c_size_t)]),
    "gemfa_detok_stream_flush": (status_t, [detok_stream_p, P(char_buf), P(c_size_t)]),
    # stop strings
    "gemfa_stop_matcher_new": (status_t, [P(c_char_p), P(c_size_t), c_size_t,
                                          P(stop_matcher_p)]),
    "gemfa_stop_matcher_free": (None, [stop_matcher_p]),
    "gemfa_stop_matcher_reset": (None, [stop_matcher_p]),
    "gemfa_stop_matcher_feed": (status_t, [stop_matcher_p, c_char_p, c_size_t, P(char_buf),
                                           P(c_size_t), P(c_int)]),
    "gemfa_stop_matcher_flush": (status_t, [stop_matcher_p, P(char_buf), P(c_size_t)]),
    "gemfa_stop_matcher_held": (c_size_t, [stop_matcher_p]),
    # chat template
    "gemfa_apply_chat_template": (status_t, [model_p, P(Message), c_size_t, c_int, char_buf,
                                             c_size_t, P(c_size_t)]),
    "gemfa_chat_tokenize": (status_t, [model_p, P(Message), c_size_t, c_int, c_uint, P(c_int32),
                                       c_size_t, P(c_size_t)]),
    # context
    "gemfa_context_options_new": (status_t, [P(context_options_p)]),
    "gemfa_context_options_free": (None, [context_options_p]),
    "gemfa_context_options_set_threads": (status_t, [context_options_p, c_int]),
    "gemfa_context_options_set_cancel": (status_t, [context_options_p, CANCEL_FN, c_void_p]),
    "gemfa_context_new": (status_t, [model_p, context_options_p, P(context_p)]),
    "gemfa_context_free": (None, [context_p]),
    # session
    "gemfa_session_options_new": (status_t, [P(session_options_p)]),
    "gemfa_session_options_free": (None, [session_options_p]),
    "gemfa_session_options_set_max_context": (status_t, [session_options_p, c_int64]),
    "gemfa_session_options_set_kv_type": (status_t, [session_options_p, c_int]),
    "gemfa_session_kv_type": (c_int, [session_p]),
    "gemfa_session_kv_bytes": (c_size_t, [session_p]),
    "gemfa_kv_type_name": (c_char_p, [c_int]),
    "gemfa_kv_type_parse": (status_t, [c_char_p, P(c_int)]),
    "gemfa_session_new": (status_t, [context_p, session_options_p, P(session_p)]),
    "gemfa_session_free": (None, [session_p]),
    "gemfa_decode": (status_t, [session_p, P(c_int32), c_size_t, P(P(c_float))]),
    "gemfa_decode_all": (status_t, [session_p, P(c_int32), c_size_t, P(c_float), c_size_t]),
    "gemfa_decode_batch": (status_t, [context_p, P(session_p), P(c_int32), c_size_t]),
    "gemfa_session_logits": (status_t, [session_p, P(P(c_float)), P(c_size_t)]),
    "gemfa_session_reset": (None, [session_p]),
    "gemfa_session_n_tokens": (c_size_t, [session_p]),
    "gemfa_session_max_context": (c_size_t, [session_p]),
    "gemfa_session_tokens": (status_t, [session_p, P(P(c_int32)), P(c_size_t)]),
    "gemfa_session_memory_bytes": (c_size_t, [session_p]),
    "gemfa_session_fork": (status_t, [session_p, P(session_p)]),
    # session state: rollback, save and restore
    "gemfa_session_truncate": (status_t, [session_p, c_size_t]),
    "gemfa_session_save": (status_t, [session_p, c_void_p, c_size_t, P(c_size_t)]),
    "gemfa_session_save_file": (status_t, [session_p, c_char_p]),
    "gemfa_session_load": (status_t, [context_p, session_options_p, c_void_p, c_size_t,
                                      P(session_p)]),
    "gemfa_session_load_file": (status_t, [context_p, session_options_p, c_char_p,
                                           P(session_p)]),
    # sampler
    "gemfa_sampler_new": (status_t, [model_p, P(sampler_p)]),
    "gemfa_sampler_free": (None, [sampler_p]),
    "gemfa_sampler_set_temperature": (status_t, [sampler_p, c_float]),
    "gemfa_sampler_set_top_k": (status_t, [sampler_p, c_int32]),
    "gemfa_sampler_set_top_p": (status_t, [sampler_p, c_float]),
    "gemfa_sampler_set_min_p": (status_t, [sampler_p, c_float]),
    "gemfa_sampler_set_penalties": (status_t, [sampler_p, c_float, c_float, c_float, c_int32]),
    "gemfa_sampler_set_logit_bias": (status_t, [sampler_p, c_int32, c_float]),
    "gemfa_sampler_clear_logit_bias": (status_t, [sampler_p]),
    "gemfa_sampler_set_seed": (status_t, [sampler_p, c_uint64]),
    "gemfa_sample": (status_t, [sampler_p, P(c_float), c_size_t, P(c_int32), c_size_t,
                                P(c_int32)]),
    # log-probabilities
    "gemfa_logprobs": (status_t, [P(c_float), c_size_t, c_int32, P(c_float), c_size_t,
                                  P(c_int32), P(c_float), P(c_size_t)]),
    # constrained output (JSON)
    "gemfa_constraint_new_json": (status_t, [model_p, c_char_p, c_size_t, P(constraint_p)]),
    "gemfa_constraint_free": (None, [constraint_p]),
    "gemfa_constraint_reset": (status_t, [constraint_p]),
    "gemfa_constraint_accept": (status_t, [constraint_p, c_int32]),
    "gemfa_constraint_is_complete": (c_int, [constraint_p]),
    "gemfa_constraint_mask": (status_t, [constraint_p, P(c_uint8), c_size_t, P(c_size_t)]),
    "gemfa_sampler_set_constraint": (status_t, [sampler_p, constraint_p]),
    # speculative decoding
    "gemfa_speculator_new": (status_t, [session_p, model_p, c_int, P(speculator_p)]),
    "gemfa_speculator_new_fn": (status_t, [session_p, DRAFT_FN, c_void_p, c_int,
                                           P(speculator_p)]),
    "gemfa_speculator_free": (None, [speculator_p]),
    "gemfa_speculator_set_k": (status_t, [speculator_p, c_int]),
    "gemfa_speculator_step": (status_t, [speculator_p, sampler_p, P(c_int32), c_size_t,
                                         P(c_size_t)]),
    "gemfa_speculator_flush": (status_t, [speculator_p]),
    "gemfa_speculator_reset": (None, [speculator_p]),
    "gemfa_speculator_get_stats": (status_t, [speculator_p, P(SpeculatorStats)]),
}

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_path: Optional[str] = None


def _candidates() -> List[Tuple[str, bool]]:
    """(candidate, is_file_path) in search order."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        return [(env, os.sep in env)]  # a bare name goes to the system loader
    here = os.path.dirname(os.path.abspath(__file__))
    out = [(os.path.join(d, n), True) for d in (here, os.path.dirname(here)) for n in _SONAMES]
    out.append((_SONAMES[0], False))
    found = ctypes.util.find_library("gemfa")
    if found and found != _SONAMES[0]:
        out.append((found, False))
    return out


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(lib, name)  # AttributeError if the library lacks it
        fn.restype = restype
        fn.argtypes = argtypes


def _open(candidate: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(candidate)
    missing = [n for n in SIGNATURES if not hasattr(lib, n)]
    if missing:
        raise OSError(f"not a compatible libgemfa: missing {', '.join(missing[:5])}")
    lib.gemfa_version_number.restype = c_uint
    lib.gemfa_version_number.argtypes = []
    v = lib.gemfa_version_number()
    major, minor = v // 10000, v // 100 % 100
    if major != ABI_MAJOR or minor < ABI_MIN_MINOR:
        raise OSError(f"libgemfa version {major}.{minor}.{v % 100} is not compatible "
                      f"with this binding (needs {ABI_MAJOR}.{ABI_MIN_MINOR} or a later "
                      f"{ABI_MAJOR}.x)")
    _declare(lib)
    return lib


def load_library(path: Optional[str] = None) -> ctypes.CDLL:
    """Loads libgemfa once and returns it (later calls return the same object).

    ``path`` forces one file and must come before any other use of the
    library; otherwise the search described in this module's docstring runs.
    Raises :class:`LibraryNotFoundError` listing every candidate tried.
    """
    global _lib, _path
    with _lock:
        if _lib is not None:
            if path is not None and os.path.abspath(path) != _path:
                raise RuntimeError(f"libgemfa is already loaded from {_path}")
            return _lib
        cands = [(path, True)] if path is not None else _candidates()
        tried: List[Tuple[str, str]] = []
        for cand, is_file in cands:
            if is_file and not os.path.exists(cand):
                tried.append((cand, "no such file"))
                continue
            try:
                lib = _open(cand)
            except OSError as e:
                tried.append((cand, str(e)))
                continue
            _lib = lib
            _path = os.path.abspath(cand) if is_file else cand
            return lib
        raise LibraryNotFoundError(tried)


def lib() -> ctypes.CDLL:
    """The loaded library (loading it on first use)."""
    return _lib if _lib is not None else load_library()


def library_path() -> Optional[str]:
    """What the library was loaded from (a path or a soname); None if not loaded yet."""
    return _path
