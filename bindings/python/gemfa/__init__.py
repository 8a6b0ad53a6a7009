"""Python bindings for libgemfa: Gemma 3n language models on the CPU.

Quick start::

    import gemfa
    with gemfa.Model("path/to/gemma-3n-dir") as m:
        with m.session(context=4096, threads=2) as s:
            for piece in s.generate("سلام", max_new_tokens=64, temperature=0.7, seed=1):
                print(piece, end="", flush=True)

The shared library is found through ``$GEMFA_LIBRARY``, then next to this
package, then the system loader (see :func:`load_library`).  Every libgemfa
failure raises a subclass of :class:`gemfa.Error` carrying ``.code`` and
``.message``; a path that does not exist raises :class:`gemfa.NotFoundError`,
which is also a :class:`FileNotFoundError` (and an :class:`gemfa.IoError`,
itself an :class:`OSError`).  Objects free their C handles on :meth:`close`, at the end of a
``with`` block, or when garbage collected; children keep parents alive.
"""
from __future__ import annotations

from ._errors import (BufferTooSmallError, CancelledError, ClosedError, ConfigError,
                      ContextFullError, Error, FormatError, InternalError, InvalidArgumentError,
                      InvalidTokenError, InvalidUtf8Error, IoError, ModelMismatchError,
                      NoTokenizerError, NotFoundError, NoWeightsError, OutOfMemoryError, Status,
                      TemplateError, TensorMissingError, TensorShapeError, UnsupportedError,
                      error_for)
from ._constraint import JsonConstraint
from ._generate import Generation
from ._lib import LibraryNotFoundError, lib, library_path, load_library
from ._log import LogLevel, log_to_logging, set_log_callback
from ._model import LayerInfo, LayerType, Model, Prop, WeightType
from ._sampler import Sampler
from ._session import Context, KvType, Session
from ._speculate import Speculator
from ._stop import StopMatcher, logprobs
from ._text import DetokenizerStream

__version__ = "0.1.0"


def version() -> str:
    """Version string of the loaded libgemfa (e.g. "0.1.0")."""
    return lib().gemfa_version_string().decode()


def version_number() -> int:
    """MAJOR * 10000 + MINOR * 100 + PATCH of the loaded libgemfa."""
    return int(lib().gemfa_version_number())


def status_name(code: int) -> str:
    """The library's stable name of a status code, e.g. "GEMFA_ERR_IO"."""
    return lib().gemfa_status_name(int(code)).decode()


__all__ = [
    "BufferTooSmallError", "CancelledError", "ClosedError", "ConfigError", "Context",
    "ContextFullError", "DetokenizerStream", "Error", "FormatError", "Generation",
    "InternalError", "InvalidArgumentError", "InvalidTokenError", "InvalidUtf8Error", "IoError",
    "JsonConstraint", "KvType",
    "LayerInfo", "LayerType", "LibraryNotFoundError", "LogLevel", "Model", "ModelMismatchError",
    "NoTokenizerError", "NotFoundError", "NoWeightsError", "OutOfMemoryError", "Prop", "Sampler",
    "Session", "Speculator", "Status", "StopMatcher", "logprobs",
    "TemplateError", "TensorMissingError", "TensorShapeError", "UnsupportedError", "WeightType",
    "error_for", "lib", "library_path", "load_library", "log_to_logging", "set_log_callback",
    "status_name", "version", "version_number",
]

# Only the public names stay in the package namespace (dir(gemfa) == __all__
# plus dunders): importing a submodule binds it on the package, so unbind the
# private modules and the __future__ feature.  They stay importable
# (``from gemfa import _core``) through sys.modules.
for _name in ("_constraint", "_core", "_errors", "_generate", "_handle", "_lib", "_log",
              "_model", "_sampler", "_session", "_speculate", "_stop", "_text"):
    globals().pop(_name, None)
del _name, annotations
