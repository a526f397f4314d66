"""Start and stop a real dynalite server (npm package, from node_modules) on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DYNALITE = ROOT / "node_modules" / "dynalite" / "cli.js"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dynalite:
    """A dynalite process with its LevelDB data in ``path`` (survives stop/start on the same
    path), or in memory when ``path`` is None."""

    def __init__(self, path: Path | None, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id (it must be running)."""
        if self.proc is None:
            raise RuntimeError("dynalite is not running")
        return self.proc.pid

    def start(self) -> Dynalite:
        node = shutil.which("node")
        if node is None or not DYNALITE.exists():
            raise RuntimeError("dynalite is not installed: run `npm ci` in the repository root")
        where = [] if self.path is None else ["--path", str(self.path)]
        self.proc = subprocess.Popen(
            [node, str(DYNALITE), "--host", "127.0.0.1", "--port", str(self.port), *where,
             "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dynalite exited with {self.proc.returncode}") from None
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dynalite did not start listening within 15 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (``signal.SIGKILL`` to simulate a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)
        self.proc = None
