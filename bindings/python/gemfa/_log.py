"""Process-wide log callback (gemfa_set_log_callback)."""
from __future__ import annotations

import atexit
import enum
import logging
import threading
from typing import Any, Callable, Optional

from . import _lib


class LogLevel(enum.IntEnum):
    """gemfa_log_level."""
    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


LogFn = Callable[[LogLevel, str], Any]

_mutex = threading.Lock()
# The installed trampoline.  Replaced callbacks stay referenced for good: the
# header allows calls already running to use the old one, so freeing its
# ctypes thunk could crash such a call.
_current: Optional[Any] = None
_retired: list = []


def _make_trampoline(fn: LogFn) -> Any:
    def call(_user: Any, level: int, msg: Optional[bytes]) -> None:
        try:
            text = msg.decode("utf-8", "replace") if msg else ""
            try:
                lvl = LogLevel(level)
            except ValueError:
                lvl = LogLevel.DEBUG
            fn(lvl, text)
        except BaseException:  # noqa: B902 - never let an exception reach C
            pass
    return _lib.LOG_FN(call)


def set_log_callback(fn: Optional[LogFn], level: LogLevel = LogLevel.WARN) -> None:
    """Sends libgemfa's log lines at ``level`` and more severe to ``fn(level, message)``.

    ``fn`` may be called from any thread inside a libgemfa call, so it must be
    thread-safe; exceptions it raises are ignored.  ``None`` silences the
    library (by default warnings and errors go to stderr).  The callback is
    kept referenced by this module.  See also :func:`log_to_logging`."""
    global _current
    if fn is not None and not callable(fn):
        raise TypeError("fn must be callable or None")
    lvl = LogLevel(level)
    lib = _lib.lib()
    with _mutex:
        thunk = _make_trampoline(fn) if fn is not None else _lib.LOG_FN()
        lib.gemfa_set_log_callback(thunk, None, int(lvl))
        if _current is not None:
            _retired.append(_current)
        _current = thunk


_PY_LEVELS = {LogLevel.ERROR: logging.ERROR, LogLevel.WARN: logging.WARNING,
              LogLevel.INFO: logging.INFO, LogLevel.DEBUG: logging.DEBUG}


def log_to_logging(logger: Optional[logging.Logger] = None,
                   level: LogLevel = LogLevel.INFO) -> None:
    """Routes libgemfa's log lines to a :mod:`logging` logger (default "gemfa")."""
    log = logger if logger is not None else logging.getLogger("gemfa")
    set_log_callback(lambda lvl, msg: log.log(_PY_LEVELS[lvl], "%s", msg), level)


@atexit.register
def _silence_at_exit() -> None:
    # A library thread logging while the interpreter shuts down must not call
    # into Python any more.
    if _current is not None and _lib._lib is not None:
        _lib._lib.gemfa_set_log_callback(_lib.LOG_FN(), None, 0)
