"""SIGTERM stops a long-lived command whatever its main thread is doing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# The main thread takes the stop event's lock, as Event.wait does before it sleeps, and the
# signal arrives then: the handler must not wait for that lock (reclaim run hung so, for
# ever, on a SIGTERM that came at that moment).
SCRIPT = textwrap.dedent(
    """
    import signal, threading
    from reclaim.signals import stop_on_signals

    stop = threading.Event()
    with stop_on_signals(stop):
        with stop._cond:
            signal.raise_signal(signal.SIGTERM)
        print("stopped" if stop.wait(10) else "not stopped")
    """
)


def test_a_signal_that_arrives_while_the_stop_event_is_locked_still_stops() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stopped"
