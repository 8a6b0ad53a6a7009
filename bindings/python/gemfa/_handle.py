"""Lifetime of C handles: explicit reference counts, idempotent close, finalizers.

Every C handle is owned by one :class:`Handle`.  Its count starts at 1 (the
Python object that created it); each child handle (a session of a context,
a context of a model) holds one count on its parents, and every call into
the library holds one for its duration.  The C free function runs when the
count reaches 0, so:

- ``close()`` is idempotent and frees at once when nothing else holds the
  handle (deterministic, independent of the garbage collector);
- a model closed while its sessions live is freed after the last of them;
- closing from another thread while a call runs frees after that call.

The Python object registers ``weakref.finalize(obj, handle.release)`` as the
safety net: a forgotten object releases its count when collected, and at
interpreter exit (finalize runs pending callbacks then).  The finalizer holds
the Handle, never the Python object, so there is no reference cycle.
"""
from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence

from ._errors import ClosedError


class Handle:
    """One C handle with its free function and the parent handles it holds."""

    __slots__ = ("ptr", "_free", "_parents", "_refs", "_mutex", "keep", "kind", "__weakref__")

    def __init__(self, ptr: Any, free: Callable[[Any], None], kind: str,
                 parents: Sequence["Handle"] = (), keep: Any = None):
        self.ptr = ptr
        self._free = free
        self._parents = tuple(parents)
        self._refs = 1
        self._mutex = threading.Lock()
        self.kind = kind
        # objects the C side points at (callbacks, their closures): they must
        # live until the C free, so they are dropped only after it.
        self.keep = keep

    def acquire(self) -> Any:
        """Adds a reference and returns the C pointer; ClosedError if already freed."""
        with self._mutex:
            if self._refs <= 0:
                raise ClosedError(f"the {self.kind} was closed")
            self._refs += 1
            return self.ptr

    def release(self) -> None:
        """Drops a reference; the last one frees the C handle, then the parents' counts."""
        with self._mutex:
            if self._refs <= 0:
                return
            self._refs -= 1
            if self._refs > 0:
                return
            ptr, self.ptr = self.ptr, None
        try:
            self._free(ptr)
        finally:
            self.keep = None
            for p in self._parents:
                p.release()

    @contextmanager
    def use(self) -> Iterator[Any]:
        """Holds the handle alive for the duration of one call."""
        ptr = self.acquire()
        try:
            yield ptr
        finally:
            self.release()

    @property
    def alive(self) -> bool:
        return self._refs > 0


class Owner:
    """Base of the public classes that own one Handle (close, with, finalizer)."""

    _handle: Handle
    _finalizer: Optional[weakref.finalize] = None

    def _own(self, handle: Handle) -> None:
        self._handle = handle
        self._finalizer = weakref.finalize(self, handle.release)

    def close(self) -> None:
        """Releases this object's handle.  Idempotent; safe from any thread.

        The C object is freed at once unless a child object (a session of this
        model, ...) or a call running in another thread still holds it; then it
        is freed as soon as the last of them lets go.  Any later method call
        on this object raises :class:`gemfa.ClosedError`."""
        fin = self._finalizer
        if fin is not None:
            fin()  # runs handle.release() at most once

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        fin = self._finalizer
        return fin is None or not fin.alive

    def _use(self):
        """Context manager yielding the C pointer for one call."""
        if self.closed:
            raise ClosedError(f"the {self._handle.kind if self._finalizer else 'object'} "
                              "is closed")
        return self._handle.use()

    def __enter__(self):
        if self.closed:
            raise ClosedError("cannot enter a closed object")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
