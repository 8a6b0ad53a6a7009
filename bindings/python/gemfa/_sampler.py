"""gemfa.Sampler: picks the next token from logits."""
from __future__ import annotations

import ctypes
import threading
from ctypes import c_int32
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

from . import _lib
from ._core import INT32_MAX, as_token_id, check, float_input, id_array
from ._errors import InvalidArgumentError
from ._handle import Handle, Owner

if TYPE_CHECKING:  # pragma: no cover
    from ._model import Model
    from ._session import Session


def _float(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, not bool")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}") from None


def _int32(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise InvalidArgumentError(f"{name} {value} is out of range")
    return value


class Sampler(Owner):
    """Token sampler: temperature, top-k, top-p, min-p, penalties, logit bias, seed.

    ``Sampler(model)`` starts from the model's generation_config.json (greedy
    when it says do_sample false); ``Sampler()`` from neutral settings
    (temperature 1, no truncation, no penalties).  Keyword arguments apply
    the setters below.  The same seed gives the same draws everywhere.

    A sampler is used by one thread at a time (a lock serializes misuse).
    It keeps no reference to the model.
    """

    def __init__(self, model: Optional["Model"] = None, *, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None,
                 min_p: Optional[float] = None, repetition_penalty: Optional[float] = None,
                 frequency_penalty: Optional[float] = None,
                 presence_penalty: Optional[float] = None, penalty_last_n: Optional[int] = None,
                 logit_bias: Optional[Mapping[int, float]] = None, seed: Optional[int] = None):
        from ._model import Model
        if model is not None and not isinstance(model, Model):
            raise TypeError(f"model must be a gemfa.Model or None, not {type(model).__name__}")
        lib = _lib.lib()
        out = _lib.sampler_p()
        self._lock = threading.Lock()
        if model is None:
            check(lib.gemfa_sampler_new(None, ctypes.byref(out)))
        else:
            with model._use() as mp:
                check(lib.gemfa_sampler_new(mp, ctypes.byref(out)))
        self._own(Handle(out, lib.gemfa_sampler_free, "sampler"))
        try:
            self.configure(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                           repetition_penalty=repetition_penalty,
                           frequency_penalty=frequency_penalty,
                           presence_penalty=presence_penalty, penalty_last_n=penalty_last_n,
                           logit_bias=logit_bias, seed=seed)
        except BaseException:
            self.close()
            raise

    def configure(self, *, temperature: Optional[float] = None, top_k: Optional[int] = None,
                  top_p: Optional[float] = None, min_p: Optional[float] = None,
                  repetition_penalty: Optional[float] = None,
                  frequency_penalty: Optional[float] = None,
                  presence_penalty: Optional[float] = None, penalty_last_n: Optional[int] = None,
                  logit_bias: Optional[Mapping[int, float]] = None,
                  seed: Optional[int] = None) -> "Sampler":
        """Applies the given settings (None leaves one as it is).  Returns self.

        The four penalty settings go to the library together: when any is
        given, the others take their neutral values (1, 0, 0, whole history)."""
        if temperature is not None:
            self.set_temperature(temperature)
        if top_k is not None:
            self.set_top_k(top_k)
        if top_p is not None:
            self.set_top_p(top_p)
        if min_p is not None:
            self.set_min_p(min_p)
        if any(v is not None for v in (repetition_penalty, frequency_penalty, presence_penalty,
                                       penalty_last_n)):
            self.set_penalties(1.0 if repetition_penalty is None else repetition_penalty,
                               0.0 if frequency_penalty is None else frequency_penalty,
                               0.0 if presence_penalty is None else presence_penalty,
                               0 if penalty_last_n is None else penalty_last_n)
        if logit_bias is not None:
            for tid, bias in dict(logit_bias).items():
                self.set_logit_bias(tid, bias)
        if seed is not None:
            self.set_seed(seed)
        return self

    def _set(self, name: str, *args: Any) -> "Sampler":
        with self._lock, self._use() as p:
            check(getattr(_lib.lib(), name)(p, *args))
        return self

    def set_temperature(self, temperature: float) -> "Sampler":
        """t >= 0; 0 = greedy (argmax after penalties and bias)."""
        return self._set("gemfa_sampler_set_temperature", _float(temperature, "temperature"))

    def set_top_k(self, k: int) -> "Sampler":
        """k >= 0; 0 = off."""
        return self._set("gemfa_sampler_set_top_k", _int32(k, "top_k"))

    def set_top_p(self, p: float) -> "Sampler":
        """0 < p <= 1; 1 = off."""
        return self._set("gemfa_sampler_set_top_p", _float(p, "top_p"))

    def set_min_p(self, p: float) -> "Sampler":
        """0 <= p <= 1; 0 = off."""
        return self._set("gemfa_sampler_set_min_p", _float(p, "min_p"))

    def set_penalties(self, repetition: float = 1.0, frequency: float = 0.0,
                      presence: float = 0.0, last_n: int = 0) -> "Sampler":
        """Repetition penalty (> 0, 1 = off), OpenAI frequency/presence
        penalties, over the last ``last_n`` history tokens (0 = all)."""
        return self._set("gemfa_sampler_set_penalties", _float(repetition, "repetition_penalty"),
                         _float(frequency, "frequency_penalty"),
                         _float(presence, "presence_penalty"), _int32(last_n, "penalty_last_n"))

    def set_logit_bias(self, token: int, bias: float) -> "Sampler":
        """Adds ``bias`` to the logit of ``token``; ``-math.inf`` bans it."""
        return self._set("gemfa_sampler_set_logit_bias", as_token_id(token),
                         _float(bias, "bias"))

    def clear_logit_bias(self) -> "Sampler":
        """Removes every logit bias."""
        return self._set("gemfa_sampler_clear_logit_bias")

    def set_seed(self, seed: int) -> "Sampler":
        """Restarts the generator with ``seed`` (0 <= seed < 2**64)."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        if not 0 <= seed < 2 ** 64:
            raise InvalidArgumentError(f"seed {seed} is outside 0 .. 2**64-1")
        return self._set("gemfa_sampler_set_seed", seed)

    def sample(self, logits: Any, history: Iterable[int] = ()) -> int:
        """Picks a token id.

        ``logits``: a :class:`gemfa.Session` (its last logits and its tokens
        as history, without copying), or a 1-D sequence / numpy array of
        floats, with ``history`` the ids the penalties see."""
        from ._session import Session
        if isinstance(logits, Session):
            return logits._sample_with(self)
        values, n = float_input(logits)
        hist, n_hist = id_array(history)
        out = c_int32(0)
        with self._lock, self._use() as p:
            check(_lib.lib().gemfa_sample(p, values, n, hist if n_hist else None, n_hist,
                                          ctypes.byref(out)))
        return out.value

    def set_constraint(self, constraint: Any) -> "Sampler":
        """Attaches a :class:`gemfa.JsonConstraint` (None detaches): every
        sampled token then continues its JSON text, and the sampler advances
        it by each token it returns.  The sampler keeps the constraint alive
        while attached."""
        from ._constraint import JsonConstraint
        if constraint is not None and not isinstance(constraint, JsonConstraint):
            raise TypeError("constraint must be a gemfa.JsonConstraint or None, not "
                            f"{type(constraint).__name__}")
        with self._lock, self._use() as p:
            ptr = constraint._handle.acquire() if constraint is not None else None
            try:
                check(_lib.lib().gemfa_sampler_set_constraint(p, ptr))
            except BaseException:
                if constraint is not None:
                    constraint._handle.release()
                raise
            old, self._constraint = getattr(self, "_constraint", None), constraint
        if old is not None:
            old._handle.release()
        return self

    @property
    def constraint(self) -> Any:
        """The attached :class:`gemfa.JsonConstraint`, or None."""
        return getattr(self, "_constraint", None)

    def close(self) -> None:
        if not self.closed and getattr(self, "_constraint", None) is not None:
            self.set_constraint(None)
        super().close()

    def _sample_raw(self, logits: Any, n_vocab: int, history: Any, n_history: int) -> int:
        out = c_int32(0)
        with self._lock, self._use() as p:
            check(_lib.lib().gemfa_sample(p, logits, n_vocab, history, n_history,
                                          ctypes.byref(out)))
        return out.value

    def __repr__(self) -> str:
        return f"<gemfa.Sampler{' closed' if self.closed else ''}>"

