"""Stopping long-lived commands cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from reclaim.bus.log import emit

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM or SIGINT set ``stop`` (and are logged) instead of killing.

    Signals reach only the main thread, so elsewhere (an embedding test, say) this does
    nothing and ``stop`` is set by the caller.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop_now(signum: int) -> None:
        emit("signal", signal=signal.Signals(signum).name)
        stop.set()

    def handler(signum: int, frame: FrameType | None) -> None:
        # A handler runs in the main thread between two bytecodes, possibly while that
        # thread is inside ``stop.wait()`` holding the event's lock: setting the event here
        # would wait for that lock for ever. Another thread sets it once the lock is free.
        threading.Thread(target=stop_now, args=(signum,), name="reclaim-stop").start()

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
