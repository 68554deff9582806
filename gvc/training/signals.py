"""Graceful stop on Ctrl-C / SIGTERM: finish the current step, save a checkpoint, return.

A second Ctrl-C raises `KeyboardInterrupt` at once (nothing more is saved).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """Installs SIGINT/SIGTERM handlers (main thread only) that set `requested`."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def install(self) -> StopRequest:
        """Start listening (a no-op outside the main thread)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        """Restore the previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
