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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dynalite exited with {self.proc.returncode}") from None
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dynalite did not start listening within 60 s")

    def answers(self) -> bool:
        """True when the server answers a DynamoDB request (ListTables) right now."""
        body = b"{}"
        head = (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "X-Amz-Target: DynamoDB_20120810.ListTables\r\n"
            "Content-Type: application/x-amz-json-1.0\r\n"
            "Authorization: AWS4-HMAC-SHA256 Credential=a/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(head + body)
                return s.recv(12).startswith(b"HTTP/1.1 ")
        except OSError:
            return False

    def ensure_serving(self, within: float = 60) -> None:
        """Restart the server on its own data if it has died (a client killed mid-request
        can take dynalite down, a moment later), and wait until it answers a request."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                self.start()
            elif self.answers():
                return
            else:
                time.sleep(0.1)
        raise RuntimeError(f"dynalite on {self.url} did not answer within {within:.0f} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (``signal.SIGKILL`` to simulate a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)
        self.proc = None
