"""A stop request that cannot be lost. A signal handler that raises ``KeyboardInterrupt`` can see
it dropped: C++ code calling back into Python may clear whatever exception a callback raised
(pyarrow does, around the imports it makes lazily), and the program then runs on as if nothing
had happened. So the command line's handler records the request here too, and the transform
checks it at its safe points (between blocks, before a commit), where it raises the interrupt
again. Nothing sets it in Lambda, where the runtime ends the process itself.
"""
from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    """Ask the work in progress to stop (from a signal handler)."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a stop was asked for."""
    if _requested.is_set():
        raise KeyboardInterrupt


def clear() -> None:
    """Forget a request once it has been acted on (a process that goes on working: tests)."""
    _requested.clear()
