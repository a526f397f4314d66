"""Stopping long-lived commands on SIGTERM and SIGINT: cleanly, and within a bound.

A signal is noticed by a thread of its own, not by a Python handler: the C-level handler
writes the signal's number to a pipe (:func:`signal.set_wakeup_fd`), whichever thread the
kernel interrupted, and the thread reading that pipe sets the stop event. Python runs its
handlers in the main thread only, when that thread next runs: a signal the kernel handed
to another thread while the main thread slept in ``stop.wait()`` was never handled
(``reclaim listen`` hung so, once in 30 stops on a loaded machine); and a
handler runs wherever the main thread is, holding the stop event's lock or ``threading``'s
own (setting the event, or starting a thread, from there waited for ever).

With a ``grace``, the first signal also starts a watchdog: a stop still under way
``grace`` seconds later ends the process anyway, with a ``stop_overdue`` line naming
where each thread was, and status :data:`STOP_OVERDUE_STATUS`. Messages not yet
acknowledged then are redelivered by the broker (it requeues what a closed connection
held), so the bound costs duplicates, never messages. A clean stop ends the process at
once through :func:`exit_stopped`.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import Any

from reclaim.bus.log import emit

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: Seconds from the first signal to the process's end at most (``reclaim listen``, ``run``).
STOP_GRACE = 30.0

#: The status of a process whose stop outlasted its grace (EX_SOFTWARE).
STOP_OVERDUE_STATUS = 70

#: Set once a stop signal came (the process is stopping).
_stopping = threading.Event()


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: it replaces the default (die at once); the wakeup pipe's
    reader does the work, off the main thread."""


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, *, grace: float | None = None) -> Iterator[None]:
    """While inside, SIGTERM or SIGINT set ``stop`` (and are logged) instead of killing.

    With ``grace`` (seconds), the process ends at the latest ``grace`` seconds after the
    first signal: a stop still under way then is abandoned (``stop_overdue``, status
    :data:`STOP_OVERDUE_STATUS`); the caller ends the process with :func:`exit_stopped`
    once the stop completes. Signals reach only the main thread's handlers, so elsewhere
    (an embedding test, say) this does nothing and ``stop`` is set by the caller.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    reader = threading.Thread(
        target=_read_signals, args=(read_end, stop, grace), name="reclaim-signals", daemon=True
    )
    reader.start()
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    previous = {s: signal.signal(s, _ignore) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_end)  # the reader reads to the end, then ends
        reader.join(timeout=10)
        if not reader.is_alive():
            os.close(read_end)


def _read_signals(fd: int, stop: threading.Event, grace: float | None) -> None:
    """Set ``stop`` for each stop signal written to ``fd``, until the pipe is closed."""
    watched = False
    while data := os.read(fd, 64):
        for number in data:
            if number not in STOP_SIGNALS:
                continue
            if grace is not None and not watched:
                _start_watchdog(grace)  # first: the bound holds even if the log blocks
                watched = True
            _stopping.set()
            emit("signal", signal=signal.Signals(number).name)
            stop.set()


def _start_watchdog(grace: float) -> None:
    started = time.monotonic()

    def watch() -> None:
        time.sleep(grace)
        _overdue(grace, time.monotonic() - started)

    threading.Thread(target=watch, name="reclaim-stop-watchdog", daemon=True).start()


def _overdue(grace: float, waited: float) -> None:
    """End a process whose stop outlasted its grace: one line saying where each thread
    was, then status :data:`STOP_OVERDUE_STATUS`. The line is written by another thread
    given a few seconds: stderr may be a pipe nobody reads, and the exit must not wait."""
    me = threading.get_ident()
    names = {t.ident: t.name for t in threading.enumerate()}
    where = {
        f"{names.get(ident, 'thread')}-{ident}": _where(frame)
        for ident, frame in sys._current_frames().items()
        if ident != me
    }
    line = threading.Thread(
        target=_say_overdue, args=(grace, waited, where), name="reclaim-overdue", daemon=True
    )
    line.start()
    line.join(timeout=3)
    os._exit(STOP_OVERDUE_STATUS)


def _where(frame: FrameType) -> list[str]:
    """A thread's innermost frames, after the innermost of reclaim's own (if not among them)."""
    frames = traceback.extract_stack(frame)
    inner = frames[-3:]
    own = [f for f in frames if f"{os.sep}reclaim{os.sep}" in f.filename]
    if own and own[-1] not in inner:
        inner.insert(0, own[-1])
    return [f"{'/'.join(f.filename.split(os.sep)[-2:])}:{f.lineno} {f.name}" for f in inner]


def _say_overdue(grace: float, waited: float, where: dict[str, list[str]]) -> None:
    emit("stop_overdue", logging.ERROR, grace=grace, seconds=round(waited, 1),
         status=STOP_OVERDUE_STATUS, threads=where)  # fmt: skip
    logging.shutdown()


def exit_stopped() -> None:
    """End the process at once, status 0, if a stop signal stopped it (else return).

    Called once the stop is complete: messages acknowledged, connections closed, log lines
    written. The interpreter's own teardown of the bus, store and cloud libraries is
    skipped: it took over a second of CPU, 10 to 20 s on a loaded machine, and nothing
    bounded it.
    """
    if not _stopping.is_set():
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class Service(abc.ABC):
    """A long-lived service: :meth:`run` starts it, serves until SIGTERM, SIGINT or
    :meth:`request_stop`, then stops it cleanly."""

    #: Seconds a stop may take after a signal before the process ends anyway (None: no
    #: bound): see :func:`stop_on_signals`.
    stop_grace: float | None = None

    def __init__(self) -> None:
        self._stop = threading.Event()

    @abc.abstractmethod
    def start(self) -> Any:
        """Begin serving; return once it does (or once :meth:`request_stop` was called)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop serving: finish the work in hand, release what was taken."""

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop."""
        self._stop.set()

    def run(self) -> None:
        """Start, serve until SIGTERM or SIGINT, then stop cleanly (within ``stop_grace``
        seconds of the signal, or the process ends anyway)."""
        with stop_on_signals(self._stop, grace=self.stop_grace):
            try:
                self.start()
                self._stop.wait()
            finally:
                self.stop()
