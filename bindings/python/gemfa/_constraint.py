"""gemfa.JsonConstraint: JSON / JSON Schema constrained output."""
from __future__ import annotations

import ctypes
import json
from ctypes import c_size_t, c_uint8
from typing import TYPE_CHECKING, Any, List, Optional, Union

from . import _lib
from ._core import as_token_id, check, encode_text
from ._handle import Handle, Owner

if TYPE_CHECKING:  # pragma: no cover
    from ._model import Model

Schema = Union[None, dict, bool, str, bytes]


def schema_text(schema: Schema) -> Optional[bytes]:
    """The schema as JSON bytes: a dict or bool is serialized, str/bytes are
    taken as JSON text, None (and {}) mean any JSON value."""
    if schema is None:
        return None
    if isinstance(schema, (dict, bool)):
        return json.dumps(schema, ensure_ascii=False).encode("utf-8")
    if isinstance(schema, (str, bytes, bytearray, memoryview)):
        return encode_text(schema, "json_schema")
    raise TypeError(f"json_schema must be a dict, bool, str or bytes, not {type(schema).__name__}")


class JsonConstraint(Owner):
    """Restricts sampling to tokens that continue a JSON text valid for
    ``schema`` (a dict, or its JSON text; None or {} = any JSON value).

    Attach it with :meth:`gemfa.Sampler.set_constraint` or pass
    ``json_schema=`` to :meth:`gemfa.Session.generate`; the sampler then
    advances it by every token it returns.  The supported JSON Schema subset
    and the shape of what is written are described in docs/python.md and
    gemfa.h.  Creating one builds and walks a trie of the vocabulary
    (~0.15 s of CPU for Gemma's 262k tokens; reuse one with reset()).
    Used by one thread at a time; it keeps no reference to the model.
    Errors: UnsupportedError (a keyword outside the subset), FormatError (not
    JSON), InvalidArgumentError (a bad value)."""

    def __init__(self, model: "Model", schema: Schema = None):
        from ._model import Model
        if not isinstance(model, Model):
            raise TypeError(f"model must be a gemfa.Model, not {type(model).__name__}")
        text = schema_text(schema)
        lib = _lib.lib()
        out = _lib.constraint_p()
        with model._use() as mp:
            check(lib.gemfa_constraint_new_json(mp, text, len(text) if text else 0,
                                                ctypes.byref(out)))
        self._own(Handle(out, lib.gemfa_constraint_free, "constraint"))

    def reset(self) -> "JsonConstraint":
        """Back to the start of a document."""
        with self._use() as p:
            check(_lib.lib().gemfa_constraint_reset(p))
        return self

    def accept(self, token: int) -> "JsonConstraint":
        """Advances by ``token`` (a token you force; sampled ones are accepted
        by the sampler).  InvalidTokenError if the text cannot go on with it."""
        with self._use() as p:
            check(_lib.lib().gemfa_constraint_accept(p, as_token_id(token)))
        return self

    @property
    def complete(self) -> bool:
        """True when the text so far is a complete value (the end token is allowed)."""
        with self._use() as p:
            return bool(_lib.lib().gemfa_constraint_is_complete(p))

    def allowed(self) -> List[int]:
        """The token ids allowed next."""
        lib = _lib.lib()
        n = c_size_t(0)
        with self._use() as p:
            lib.gemfa_constraint_mask(p, None, 0, ctypes.byref(n))
            buf = (c_uint8 * n.value)()
            check(lib.gemfa_constraint_mask(p, buf, n.value, ctypes.byref(n)))
        return [i for i, v in enumerate(bytes(buf)) if v]

    def __repr__(self) -> str:
        return f"<gemfa.JsonConstraint{' closed' if self.closed else ''}>"
