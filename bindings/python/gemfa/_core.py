"""Shared helpers: status checks, argument conversion, the size-query protocol, arrays."""
from __future__ import annotations

import ctypes
import operator
import os
from ctypes import POINTER, c_char, c_float, c_int32, c_size_t
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from . import _lib
from ._errors import BufferTooSmallError, InvalidTokenError, Status, error_for

try:  # numpy is optional: logits come back as ndarrays with it, lists without
    import numpy
except ImportError:  # pragma: no cover - depends on the machine
    numpy = None  # type: ignore[assignment]

# Module switch (tests flip it to exercise the list path).
use_numpy: bool = numpy is not None

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1

Ids = Union[Sequence[int], Iterable[int], Any]  # any iterable of ints, or a numpy int array


def last_error() -> str:
    """The calling thread's last libgemfa error message."""
    raw = _lib.lib().gemfa_last_error()
    return raw.decode("utf-8", "replace") if raw else ""


def check(status: int) -> None:
    """Raises the Error subclass for a failed status, with the library's message."""
    if status != Status.OK:
        raise error_for(status, last_error())


def encode_text(text: Union[str, bytes, bytearray, memoryview], what: str = "text") -> bytes:
    """UTF-8 bytes of ``text``.

    A ``str`` with lone surrogates is passed through (``surrogatepass``) so
    the library reports it as invalid UTF-8, like any other bad byte string;
    bytes-like objects are passed unchanged."""
    if isinstance(text, str):
        return text.encode("utf-8", "surrogatepass")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise TypeError(f"{what} must be str or bytes, not {type(text).__name__}")


def encode_path(path: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]) -> bytes:
    """A file-system path as bytes for a NUL-terminated C argument."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be str, bytes or os.PathLike, not {type(path).__name__}")
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise ValueError("path contains a NUL byte")
    return raw


def as_token_id(value: Any, what: str = "token id") -> int:
    """An int that fits int32; TypeError for non-integers, InvalidTokenError outside int32."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if not INT32_MIN <= v <= INT32_MAX:
        raise InvalidTokenError(f"{what} {v} is outside the 32-bit range of token ids")
    return v


def id_array(ids: Ids) -> Tuple[Any, int]:
    """(pointer usable as ``int32_t *``, count) for a sequence of token ids.

    Accepts any iterable of ints or a numpy integer array (converted to
    contiguous int32 after a range check).  The returned object keeps the
    memory alive; pass it straight to the C function."""
    if isinstance(ids, (str, bytes, bytearray)):
        raise TypeError("token ids must be a sequence of ints, not text")
    if numpy is not None and isinstance(ids, numpy.ndarray):
        if ids.ndim != 1:
            raise ValueError(f"token ids must be 1-D, not of shape {ids.shape}")
        if ids.dtype.kind not in "iu":
            raise TypeError(f"token ids must be integers, not {ids.dtype}")
        if ids.size and (int(ids.min()) < INT32_MIN or int(ids.max()) > INT32_MAX):
            raise InvalidTokenError("a token id is outside the 32-bit range of token ids")
        arr = numpy.ascontiguousarray(ids, dtype=numpy.int32)
        return _NumpyIds(arr), int(arr.size)
    try:
        seq = list(ids)
    except TypeError:
        raise TypeError(f"token ids must be an iterable of ints, not {type(ids).__name__}") \
            from None
    buf = (c_int32 * len(seq))(*[as_token_id(v) for v in seq])
    return buf, len(seq)


class _NumpyIds:
    """Adapter: a numpy int32 array passed where ctypes expects POINTER(c_int32)."""
    __slots__ = ("arr", "_as_parameter_")

    def __init__(self, arr: Any):
        self.arr = arr
        self._as_parameter_ = arr.ctypes.data_as(POINTER(c_int32))


def ids_from(ptr: Any, n: int) -> List[int]:
    """A Python list copy of ``n`` int32 values at ``ptr``."""
    return ptr[:n] if n else []


def float_vector(ptr: Any, n: int) -> Any:
    """A copy of ``n`` floats at ``ptr``: a numpy float32 array, or a list."""
    if use_numpy:
        if n == 0:
            return numpy.empty(0, dtype=numpy.float32)
        return numpy.ctypeslib.as_array(ptr, shape=(n,)).copy()
    return ptr[:n]


def float_matrix_buffer(rows: int, cols: int) -> Tuple[Any, Any]:
    """(owner object, POINTER(c_float)) for a fresh rows x cols row-major buffer."""
    if use_numpy:
        arr = numpy.empty((rows, cols), dtype=numpy.float32)
        return arr, arr.ctypes.data_as(POINTER(c_float))
    buf = (c_float * (rows * cols))()
    return buf, ctypes.cast(buf, POINTER(c_float))


def float_matrix_result(owner: Any, rows: int, cols: int) -> Any:
    """The value handed to the user for a buffer made by float_matrix_buffer."""
    if use_numpy:
        return owner
    flat = owner[:]
    return [flat[r * cols:(r + 1) * cols] for r in range(rows)]


def float_input(values: Any) -> Tuple[Any, int]:
    """(object usable as ``const float *``, count) for logits given by the user."""
    if numpy is not None and isinstance(values, numpy.ndarray):
        if values.ndim != 1:
            raise ValueError(f"logits must be 1-D, not of shape {values.shape}")
        arr = numpy.ascontiguousarray(values, dtype=numpy.float32)
        return _NumpyFloats(arr), int(arr.size)
    if isinstance(values, (str, bytes)):
        raise TypeError("logits must be a sequence of floats")
    try:
        seq = [float(v) for v in values]
    except TypeError:
        raise TypeError(f"logits must be a sequence of floats, not {type(values).__name__}") \
            from None
    return (c_float * len(seq))(*seq), len(seq)


class _NumpyFloats:
    __slots__ = ("arr", "_as_parameter_")

    def __init__(self, arr: Any):
        self.arr = arr
        self._as_parameter_ = arr.ctypes.data_as(POINTER(c_float))


def query_text(call: Callable[[Any, int, Any], int], guess: int) -> bytes:
    """Runs a text-producing call with the size-query protocol.

    ``call(buf, cap, byref(len))`` writes NUL-terminated text.  The first try
    uses ``guess`` bytes; on GEMFA_ERR_BUFFER_TOO_SMALL the reported length
    (+1 for the NUL) is allocated and the call repeated."""
    cap = max(int(guess), 16)
    n = c_size_t(0)
    for _ in range(4):
        buf = ctypes.create_string_buffer(cap)
        st = call(ctypes.cast(buf, POINTER(c_char)), cap, ctypes.byref(n))
        if st == Status.BUFFER_TOO_SMALL:
            cap = n.value + 1
            continue
        check(st)
        return ctypes.string_at(buf, n.value)
    raise BufferTooSmallError("the output kept growing between size queries")


def query_ids(call: Callable[[Any, int, Any], int], guess: int) -> List[int]:
    """Like query_text for calls writing int32 ids: ``call(ids, cap, byref(n))``."""
    cap = max(int(guess), 1)
    n = c_size_t(0)
    for _ in range(4):
        buf = (c_int32 * cap)()
        st = call(buf, cap, ctypes.byref(n))
        if st == Status.BUFFER_TOO_SMALL:
            cap = max(n.value, 1)
            continue
        check(st)
        return buf[:n.value]
    raise BufferTooSmallError("the output kept growing between size queries")


def decode_utf8(raw: bytes) -> str:
    """Library text -> str.  The library promises valid UTF-8 (U+FFFD already
    substituted); 'surrogateescape' keeps any stray byte round-trippable
    rather than raising in the middle of a generation."""
    return raw.decode("utf-8", "surrogateescape")


def optional_str(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""
