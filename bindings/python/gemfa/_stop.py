"""Stop strings (gemfa.StopMatcher) and log-probabilities (gemfa.logprobs)."""
from __future__ import annotations

import ctypes
import threading
from ctypes import POINTER, c_char, c_char_p, c_float, c_int, c_int32, c_size_t
from typing import Any, Dict, Iterable, List, Optional, Tuple

from . import _lib
from ._core import check, encode_text, float_input, query_text
from ._handle import Handle, Owner


def _stop_list(stops: Any) -> List[bytes]:
    if isinstance(stops, (str, bytes)):
        stops = [stops]  # one stop string, as OpenAI's `stop` also accepts
    try:
        items = list(stops)
    except TypeError:
        raise TypeError(f"stop must be a str or a list of str, not {type(stops).__name__}") \
            from None
    return [encode_text(s, f"stop[{i}]") for i, s in enumerate(items)]


class StopMatcher(Owner):
    """Finds stop strings in text that arrives in pieces (see gemfa.h).

    ``feed(text)`` returns ``(released, hit)``: the text that can no longer be
    part of a stop string, and whether one completed (the released text then
    ends just before it, and later feeds release nothing until ``reset()``).
    ``flush()`` releases the held-back tail at the end of the text.  Works on
    the UTF-8 bytes: released text always ends on a character boundary."""

    def __init__(self, stops: Iterable[str]):
        raw = _stop_list(stops)
        arr = (c_char_p * max(len(raw), 1))(*raw)
        lens = (c_size_t * max(len(raw), 1))(*[len(s) for s in raw])
        out = _lib.stop_matcher_p()
        lib = _lib.lib()
        check(lib.gemfa_stop_matcher_new(arr, lens, len(raw), ctypes.byref(out)))
        self._lock = threading.Lock()
        self.stops: Tuple[str, ...] = tuple(s.decode() for s in raw)
        self._own(Handle(out, lib.gemfa_stop_matcher_free, "stop matcher"))

    def feed(self, text: Any) -> Tuple[str, bool]:
        raw = encode_text(text)
        out = POINTER(c_char)()
        n = c_size_t(0)
        hit = c_int(0)
        with self._lock, self._use() as p:
            check(_lib.lib().gemfa_stop_matcher_feed(p, raw, len(raw), ctypes.byref(out),
                                                     ctypes.byref(n), ctypes.byref(hit)))
            released = ctypes.string_at(out, n.value) if n.value else b""
        return released.decode("utf-8", "surrogateescape"), bool(hit.value)

    def flush(self) -> str:
        out = POINTER(c_char)()
        n = c_size_t(0)
        with self._lock, self._use() as p:
            check(_lib.lib().gemfa_stop_matcher_flush(p, ctypes.byref(out), ctypes.byref(n)))
            released = ctypes.string_at(out, n.value) if n.value else b""
        return released.decode("utf-8", "surrogateescape")

    def reset(self) -> None:
        with self._lock, self._use() as p:
            _lib.lib().gemfa_stop_matcher_reset(p)

    @property
    def held(self) -> int:
        """Bytes currently held back."""
        with self._lock, self._use() as p:
            return int(_lib.lib().gemfa_stop_matcher_held(p))

    def __repr__(self) -> str:
        return f"<gemfa.StopMatcher {list(self.stops)!r}{' closed' if self.closed else ''}>"


def logprobs_raw(logits: Any, n_vocab: int, token: Optional[int],
                 top: int) -> Tuple[Optional[float], List[Tuple[int, float]]]:
    """gemfa_logprobs on a ``const float *``: (logprob of token, [(id, logprob)] best first)."""
    chosen = c_float(0.0)
    k = min(top, n_vocab)
    ids = (c_int32 * max(k, 1))()
    lps = (c_float * max(k, 1))()
    n_top = c_size_t(0)
    check(_lib.lib().gemfa_logprobs(logits, n_vocab, -1 if token is None else token,
                                    ctypes.byref(chosen) if token is not None else None,
                                    k, ids if k else None, lps if k else None,
                                    ctypes.byref(n_top) if k else None))
    tops = [(int(ids[i]), float(lps[i])) for i in range(n_top.value)]
    return (float(chosen.value) if token is not None else None), tops


def logprobs(logits: Any, token: Optional[int] = None,
             top: int = 0) -> Tuple[Optional[float], List[Tuple[int, float]]]:
    """Log-probabilities under raw ``logits`` (a 1-D sequence or numpy array).

    Returns ``(logprob of token, [(id, logprob), ...])``: the first is None when
    ``token`` is None, the list holds the ``top`` most likely ids, best first
    (ties to the lower id; fewer when the vocabulary is smaller).  NaN logits
    count as -inf, +inf as the largest float, as in the sampler."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ValueError(f"top must be an int >= 0, not {top!r}")
    if token is not None and (isinstance(token, bool) or not isinstance(token, int)):
        raise TypeError(f"token must be an int, not {type(token).__name__}")
    values, n = float_input(logits)
    if token is not None and not -2**31 <= token < 2**31:
        token = -1  # out of range for int32: the library reports INVALID_TOKEN
    return logprobs_raw(values, n, token, top)


class TokenBytes:
    """Cache of gemfa_token_bytes for one model (OpenAI's `token`/`bytes`)."""

    def __init__(self, model_handle: Handle):
        self._model = model_handle
        self._cache: Dict[int, bytes] = {}

    def __call__(self, token: int) -> bytes:
        raw = self._cache.get(token)
        if raw is None:
            lib = _lib.lib()
            with self._model.use() as mp:
                raw = query_text(lambda buf, cap, ln: lib.gemfa_token_bytes(mp, token, buf, cap,
                                                                            ln), 64)
            self._cache[token] = raw
        return raw

    def entry(self, token: int, logprob: float) -> Dict[str, Any]:
        raw = self(token)
        return {"token": raw.decode("utf-8", "replace"), "logprob": logprob,
                "bytes": list(raw)}


def openai_entry(tb: TokenBytes, token: int, logprob: float,
                 tops: List[Tuple[int, float]]) -> Dict[str, Any]:
    """One element of OpenAI's ``logprobs.content``."""
    e = tb.entry(token, logprob)
    e["top_logprobs"] = [tb.entry(i, lp) for i, lp in tops]
    return e


__all__ = ["StopMatcher", "logprobs"]
