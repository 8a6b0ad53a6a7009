"""Status codes and the exception hierarchy: one subclass of Error per gemfa_status."""
from __future__ import annotations

import enum
import errno as _errno
import os
from typing import Dict, Optional, Type


class Status(enum.IntEnum):
    """gemfa_status values (part of the ABI; they never change)."""
    OK = 0
    INVALID_ARGUMENT = 1
    OUT_OF_MEMORY = 2
    IO = 3
    FORMAT = 4
    CONFIG = 5
    TENSOR_MISSING = 6
    TENSOR_SHAPE = 7
    UNSUPPORTED = 8
    NO_TOKENIZER = 9
    NO_WEIGHTS = 10
    INVALID_UTF8 = 11
    INVALID_TOKEN = 12
    TEMPLATE = 13
    BUFFER_TOO_SMALL = 14
    CONTEXT_FULL = 15
    CANCELLED = 16
    INTERNAL = 17
    NOT_FOUND = 18
    MODEL_MISMATCH = 19


class Error(Exception):
    """A libgemfa call failed.

    ``code`` is the gemfa_status value (an int, see :class:`Status`) and
    ``message`` the library's description of what went wrong
    (``gemfa_last_error()`` copied right after the failing call).
    """

    code: int = -1

    def __init__(self, message: str, code: Optional[int] = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    @property
    def status_name(self) -> str:
        """The stable C name, e.g. ``"GEMFA_ERR_IO"``."""
        try:
            return "GEMFA_ERR_" + Status(self.code).name if self.code else "GEMFA_OK"
        except ValueError:
            return "GEMFA_ERR_UNKNOWN"

    def __str__(self) -> str:
        return f"{self.status_name}: {self.message}" if self.message else self.status_name

    def __reduce__(self):
        return (_rebuild, (self.code, self.message, getattr(self, "filename", None)))


def _rebuild(code: int, message: str, filename: Optional[str] = None) -> "Error":
    return error_for(code, message, filename)


class InvalidArgumentError(Error, ValueError):
    """A NULL/closed handle, a bad value or option (GEMFA_ERR_INVALID_ARGUMENT)."""
    code = Status.INVALID_ARGUMENT


class ClosedError(InvalidArgumentError):
    """The object was closed; raised by the binding before reaching the library."""


class OutOfMemoryError(Error, MemoryError):
    """An allocation failed (GEMFA_ERR_OUT_OF_MEMORY)."""
    code = Status.OUT_OF_MEMORY


class IoError(Error, OSError):
    """A file that exists could not be opened, read or mapped (GEMFA_ERR_IO).

    Also an :class:`OSError`: ``filename`` is the path the failing call was
    given (``Model(path)``: the exact file when the message names one inside
    it), ``strerror`` the library's message, and ``errno`` None -- the
    library reports a status, not errno.  A path that does not exist raises
    the subclass :class:`NotFoundError`."""
    code = Status.IO

    def __init__(self, message: str, code: Optional[int] = None,
                 filename: Optional[str] = None):
        super().__init__(message, code)
        self.errno = None
        self.strerror = message
        self.filename = filename


class NotFoundError(IoError, FileNotFoundError):
    """A path does not exist: the model directory (or a file where it should be),
    config.json, the weights, a shard the index names (GEMFA_ERR_NOT_FOUND).

    A :class:`FileNotFoundError` (``errno.ENOENT``, ``strerror`` "No such
    file or directory") and an :class:`IoError`, so ``except gemfa.IoError``
    written for libgemfa 0.1.0, which reported a missing path as
    GEMFA_ERR_IO, still catches it."""
    code = Status.NOT_FOUND

    def __init__(self, message: str, code: Optional[int] = None,
                 filename: Optional[str] = None):
        super().__init__(message, code, filename)
        self.errno = _errno.ENOENT
        self.strerror = os.strerror(_errno.ENOENT)


class FormatError(Error):
    """A file is malformed: JSON, safetensors header, ranges (GEMFA_ERR_FORMAT)."""
    code = Status.FORMAT


class ConfigError(Error):
    """config.json values missing, out of range or inconsistent (GEMFA_ERR_CONFIG)."""
    code = Status.CONFIG


class TensorMissingError(Error):
    """A tensor the config implies is not in the checkpoint (GEMFA_ERR_TENSOR_MISSING)."""
    code = Status.TENSOR_MISSING


class TensorShapeError(Error):
    """A tensor has the wrong shape or an unusable dtype (GEMFA_ERR_TENSOR_SHAPE)."""
    code = Status.TENSOR_SHAPE


class UnsupportedError(Error):
    """A valid input libgemfa does not implement (GEMFA_ERR_UNSUPPORTED)."""
    code = Status.UNSUPPORTED


class NoTokenizerError(Error):
    """The model was loaded without a tokenizer (GEMFA_ERR_NO_TOKENIZER)."""
    code = Status.NO_TOKENIZER


class NoWeightsError(Error):
    """The model was loaded vocabulary-only (GEMFA_ERR_NO_WEIGHTS)."""
    code = Status.NO_WEIGHTS


class InvalidUtf8Error(Error, ValueError):
    """Text is not valid UTF-8 (GEMFA_ERR_INVALID_UTF8)."""
    code = Status.INVALID_UTF8


class InvalidTokenError(Error, ValueError):
    """A token id outside the vocabulary or not accepted here (GEMFA_ERR_INVALID_TOKEN)."""
    code = Status.INVALID_TOKEN


class TemplateError(Error, ValueError):
    """Chat messages the template rejects: role order, empty list (GEMFA_ERR_TEMPLATE)."""
    code = Status.TEMPLATE


class BufferTooSmallError(Error):
    """An output buffer was too small (GEMFA_ERR_BUFFER_TOO_SMALL).

    The binding sizes buffers itself, so user code sees this only through
    the raw ``gemfa.lib()`` functions."""
    code = Status.BUFFER_TOO_SMALL


class ContextFullError(Error):
    """The decode would pass the session's context limit (GEMFA_ERR_CONTEXT_FULL).

    The session is unchanged."""
    code = Status.CONTEXT_FULL


class CancelledError(Error):
    """A callback asked to stop (GEMFA_ERR_CANCELLED); the session is unchanged."""
    code = Status.CANCELLED


class InternalError(Error):
    """A bug in libgemfa (GEMFA_ERR_INTERNAL); please report it."""
    code = Status.INTERNAL


class ModelMismatchError(Error):
    """Saved data belongs to another model, other weights or another weight type
    (GEMFA_ERR_MODEL_MISMATCH), e.g. a session state given to another model's context."""
    code = Status.MODEL_MISMATCH


ERROR_CLASSES: Dict[int, Type[Error]] = {
    cls.code: cls for cls in (
        InvalidArgumentError, OutOfMemoryError, IoError, FormatError, ConfigError,
        TensorMissingError, TensorShapeError, UnsupportedError, NoTokenizerError,
        NoWeightsError, InvalidUtf8Error, InvalidTokenError, TemplateError,
        BufferTooSmallError, ContextFullError, CancelledError, InternalError, NotFoundError,
        ModelMismatchError)
}


def error_for(code: int, message: str, filename: Optional[str] = None) -> Error:
    """The exception for a status code (``Error`` itself for an unknown code).

    ``filename`` becomes the ``filename`` of an :class:`IoError` or
    :class:`NotFoundError` (the path the failing call was given)."""
    cls = ERROR_CLASSES.get(int(code))
    if cls is None:
        return Error(message, int(code))
    if issubclass(cls, IoError):
        return cls(message, filename=filename)
    return cls(message)
