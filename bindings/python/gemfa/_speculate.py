"""gemfa.Speculator: speculative decoding (a draft proposes, the model verifies)."""
from __future__ import annotations

import ctypes
from ctypes import c_int32, c_size_t
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

from . import _lib
from ._core import check
from ._handle import Handle, Owner

if TYPE_CHECKING:  # pragma: no cover
    from ._model import Model
    from ._sampler import Sampler
    from ._session import Session

DraftFn = Callable[[Sequence[int], int], Sequence[int]]


class Speculator(Owner):
    """Generates with ``session`` (its prompt decoded) and a cheap draft: each
    :meth:`step` returns 1 to k + 1 tokens for one batched pass of the model.

    ``draft`` is a :class:`gemfa.Model` with the session model's vocabulary
    (a MatFormer sub-model, a small checkpoint, or the same model), or a
    function ``draft(tokens, max) -> ids`` proposing up to ``max`` ids to
    follow ``tokens`` (counted as certain).  Greedy output equals plain
    greedy decoding; sampled tokens follow the model's distribution exactly
    (docs/speculative.md).  A sampler with a JSON constraint is refused
    (UnsupportedError).

    The last token of a step stays *pending* (not yet decoded): do not use
    the session between steps; call :meth:`flush` (decodes it) or
    :meth:`reset` (drops it) first.  Keeps the session and the draft model
    alive.  Used by one thread at a time, with the session's context."""

    def __init__(self, session: "Session", draft: Union["Model", DraftFn], k: int = 4):
        from ._model import Model
        from ._session import Session
        if not isinstance(session, Session):
            raise TypeError(f"session must be a gemfa.Session, not {type(session).__name__}")
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, not {type(k).__name__}")
        lib = _lib.lib()
        out = _lib.speculator_p()
        self._session = session
        self._k = k
        self._error: Optional[BaseException] = None
        keep: Any = None
        parents = [session._handle]
        with session._ctx._lock, session._use() as sp:
            if isinstance(draft, Model):
                with draft._use() as mp:
                    check(lib.gemfa_speculator_new(sp, mp, _clamp_k(k), ctypes.byref(out)))
                parents.append(draft._handle)
                draft._handle.acquire()
            elif callable(draft):
                keep = _lib.DRAFT_FN(self._trampoline(draft))
                check(lib.gemfa_speculator_new_fn(sp, keep, None, _clamp_k(k),
                                                  ctypes.byref(out)))
            else:
                raise TypeError("draft must be a gemfa.Model or a function, not "
                                f"{type(draft).__name__}")
            session._handle.acquire()
        self._own(Handle(out, lib.gemfa_speculator_free, "speculator", parents=parents,
                         keep=keep))

    def _trampoline(self, fn: DraftFn):
        def call(_user: Any, tokens: Any, n_tokens: int, ids: Any, max_ids: int) -> int:
            try:
                got = list(fn([tokens[i] for i in range(n_tokens)], max_ids))
                if len(got) > max_ids:
                    raise ValueError(f"the draft returned {len(got)} ids, at most {max_ids} "
                                     "were asked for")
                for i, t in enumerate(got):
                    ids[i] = int(t)
                return len(got)
            except BaseException as e:  # noqa: B902 - re-raised by step()
                self._error = e
                return -1
        return call

    @property
    def k(self) -> int:
        """Tokens drafted per step (1 to 32)."""
        return self._k

    @k.setter
    def k(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, not {type(k).__name__}")
        with self._use() as p:
            check(_lib.lib().gemfa_speculator_set_k(p, _clamp_k(k)))
        self._k = k

    def step(self, sampler: "Sampler") -> List[int]:
        """One step: the new tokens (1 to k + 1).  Cut them at the first
        end-of-generation id yourself.  ContextFullError when the pending
        token no longer fits; on any error nothing changed."""
        from ._sampler import Sampler
        if not isinstance(sampler, Sampler):
            raise TypeError(f"sampler must be a gemfa.Sampler, not {type(sampler).__name__}")
        cap = self._k + 1
        buf = (c_int32 * cap)()
        n = c_size_t(0)
        lib = _lib.lib()
        with self._session._ctx._lock, self._use() as p, sampler._use() as smp:
            st = lib.gemfa_speculator_step(p, smp, buf, cap, ctypes.byref(n))
        err, self._error = self._error, None
        if err is not None:
            raise err
        check(st)
        return list(buf[:n.value])

    def flush(self) -> None:
        """Decodes the pending token: the session then holds every returned token."""
        with self._session._ctx._lock, self._use() as p:
            check(_lib.lib().gemfa_speculator_flush(p))

    def reset(self) -> None:
        """Forgets the pending token (the session is not touched)."""
        with self._use() as p:
            _lib.lib().gemfa_speculator_reset(p)

    @property
    def stats(self) -> Dict[str, float]:
        """Counters: steps, drafted, accepted, emitted, target_rows, draft_rows,
        draft_seconds, verify_seconds, and acceptance (accepted / drafted)."""
        s = _lib.SpeculatorStats()
        with self._use() as p:
            check(_lib.lib().gemfa_speculator_get_stats(p, ctypes.byref(s)))
        d: Dict[str, float] = {name: getattr(s, name) for name, _ in s._fields_}
        d["acceptance"] = s.accepted / s.drafted if s.drafted else 0.0
        return d

    def __repr__(self) -> str:
        return f"<gemfa.Speculator k={self._k}{' closed' if self.closed else ''}>"


def _clamp_k(k: int) -> int:
    """k for a C int: out-of-range values stay out of range (the library refuses them)."""
    return max(-1, min(k, 2 ** 31 - 1))
