"""Child processes of the tests: read their log until a line, stop them as systemd would."""

from __future__ import annotations

import signal
import subprocess
import time


def lines_until(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[str]:
    """The process's stderr lines up to the first holding ``needle`` (AssertionError if it
    does not come within ``timeout`` seconds, or the process ends first)."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"no {needle} in:\n{''.join(lines)}")


def sigterm_exit_code(proc: subprocess.Popen[str], within: float = 30.0) -> int:
    """Send SIGTERM; the exit code, which must come within ``within`` seconds (a stop that
    hangs, on a broker retry or a thread, hangs for ever; a quiet machine stops in under
    a second, a loaded one has taken over 5 s)."""
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = proc.wait(timeout=2 * within)
    assert time.monotonic() - started < within, "stopping took too long"
    return code
