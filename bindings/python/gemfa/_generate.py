"""gemfa.Generation: the iterator behind Session.generate()."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Optional

from . import _lib, _text
from ._errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from ._sampler import Sampler
    from ._session import Session

# Why a generation ended (Generation.stop_reason).
STOP_EOG = "eog"                  # the model produced an end-of-generation id
STOP_LENGTH = "length"            # max_new_tokens reached
STOP_CONTEXT_FULL = "context_full"  # the session could not hold another token
STOP_STRING = "stop_string"       # one of the stop strings appeared in the text
STOP_CLOSED = "closed"            # the caller stopped iterating early
STOP_ERROR = "error"              # an exception (CancelledError, ...) ended it

# Most alternatives `logprobs=` reports per token (OpenAI's limit).
MAX_TOP_LOGPROBS = 20


def _is_id_list(prompt: Any) -> bool:
    if isinstance(prompt, (str, bytes)) or prompt is None:
        return False
    try:
        import numpy
        if isinstance(prompt, numpy.ndarray):
            return True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(prompt, (list, tuple)):
        return bool(prompt) and all(isinstance(x, int) and not isinstance(x, bool)
                                    for x in prompt)
    return False


class Generation:
    """Iterator of text pieces produced by :meth:`gemfa.Session.generate`.

    Attributes (filled in while iterating): ``ids`` the generated ids that were
    appended to the session, ``text`` everything yielded so far,
    ``prompt_ids`` the ids decoded before generating, ``stop_reason`` one of
    "eog", "length", "context_full", "stop_string", "closed", "error" (None
    while running), ``logprobs`` (with ``logprobs=N``, else None) one entry per
    id in OpenAI's shape: ``{"token", "logprob", "bytes", "top_logprobs":
    [{"token", "logprob", "bytes"}, ...]}`` (``bytes`` the UTF-8 bytes the
    token adds to the text, ``token`` their reading as text; log-probabilities
    under the raw logits, before temperature and penalties).
    ``close()`` stops early (the session keeps what was generated)."""

    def __init__(self, session: "Session", prompt: Any, *, chat: bool, max_new_tokens: int,
                 sampler: Optional["Sampler"], temperature: Optional[float],
                 top_k: Optional[int], top_p: Optional[float], min_p: Optional[float],
                 repetition_penalty: Optional[float], seed: Optional[int],
                 skip_special: bool, injection_safe: bool,
                 stop: Any = None, logprobs: Optional[int] = None, json_schema: Any = None):
        from ._constraint import JsonConstraint
        from ._sampler import Sampler
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise TypeError("max_new_tokens must be an int")
        if max_new_tokens < 0:
            raise InvalidArgumentError(f"max_new_tokens must be >= 0, not {max_new_tokens}")
        settings = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                        repetition_penalty=repetition_penalty, seed=seed)
        if sampler is not None:
            if not isinstance(sampler, Sampler):
                raise TypeError(f"sampler must be a gemfa.Sampler, not {type(sampler).__name__}")
            given = [k for k, v in settings.items() if v is not None]
            if given:
                raise TypeError(f"pass either sampler or {', '.join(given)}, not both")
        self._session = session
        self.prompt_ids: List[int] = self._prompt_ids(prompt, chat, injection_safe)
        self.max_new_tokens = max_new_tokens
        self.ids: List[int] = []
        self.text = ""
        self.stop_reason: Optional[str] = None
        self._own_sampler = sampler is None
        self._sampler = sampler if sampler is not None else Sampler(session.model, **settings)
        self._skip_special = skip_special
        self._setup_extras(stop, logprobs)
        self._hit = False
        # the schema is compiled now, so a bad one fails before anything runs
        self._constraint: Optional[JsonConstraint] = None
        if json_schema is not None:
            try:
                self._constraint = JsonConstraint(session.model, json_schema)
            except BaseException:
                if self._stop is not None:
                    self._stop.close()
                if self._own_sampler:
                    self._sampler.close()
                raise
        self._iter: Iterator[str] = self._run()

    # -- prompt ---------------------------------------------------------------------
    def _prompt_ids(self, prompt: Any, chat: bool, injection_safe: bool) -> List[int]:
        s = self._session
        mh = s._model_handle
        if prompt is None or (isinstance(prompt, (str, bytes)) and not prompt and not chat):
            if s.n_tokens == 0:
                raise InvalidArgumentError("the session is empty: give a prompt")
            return []
        if _is_id_list(prompt):
            return list(prompt) if not hasattr(prompt, "tolist") else prompt.tolist()
        from ._model import Prop
        if not chat:
            if not isinstance(prompt, (str, bytes)):
                raise TypeError("with chat=False the prompt must be text or a list of ids")
            with mh.use() as mp:
                ids = _text.tokenize(mp, prompt, _text.TOKENIZE_PARSE_SPECIAL)
                bos = self._prop(mp, Prop.BOS_ID)
            # <bos> opens an empty session unless the text brings its own
            if s.n_tokens == 0 and bos >= 0 and ids[:1] != [bos]:
                ids.insert(0, bos)
            return ids
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, (str, bytes)) \
            else list(prompt)
        history = s.tokens
        with mh.use() as mp:
            ids = _text.chat_tokenize(mp, messages, True, injection_safe)
            if not history:
                return ids
            return self._close_turn(mp, history) + self._drop_bos(mp, ids)

    @staticmethod
    def _prop(mp: Any, prop: int) -> int:
        import ctypes
        v = ctypes.c_int64(-1)
        _lib.lib().gemfa_model_get(mp, prop, ctypes.byref(v))
        return int(v.value)

    def _drop_bos(self, mp: Any, ids: List[int]) -> List[int]:
        from ._model import Prop
        bos = self._prop(mp, Prop.BOS_ID)
        return ids[1:] if ids and ids[0] == bos else ids

    def _close_turn(self, mp: Any, history: List[int]) -> List[int]:
        """Ids that end the previous model turn as the template writes it
        ("<end_of_turn>\\n"), minus what the session already ends with."""
        from ._model import Prop
        eot = self._prop(mp, Prop.END_OF_TURN_ID)
        newline = _text.tokenize(mp, "\n", 0)
        if eot < 0:
            return []
        if history[-len(newline) - 1:] == [eot] + newline:
            return []
        if history[-1] == eot:
            return newline
        return [eot] + newline

    # -- stop strings and log-probabilities ----------------------------------------
    def _setup_extras(self, stop: Any, logprobs: Optional[int]) -> None:
        from ._stop import StopMatcher, TokenBytes
        if logprobs is not None and (isinstance(logprobs, bool) or not isinstance(logprobs, int)):
            raise TypeError("logprobs must be an int (alternatives per token) or None")
        if logprobs is not None and not 0 <= logprobs <= MAX_TOP_LOGPROBS:
            raise InvalidArgumentError(
                f"logprobs must be in [0, {MAX_TOP_LOGPROBS}], not {logprobs}")
        self._top_logprobs = logprobs
        self.logprobs: Optional[List[dict]] = [] if logprobs is not None else None
        self._token_bytes = TokenBytes(self._session._model_handle) \
            if logprobs is not None else None
        self._stop = StopMatcher(stop) if stop is not None and stop != [] else None

    def _record_logprobs(self, token: int) -> None:
        """Logprobs of the token just sampled (before the next decode replaces the logits)."""
        if self.logprobs is None:
            return
        from ._stop import openai_entry
        lp, tops = self._session._logprobs(token, self._top_logprobs)
        self.logprobs.append(openai_entry(self._token_bytes, token, lp, tops))

    def _release(self, piece: str, final: bool = False) -> str:
        """Text the stop matcher lets through; sets stop_string on a hit."""
        if self._stop is None or self._hit:
            return "" if self._hit else piece
        out, self._hit = self._stop.feed(piece)
        if final and not self._hit:
            out += self._stop.flush()
        return out

    # -- iteration ------------------------------------------------------------------
    def __iter__(self) -> "Generation":
        return self

    def __next__(self) -> str:
        return next(self._iter)

    def close(self) -> None:
        """Stops the generation; the session keeps every token generated so far."""
        self._iter.close()

    def _run(self) -> Iterator[str]:
        s = self._session
        stream = None
        previous = self._sampler.constraint
        if self._constraint is not None:
            self._sampler.set_constraint(self._constraint)
        try:
            if self.prompt_ids:
                s._decode_quiet(self.prompt_ids)
            stream = _text.DetokenizerStream(s._model_handle, self._skip_special)
            lib = _lib.lib()
            reason = STOP_LENGTH
            for _ in range(self.max_new_tokens):
                token = s._sample_with(self._sampler)
                with s._model_handle.use() as mp:
                    if lib.gemfa_model_is_eog(mp, token):
                        reason = STOP_EOG
                        break
                if s.n_tokens >= s.max_context:
                    reason = STOP_CONTEXT_FULL
                    break
                self._record_logprobs(token)
                piece = stream.feed(token)
                s._decode_quiet((token,))
                self.ids.append(token)
                piece = self._release(piece)
                if piece:
                    self.text += piece
                    yield piece
                if self._hit:
                    reason = STOP_STRING
                    break
            tail = self._release(stream.flush(), final=True)
            if self._hit:
                reason = STOP_STRING
            self.stop_reason = reason
            if tail:
                self.text += tail
                yield tail
        except GeneratorExit:
            if self.stop_reason is None:
                self.stop_reason = STOP_CLOSED
            raise
        except BaseException:
            if self.stop_reason is None:
                self.stop_reason = STOP_ERROR
            raise
        finally:
            if stream is not None:
                stream.close()
            if self._stop is not None:
                self._stop.close()
            if self._constraint is not None:
                if not self._sampler.closed:
                    self._sampler.set_constraint(previous)
                self._constraint.close()
            if self._own_sampler:
                self._sampler.close()

    def __repr__(self) -> str:
        return (f"<gemfa.Generation {len(self.ids)} tokens"
                f"{', ' + self.stop_reason if self.stop_reason else ''}>")
