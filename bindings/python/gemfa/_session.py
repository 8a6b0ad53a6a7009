"""gemfa.Context and gemfa.Session: compute resources and conversations."""
from __future__ import annotations

import ctypes
import enum
import functools
import threading
from ctypes import POINTER, c_float, c_int32, c_size_t
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Sequence, Union

from . import _lib
from ._core import (check, encode_path, float_matrix_buffer, float_matrix_result, float_vector,
                    id_array, ids_from)
from ._errors import ClosedError, InvalidArgumentError, Status, error_for
from ._handle import Handle, Owner


class KvType(enum.IntEnum):
    """How a session stores its keys and values (gemfa_kv_type): ``F32`` is
    exact, ``F16`` rounds them to half precision at half the memory."""
    F32 = 0
    F16 = 1


def _kv_type(kv_type: Union[None, str, int, KvType]) -> Optional[KvType]:
    if kv_type is None:
        return None
    if isinstance(kv_type, str):
        try:
            return KvType[kv_type.upper()]
        except KeyError:
            raise InvalidArgumentError(f"kv_type must be f32 or f16, not {kv_type!r}") from None
    if isinstance(kv_type, bool) or not isinstance(kv_type, int):
        raise TypeError(f"kv_type must be a str or KvType, not {type(kv_type).__name__}")
    try:
        return KvType(kv_type)
    except ValueError:
        raise InvalidArgumentError(f"unknown KV type {kv_type}") from None

if TYPE_CHECKING:  # pragma: no cover
    from ._generate import Generation
    from ._model import Model
    from ._sampler import Sampler

CancelFn = Callable[[], Any]


_atoi: Optional[Any] = None


def _flag_poller() -> Any:
    """libc's ``int atoi(const char *)`` as a gemfa_cancel_fn.

    With a 2-byte flag buffer ("0" or "1") as the user pointer it answers the
    library's poll in C, without the GIL: a decode never waits for another
    Python thread, and Context.cancel() just writes the byte."""
    global _atoi
    if _atoi is None:
        libc = ctypes.CDLL(None)
        _atoi = _lib.CANCEL_FN(ctypes.cast(libc.atoi, ctypes.c_void_p).value)
    return _atoi


class _Canceller:
    """The cancel callback installed on every context.

    The library polls it between layers.  Without a user function it is the
    GIL-free flag poller above; with one (``cancel=``) it is a Python
    trampoline that also stops the decode when the function returns a true
    value or raises (the exception is re-raised by the decode call); that
    trampoline takes the GIL at every poll."""

    def __init__(self, fn: Optional[CancelFn]):
        self.fn = fn
        self.error: Optional[BaseException] = None
        self.flag = ctypes.create_string_buffer(b"0", 2)
        if fn is None:
            self.c_fn = _flag_poller()
            self.user = ctypes.cast(self.flag, ctypes.c_void_p)
        else:
            self.c_fn = _lib.CANCEL_FN(self._poll)
            self.user = None

    def request(self) -> None:
        self.flag[0] = b"1"

    def _poll(self, _user: Any) -> int:
        try:
            if self.flag[0] == b"1":
                return 1
            return 1 if self.fn is not None and self.fn() else 0
        except BaseException as e:  # noqa: B902 - carried back to the decode call
            self.error = e
            return 1

    def consume(self) -> Optional[BaseException]:
        """After a cancelled decode: clears the request, returns the callback's error."""
        err, self.error = self.error, None
        self.flag[0] = b"0"
        return err


class Context(Owner):
    """Compute resources (thread pool, scratch buffers) for one model.

    A context serves any number of sessions, one call at a time: calls on a
    context and on its sessions are serialized by a lock, so concurrent use
    from several Python threads is safe (but not parallel).  Use one context
    per thread for parallel decoding.  ``threads``: 0 = all cores.
    ``cancel()``, if given, is polled between layers during decode (a true
    result or an exception stops it); it takes the GIL at every poll, so
    leave it out when other threads keep the GIL busy and use
    :meth:`cancel` from another thread instead (polled without the GIL).
    Made by :meth:`gemfa.Model.context`; keeps the model alive.
    """

    def __init__(self, model: "Model", *, threads: int = 0,
                 cancel: Optional[CancelFn] = None):
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise TypeError(f"threads must be an int, not {type(threads).__name__}")
        if cancel is not None and not callable(cancel):
            raise TypeError("cancel must be callable")
        if not -2 ** 31 <= threads < 2 ** 31:
            raise InvalidArgumentError(f"threads {threads} is out of range")
        lib = _lib.lib()
        self._model = model
        self._canceller = _Canceller(cancel)
        self._lock = threading.RLock()
        opts = _lib.context_options_p()
        check(lib.gemfa_context_options_new(ctypes.byref(opts)))
        out = _lib.context_p()
        try:
            check(lib.gemfa_context_options_set_threads(opts, threads))
            check(lib.gemfa_context_options_set_cancel(opts, self._canceller.c_fn,
                                                       self._canceller.user))
            with model._use() as mp:
                check(lib.gemfa_context_new(mp, opts, ctypes.byref(out)))
                model._handle.acquire()  # the context points at the model
        finally:
            lib.gemfa_context_options_free(opts)
        self._own(Handle(out, lib.gemfa_context_free, "context", parents=(model._handle,),
                         keep=self._canceller))

    @property
    def model(self) -> "Model":
        """The model this context computes with."""
        return self._model

    def session(self, context: int = 0,
                kv_type: Union[None, str, int, KvType] = None) -> "Session":
        """A new empty session; ``context`` = most tokens it holds (0 = model's);
        ``kv_type``: ``"f32"`` (default, exact) or ``"f16"`` (half the KV memory)."""
        return Session._new(self, context, _kv_type(kv_type))

    def load_session(self, source: Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"],
                     context: int = 0,
                     kv_type: Union[None, str, int, KvType] = None) -> "Session":
        """A new session holding a state saved by :meth:`Session.save`.

        ``source``: the state itself (bytes, bytearray or memoryview) or the
        path of a file holding it (str or os.PathLike).  ``context``: most
        tokens the new session holds; 0 keeps the saved session's.
        ``kv_type``: None keeps the state's KV type; a type given must match
        it (InvalidArgumentError otherwise: states are not converted).  The
        session continues exactly like the saved one (same logits, bit for
        bit).  Raises ModelMismatchError (a state of another model, other
        weights or weight type), FormatError (not a state, truncated,
        damaged), UnsupportedError (a newer format), ContextFullError,
        IoError; nothing is created then."""
        if isinstance(context, bool) or not isinstance(context, int):
            raise TypeError(f"context must be an int, not {type(context).__name__}")
        if not 0 <= context < 2 ** 63:
            raise InvalidArgumentError(f"context {context} is out of range")
        lib = _lib.lib()
        data: Any = None
        path: Optional[bytes] = None
        if isinstance(source, bytes):
            data, size = (source or None), len(source)  # immutable: passed without a copy
        elif isinstance(source, (bytearray, memoryview)):
            view = memoryview(source).cast("B")  # any layout, read as bytes
            data = (ctypes.c_char * view.nbytes).from_buffer_copy(view) if view.nbytes else None
            size = view.nbytes
        elif isinstance(source, (str, os.PathLike)):
            path = encode_path(source)
        else:
            raise TypeError("source must be bytes, bytearray, memoryview (state data) or "
                            f"str / os.PathLike (a path), not {type(source).__name__}")
        kt = _kv_type(kv_type)
        opts = _lib.session_options_p()
        check(lib.gemfa_session_options_new(ctypes.byref(opts)))
        out = _lib.session_p()
        try:
            check(lib.gemfa_session_options_set_max_context(opts, context))
            if kt is not None:
                check(lib.gemfa_session_options_set_kv_type(opts, int(kt)))
            with self._lock, self._use() as cp:
                if path is not None:
                    check(lib.gemfa_session_load_file(cp, opts, path, ctypes.byref(out)))
                else:
                    buf = data if data is not None else ctypes.create_string_buffer(1)
                    check(lib.gemfa_session_load(cp, opts, buf, size, ctypes.byref(out)))
                self._handle.acquire()
        finally:
            lib.gemfa_session_options_free(opts)
        return Session._wrap(self, out)

    def cancel(self) -> None:
        """Asks the running decode on this context (or the next one) to stop.

        Thread-safe; meant to be called from another thread.  The decode then
        raises :class:`gemfa.CancelledError` and its session is unchanged."""
        self._canceller.request()

    def decode_batch(self, sessions: Sequence["Session"], ids: Iterable[int]) -> None:
        """One decode step for many sessions at once (reading each weight once):
        ``sessions[i]`` receives ``ids[i]``.  Read each session's logits with
        :attr:`Session.logits` afterwards.  On error no session changes."""
        sessions = list(sessions)
        arr, n = id_array(ids)
        if n != len(sessions):
            raise InvalidArgumentError(f"{len(sessions)} sessions but {n} ids")
        for s in sessions:
            if not isinstance(s, Session):
                raise TypeError(f"sessions must be gemfa.Session objects, not {type(s).__name__}")
            if s._ctx is not self:
                raise InvalidArgumentError("a session belongs to another context")
        handles = [s._handle for s in sessions]
        ptrs = (_lib.session_p * max(n, 1))()
        held: List[Handle] = []
        try:
            for s, h in zip(sessions, handles):
                if s.closed:
                    raise ClosedError("a session is closed")
                ptrs[len(held)] = h.acquire()
                held.append(h)
            with self._lock, self._use() as cp:
                self._check_decode(_lib.lib().gemfa_decode_batch(cp, ptrs, arr if n else None,
                                                                 n))
        finally:
            for h in held:
                h.release()

    def _check_decode(self, status: int) -> None:
        if status == Status.OK:
            return
        err = error_for(status, _last_error())
        if status == Status.CANCELLED:
            cause = self._canceller.consume()
            if cause is not None:
                raise cause from err
        raise err

    def __repr__(self) -> str:
        return f"<gemfa.Context{' closed' if self.closed else ''}>"


def _last_error() -> str:
    from ._core import last_error
    return last_error()


def _locked_free(lock: Any, free: Callable[[Any], None], ptr: Any) -> None:
    with lock:
        free(ptr)


class Session(Owner):
    """One conversation: a KV cache and a position.

    Made by :meth:`gemfa.Model.session` (with its own context) or
    :meth:`Context.session`.  It keeps its context and model alive.  Every
    failed call leaves the session exactly as it was.  Calls are serialized
    with the other sessions of the same context.
    """

    _ctx: Context

    @classmethod
    def _new(cls, ctx: Context, max_context: int,
             kv_type: Optional[KvType] = None) -> "Session":
        if isinstance(max_context, bool) or not isinstance(max_context, int):
            raise TypeError(f"context must be an int, not {type(max_context).__name__}")
        if not -2 ** 63 <= max_context < 2 ** 63:
            raise InvalidArgumentError(f"context {max_context} is out of range")
        lib = _lib.lib()
        opts = _lib.session_options_p()
        check(lib.gemfa_session_options_new(ctypes.byref(opts)))
        out = _lib.session_p()
        try:
            check(lib.gemfa_session_options_set_max_context(opts, max_context))
            if kv_type is not None:
                check(lib.gemfa_session_options_set_kv_type(opts, int(kv_type)))
            with ctx._lock, ctx._use() as cp:
                check(lib.gemfa_session_new(cp, opts, ctypes.byref(out)))
                ctx._handle.acquire()
        finally:
            lib.gemfa_session_options_free(opts)
        return cls._wrap(ctx, out)

    @classmethod
    def _wrap(cls, ctx: Context, ptr: Any) -> "Session":
        self = cls.__new__(cls)
        self._ctx = ctx
        self._model_handle = ctx._model._handle
        # Freeing a session may touch its context: serialize it with the sibling
        # sessions' calls (a finalizer may run in any thread).  The lock is
        # reentrant, so a free inside a call on the same thread is fine.
        free = functools.partial(_locked_free, ctx._lock, _lib.lib().gemfa_session_free)
        self._own(Handle(ptr, free, "session", parents=(ctx._handle,)))
        with self._use() as p:
            self._max_context = int(_lib.lib().gemfa_session_max_context(p))
        return self

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError("create sessions with Model.session() or Context.session()")

    # -- state ----------------------------------------------------------------------
    @property
    def context(self) -> Context:
        """The context this session computes with."""
        return self._ctx

    @property
    def model(self) -> "Model":
        """The model of this session."""
        return self._ctx._model

    @property
    def n_tokens(self) -> int:
        """Tokens decoded so far."""
        with self._ctx._lock, self._use() as p:
            return int(_lib.lib().gemfa_session_n_tokens(p))

    def __len__(self) -> int:
        return self.n_tokens

    @property
    def max_context(self) -> int:
        """Most tokens the session holds."""
        return self._max_context

    @property
    def memory_bytes(self) -> int:
        """Bytes of KV cache and state allocated for this session."""
        with self._ctx._lock, self._use() as p:
            return int(_lib.lib().gemfa_session_memory_bytes(p))

    @property
    def kv_type(self) -> KvType:
        """How this session stores keys and values (:class:`gemfa.KvType`)."""
        with self._ctx._lock, self._use() as p:
            return KvType(_lib.lib().gemfa_session_kv_type(p))

    @property
    def kv_bytes(self) -> int:
        """Bytes of this session's K/V stores alone."""
        with self._ctx._lock, self._use() as p:
            return int(_lib.lib().gemfa_session_kv_bytes(p))

    @property
    def tokens(self) -> List[int]:
        """A copy of the ids decoded so far."""
        ids = POINTER(c_int32)()
        n = c_size_t(0)
        with self._ctx._lock, self._use() as p:
            check(_lib.lib().gemfa_session_tokens(p, ctypes.byref(ids), ctypes.byref(n)))
            return ids_from(ids, n.value)

    @property
    def logits(self) -> Any:
        """A copy of the last position's logits of the latest decode (None if empty).

        A numpy float32 array when numpy is installed, else a list."""
        ptr = POINTER(c_float)()
        n = c_size_t(0)
        with self._ctx._lock, self._use() as p:
            check(_lib.lib().gemfa_session_logits(p, ctypes.byref(ptr), ctypes.byref(n)))
            return float_vector(ptr, n.value) if ptr else None

    def reset(self) -> None:
        """Empties the session (position 0), keeping its memory."""
        with self._ctx._lock, self._use() as p:
            _lib.lib().gemfa_session_reset(p)

    def fork(self) -> "Session":
        """A deep copy on the same context (e.g. to reuse a decoded system prompt)."""
        out = _lib.session_p()
        with self._ctx._lock, self._use() as p:
            check(_lib.lib().gemfa_session_fork(p, ctypes.byref(out)))
            self._ctx._handle.acquire()
        return Session._wrap(self._ctx, out)

    def truncate(self, n: int) -> None:
        """Keeps the first ``n`` tokens; the next decode continues at position ``n``.

        Afterwards :attr:`logits` is None (unless ``n`` equals the token
        count, which changes nothing).  Cheap when at most ~256 tokens are
        dropped since the latest decodes; longer rollbacks on models with
        sliding-window layers re-decode the ``n`` kept tokens (docs/
        session-state.md).  Raises InvalidArgumentError for ``n`` above
        :attr:`n_tokens` or negative, CancelledError; the session is then
        unchanged."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if n < 0:
            raise InvalidArgumentError(f"n {n} is negative")
        if n >= 2 ** 64:
            raise InvalidArgumentError(f"n {n} is out of range")
        with self._ctx._lock, self._use() as p:
            self._ctx._check_decode(_lib.lib().gemfa_session_truncate(p, n))

    def save(self, path: Union[None, str, "os.PathLike[str]"] = None) -> Optional[bytes]:
        """Saves the session's state (tokens, KV cache, last logits; docs/session-state.md).

        Without ``path`` returns the state as bytes; with a path (str or
        os.PathLike) writes it there (atomically: a temporary file renamed
        over the path) and returns None.  Restore it with
        :meth:`Context.load_session`, in this or another process."""
        lib = _lib.lib()
        if path is not None:
            raw = encode_path(path) if isinstance(path, (str, os.PathLike)) else None
            if raw is None:
                raise TypeError(f"path must be str or os.PathLike, not {type(path).__name__}")
            with self._ctx._lock, self._use() as p:
                check(lib.gemfa_session_save_file(p, raw))
            return None
        need = c_size_t(0)
        with self._ctx._lock, self._use() as p:
            st = lib.gemfa_session_save(p, None, 0, ctypes.byref(need))
            if st != Status.BUFFER_TOO_SMALL:
                check(st)
            buf = ctypes.create_string_buffer(need.value)
            check(lib.gemfa_session_save(p, buf, need.value, ctypes.byref(need)))
            return buf.raw[:need.value]

    def cancel(self) -> None:
        """Stops the running (or next) decode of this session's context; thread-safe."""
        self._ctx.cancel()

    # -- decoding -------------------------------------------------------------------
    def decode(self, ids: Any, all_logits: bool = False) -> Any:
        """Appends ``ids`` (a sequence, numpy array, or one int) and runs the model.

        Returns a copy of the last position's logits (numpy float32 array of
        ``vocab_size``, or a list), or with ``all_logits=True`` every
        position's logits (``[len(ids)][vocab_size]``).  The GIL is released
        while the model runs.  Raises InvalidTokenError, ContextFullError,
        CancelledError (the session is then unchanged)."""
        if isinstance(ids, int) and not isinstance(ids, bool):
            ids = (ids,)
        arr, n = id_array(ids)
        lib = _lib.lib()
        if all_logits:
            vocab = self._vocab_size()
            owner, buf = float_matrix_buffer(n, vocab)
            with self._ctx._lock, self._use() as p:
                self._ctx._check_decode(lib.gemfa_decode_all(p, arr if n else None, n, buf,
                                                             n * vocab))
            return float_matrix_result(owner, n, vocab)
        ptr = POINTER(c_float)()
        with self._ctx._lock, self._use() as p:
            self._ctx._check_decode(lib.gemfa_decode(p, arr if n else None, n,
                                                     ctypes.byref(ptr)))
            return float_vector(ptr, self._vocab_size())

    def _decode_quiet(self, ids: Any) -> None:
        """decode() without copying logits out (generation)."""
        arr, n = id_array(ids)
        with self._ctx._lock, self._use() as p:
            self._ctx._check_decode(_lib.lib().gemfa_decode(p, arr if n else None, n, None))

    def _vocab_size(self) -> int:
        v = getattr(self, "_vocab", None)
        if v is None:
            from ._model import Prop
            value = ctypes.c_int64(0)
            with self._model_handle.use() as mp:
                check(_lib.lib().gemfa_model_get(mp, int(Prop.VOCAB_SIZE), ctypes.byref(value)))
            v = self._vocab = int(value.value)
        return v

    def _sample_with(self, sampler: "Sampler") -> int:
        """Samples from this session's logits with its tokens as history (no copies)."""
        logits = POINTER(c_float)()
        n_vocab = c_size_t(0)
        hist = POINTER(c_int32)()
        n_hist = c_size_t(0)
        lib = _lib.lib()
        with self._ctx._lock, self._use() as p:
            check(lib.gemfa_session_logits(p, ctypes.byref(logits), ctypes.byref(n_vocab)))
            if not logits:
                raise InvalidArgumentError("the session is empty: decode a prompt first")
            check(lib.gemfa_session_tokens(p, ctypes.byref(hist), ctypes.byref(n_hist)))
            return sampler._sample_raw(logits, n_vocab.value, hist, n_hist.value)

    def _logprobs(self, token: int, top: int) -> Any:
        """gemfa_logprobs on this session's last logits (no copies)."""
        from ._stop import logprobs_raw
        logits = POINTER(c_float)()
        n_vocab = c_size_t(0)
        with self._ctx._lock, self._use() as p:
            check(_lib.lib().gemfa_session_logits(p, ctypes.byref(logits), ctypes.byref(n_vocab)))
            if not logits:
                raise InvalidArgumentError("the session is empty: decode a prompt first")
            return logprobs_raw(logits, n_vocab.value, token, top)

    def sample(self, sampler: "Sampler") -> int:
        """The next token drawn by ``sampler`` from this session's logits."""
        return sampler.sample(self)

    def generate(self, prompt: Any = None, *, chat: bool = True, max_new_tokens: int = 256,
                 sampler: Optional["Sampler"] = None, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None,
                 min_p: Optional[float] = None, repetition_penalty: Optional[float] = None,
                 seed: Optional[int] = None, skip_special: bool = True,
                 injection_safe: bool = False,
                 stop: Optional[Sequence[str]] = None,
                 logprobs: Optional[int] = None, json_schema: Any = None) -> "Generation":
        """Generates text, yielding pieces as they complete.

        ``prompt``: a user message (str) or a list of chat messages when
        ``chat`` is true (rendered with the chat template; on a session that
        already holds a conversation the previous model turn is closed and only
        the new turn is added); raw text (special tokens parsed; <bos> put first
        on an empty session unless the text starts with it) or a list of ids
        when ``chat`` is false; None to continue from
        the session's current state.

        Sampling: pass a ``sampler``, or settings (``temperature``, ``top_k``,
        ``top_p``, ``min_p``, ``repetition_penalty``, ``seed``) applied over
        the model's generation_config defaults.

        Generation stops at an end-of-generation id (not appended), after
        ``max_new_tokens`` tokens, when the session is full, or at a stop
        string: ``stop`` (a str or a list of str) ends the text just before the
        first one to appear, even across tokens (stop_reason "stop_string"; the
        text held back while it could still become a stop string is yielded
        later, and never the stop string itself; the session keeps every token
        generated, the stop string's included).  Every yielded
        piece's tokens are already decoded into the session.  The returned
        :class:`gemfa.Generation` iterator also records ``ids``, ``text`` and
        ``stop_reason``, and with ``logprobs=N`` (0..20) ``logprobs``: per id,
        its log-probability under the raw logits and the N most likely
        alternatives, in OpenAI's shape.  The prompt is checked and tokenized at once; the model
        runs while iterating.

        ``json_schema``: a JSON Schema (dict, or its JSON text) the answer must
        validate against; ``{}`` for any JSON value; None (default) for free
        text.  Only tokens that continue such a value are sampled and the end
        token only once it is complete, so ``stop_reason == "eog"`` means
        ``json.loads(gen.text)`` succeeds and validates; "length" or
        "context_full" mean the value was cut.  The schema is compiled at once
        (UnsupportedError for keywords outside the subset, see docs/python.md);
        with a ``sampler`` the constraint is attached to it for this
        generation only."""
        from ._generate import Generation
        return Generation(self, prompt, chat=chat, max_new_tokens=max_new_tokens,
                          sampler=sampler, temperature=temperature, top_k=top_k, top_p=top_p,
                          min_p=min_p, repetition_penalty=repetition_penalty, seed=seed,
                          skip_special=skip_special, injection_safe=injection_safe,
                          stop=stop, logprobs=logprobs, json_schema=json_schema)

    def __repr__(self) -> str:
        if self.closed:
            return "<gemfa.Session closed>"
        return f"<gemfa.Session {self.n_tokens}/{self._max_context} tokens>"

