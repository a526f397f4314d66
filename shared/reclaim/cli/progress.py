"""How a command that can take more than a few seconds says what it is doing.

On a terminal: a rich progress display on stderr (what it is doing, how many done, for how
long), each step (a project cleanup's ``deleting Server ...``) printed above it and kept.
Elsewhere (cron, a pipe, a log collector): JSON log lines of the one schema
(:mod:`reclaim.bus.log`), event ``progress``: one per step, and for counted work one every
:data:`EVERY` seconds and one at the end of a long run. Steps may come from any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from reclaim.bus.log import emit

#: Seconds between two lines saying how far counted work has got (not on a terminal).
EVERY = 5.0


class Reporter:
    """The progress of one ``command`` doing ``what`` (see the module's docstring)."""

    def __init__(
        self,
        command: str,
        what: str,
        *,
        console: Console | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.command = command
        self.what = what
        self.console = console or Console(stderr=True)
        self.every = EVERY if every is None else every
        self.clock = clock
        self.done = 0
        self._lock = threading.Lock()
        self._started = self._last = clock()
        self._said = False
        self._bar: Progress | None = None
        if self.console.is_terminal:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TextColumn("{task.completed:.0f} done"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._bar.add_task(what, total=None)

    def __enter__(self) -> Reporter:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._said and kind is None:
            emit("progress", command=self.command, what=self.what, done=self.done,
                 seconds=round(self.clock() - self._started, 1), finished=True)  # fmt: skip

    def step(self, line: str) -> None:
        """Say what is being done now (a line kept on a terminal, a log line elsewhere)."""
        if self._bar is not None:
            self._bar.console.print(Text(line))
        else:
            emit("progress", command=self.command, step=line)

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more items done; elsewhere than on a terminal, say so every
        :data:`EVERY` seconds."""
        if self._bar is not None:
            self._bar.advance(self._task, count)
            return
        with self._lock:
            self.done += count
            done, now = self.done, self.clock()
            due = now - self._last >= self.every
            if due:
                self._last = now
                self._said = True
        if due:
            emit("progress", command=self.command, what=self.what, done=done,
                 seconds=round(now - self._started, 1))  # fmt: skip
