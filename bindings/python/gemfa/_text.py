"""Tokenizer, chat template and streaming detokenizer calls on a model pointer.

These functions take a raw model pointer so that both Model and Session (which
may outlive a closed Model object) can use them."""
from __future__ import annotations

import ctypes
import threading
from ctypes import POINTER, c_char, c_int32, c_size_t
from typing import Any, Iterable, List, Mapping, Sequence, Tuple, Union

from . import _lib
from ._core import (check, decode_utf8, encode_text, id_array, query_ids, query_text,
                    as_token_id)
from ._errors import TemplateError
from ._handle import Handle, Owner

TOKENIZE_ADD_BOS = 0x1
TOKENIZE_PARSE_SPECIAL = 0x2
DETOKENIZE_SKIP_SPECIAL = 0x1
CHAT_INJECTION_SAFE = 0x1

# A message: {"role": ..., "content": ...} (content a str, or a list of
# {"type": "text", "text": ...} items as Hugging Face accepts), a
# (role, content) pair, or any object with .role and .content.
MessageLike = Union[Mapping[str, Any], Tuple[str, Any], Any]


def tokenize(model: Any, text: Union[str, bytes], flags: int) -> List[int]:
    raw = encode_text(text)
    lib = _lib.lib()
    # Never more ids than bytes, plus <bos>: one call suffices in practice.
    return query_ids(lambda buf, cap, n: lib.gemfa_tokenize(model, raw, len(raw), flags, buf,
                                                            cap, n), len(raw) + 2)


def detokenize(model: Any, ids: Any, flags: int) -> str:
    arr, n = id_array(ids)
    lib = _lib.lib()
    return decode_utf8(query_text(
        lambda buf, cap, ln: lib.gemfa_detokenize(model, arr if n else None, n, flags, buf,
                                                  cap, ln), 8 * n + 16))


def token_piece(model: Any, token: int) -> str:
    tid = as_token_id(token)
    lib = _lib.lib()
    return decode_utf8(query_text(lambda buf, cap, ln: lib.gemfa_token_piece(model, tid, buf,
                                                                              cap, ln), 64))


def token_id(model: Any, piece: Union[str, bytes]) -> int:
    raw = encode_text(piece, "piece")
    out = c_int32(-1)
    check(_lib.lib().gemfa_token_id(model, raw, len(raw), ctypes.byref(out)))
    return out.value


def _content_text(role: str, content: Any, index: int) -> Union[str, bytes]:
    """Flattens Hugging Face list content the way the Gemma 3n template reads it."""
    if isinstance(content, (str, bytes)):
        return content
    if isinstance(content, bytearray):
        return bytes(content)
    if isinstance(content, Sequence):
        items = list(content)
        if role == "system":  # the template reads only the first item's text, untrimmed
            return str(items[0]["text"]) if items else ""
        parts = []
        for item in items:
            kind = item.get("type") if isinstance(item, Mapping) else None
            if kind == "text":
                parts.append(str(item["text"]).strip())
            elif kind == "image":
                parts.append("<image_soft_token>")
            elif kind == "audio":
                parts.append("<audio_soft_token>")
            else:
                raise TypeError(f"message {index}: unknown content item {item!r}")
        return "".join(parts)
    raise TypeError(f"message {index}: content must be str or a list of items, "
                    f"not {type(content).__name__}")


def message_array(messages: Iterable[MessageLike]) -> Tuple[Any, int]:
    """(gemfa_message array, count) for the C calls; the array keeps the bytes alive."""
    if isinstance(messages, (str, bytes, Mapping)):
        raise TypeError("messages must be a list of messages, not a single "
                        f"{type(messages).__name__}")
    converted = []
    for i, m in enumerate(messages):
        if isinstance(m, Mapping):
            role, content = m.get("role"), m.get("content")
        elif isinstance(m, tuple) and len(m) == 2:
            role, content = m
        elif hasattr(m, "role") and hasattr(m, "content"):
            role, content = m.role, m.content
        else:
            raise TypeError(f"message {i} must be a dict with 'role' and 'content', "
                            f"not {type(m).__name__}")
        if not isinstance(role, str):
            raise TypeError(f"message {i}: role must be a str, not {type(role).__name__}")
        if "\0" in role:
            raise TemplateError(f"message {i}: role contains a NUL character")
        if content is None:
            raise TypeError(f"message {i} has no content")
        text = encode_text(_content_text(role, content, i), "content")
        converted.append((role.encode("utf-8", "surrogatepass"), text))
    arr = (_lib.Message * max(len(converted), 1))()
    for slot, (role_b, text) in zip(arr, converted):
        slot.role = role_b
        slot.content = text  # c_char_p keeps the bytes alive; length is explicit
        slot.content_len = len(text)
    return arr, len(converted)


def apply_chat_template(model: Any, messages: Iterable[MessageLike],
                        add_generation_prompt: bool) -> str:
    arr, n = message_array(messages)
    lib = _lib.lib()
    guess = sum(arr[i].content_len for i in range(n)) + 64 * n + 64
    return decode_utf8(query_text(
        lambda buf, cap, ln: lib.gemfa_apply_chat_template(
            model, arr, n, int(bool(add_generation_prompt)), buf, cap, ln), guess))


def chat_tokenize(model: Any, messages: Iterable[MessageLike], add_generation_prompt: bool,
                  injection_safe: bool) -> List[int]:
    arr, n = message_array(messages)
    lib = _lib.lib()
    flags = CHAT_INJECTION_SAFE if injection_safe else 0
    guess = sum(arr[i].content_len for i in range(n)) + 16 * n + 16
    return query_ids(lambda buf, cap, cnt: lib.gemfa_chat_tokenize(
        model, arr, n, int(bool(add_generation_prompt)), flags, buf, cap, cnt), guess)


class DetokenizerStream(Owner):
    """Turns ids into text one at a time, holding back incomplete UTF-8.

    Made by :meth:`gemfa.Model.detokenizer`.  Keeps its model alive.  One
    thread at a time (a lock serializes concurrent use)."""

    def __init__(self, model_handle: Handle, skip_special: bool = False):
        lib = _lib.lib()
        flags = DETOKENIZE_SKIP_SPECIAL if skip_special else 0
        out = _lib.detok_stream_p()
        mptr = model_handle.acquire()  # the stream points at the model
        try:
            check(lib.gemfa_detok_stream_new(mptr, flags, ctypes.byref(out)))
        except BaseException:
            model_handle.release()
            raise
        self._lock = threading.Lock()
        self._own(Handle(out, lib.gemfa_detok_stream_free, "detokenizer stream",
                         parents=(model_handle,)))

    def feed(self, token: int) -> str:
        """Feeds one id; returns the text it completes (often "", never None).

        Raises InvalidTokenError (the stream is unchanged) for an id outside
        the vocabulary."""
        tid = as_token_id(token)
        text = POINTER(c_char)()
        n = c_size_t(0)
        with self._lock, self._use() as p:
            check(_lib.lib().gemfa_detok_stream_feed(p, tid, ctypes.byref(text), ctypes.byref(n)))
            return decode_utf8(ctypes.string_at(text, n.value)) if n.value else ""

    def flush(self) -> str:
        """Ends the stream: held-back bytes come out as U+FFFD each."""
        text = POINTER(c_char)()
        n = c_size_t(0)
        with self._lock, self._use() as p:
            check(_lib.lib().gemfa_detok_stream_flush(p, ctypes.byref(text), ctypes.byref(n)))
            return decode_utf8(ctypes.string_at(text, n.value)) if n.value else ""

    def reset(self) -> None:
        """Forgets held-back bytes and history."""
        with self._lock, self._use() as p:
            _lib.lib().gemfa_detok_stream_reset(p)

    def __repr__(self) -> str:
        return f"<gemfa.DetokenizerStream{' closed' if self.closed else ''}>"

