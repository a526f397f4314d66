"""SIGTERM stops a long-lived command whatever its threads are doing when it comes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# The main thread takes the stop event's lock, as Event.wait does before it sleeps, and the
# signal arrives then: setting the event in the main thread would wait for that lock (reclaim
# run hung so, for ever, on a SIGTERM that came at that moment).
WHILE_THE_EVENT_IS_LOCKED = """
    with stop._cond:
        signal.raise_signal(signal.SIGTERM)
"""

# The kernel hands the signal to another thread (reclaim listen's broker thread, say) while
# the main thread sleeps in stop.wait(): Python runs its handlers in the main thread only,
# when that thread next runs, and a wait without a timeout never ends (reclaim listen hung
# so, for ever, once in 30 stops on a loaded machine).
ON_ANOTHER_THREAD = """
    import sys, time

    def other():
        main = threading.main_thread().ident
        while sys._current_frames()[main].f_code.co_qualname != "Condition.wait":
            time.sleep(0.01)
        time.sleep(0.2)  # asleep in stop.wait() by now
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=other).start()
"""

# A second signal comes while the main thread holds one of threading's own locks (joining a
# finished thread, as a stop does): a handler that starts a thread waits for that lock.
WHILE_THREADING_IS_LOCKED = """
    with threading._shutdown_locks_lock:
        signal.raise_signal(signal.SIGINT)
"""


@pytest.mark.parametrize(
    "moment",
    [WHILE_THE_EVENT_IS_LOCKED, ON_ANOTHER_THREAD, WHILE_THREADING_IS_LOCKED],
    ids=["event-locked", "another-thread", "threading-locked"],
)
def test_a_signal_stops_whatever_the_main_thread_holds_and_whichever_thread_gets_it(
    moment: str,
) -> None:
    script = "\n".join([
        "import signal, threading",
        "from reclaim.signals import stop_on_signals",
        "stop = threading.Event()",
        "with stop_on_signals(stop):",
        textwrap.indent(textwrap.dedent(moment).strip(), "    "),
        '    print("stopped" if stop.wait(20) else "not stopped")',
    ])  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stopped"
