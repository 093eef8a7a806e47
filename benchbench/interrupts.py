"""The signals that stop a run: SIGINT (Ctrl-C), SIGTERM (a CI job cancelled, `kill`) and SIGHUP (the
terminal closed, an SSH session dropped). Inside `stop_signals_interrupt()` SIGTERM and SIGHUP raise
KeyboardInterrupt like Ctrl-C does, so one `except KeyboardInterrupt` kills the workers, saves the
partial reports and removes temporary worktrees and folders whichever signal came.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def install() -> dict[int, Any]:
    """From now on SIGTERM and SIGHUP raise KeyboardInterrupt; returns the handlers to `restore`.
    Signals can only be handled in the main thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _raise) for sig in STOP_SIGNALS}


def restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt while inside; the previous handlers come back after."""
    previous = install()
    try:
        yield
    finally:
        restore(previous)
