"""A TCP relay in front of RabbitMQ that a test can cut or silence, instead of stopping
the broker every test run shares."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

from tests.bus.conftest import RABBIT


class Relay:
    """Forwards 127.0.0.1:``port`` to the broker.

    :meth:`cut` closes every connection and refuses new ones (a broker that went away);
    :meth:`silence` keeps the connections open but passes nothing on, either way, and
    answers no new one (a broker that hangs: a client waits for its socket timeout).
    """

    def __init__(self, upstream: str = RABBIT, *, accept: int | None = None) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        #: How many connections are relayed before the next ones are refused (None: all).
        self.accept = accept
        self.accepted = 0
        self.silent = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="relay", daemon=True)
        self._thread.start()

    def url(self, vhost: str) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed: cut or closed
            with self._lock:
                refuse = self.accept is not None and self.accepted >= self.accept
                self.accepted += 1
                self._sockets.append(client)
            if self.silent:
                continue  # held open, never answered
            if refuse:
                client.close()
                continue
            try:
                broker = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.append(broker)
            threading.Thread(target=self._pump, args=(client, broker), daemon=True).start()

    def _pump(self, client: socket.socket, broker: socket.socket) -> None:
        ends = {client: broker, broker: client}
        try:
            while True:
                readable, _, _ = select.select(list(ends), [], [], 0.2)
                if self.silent:
                    continue
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)
        except (OSError, ValueError):
            return  # cut
        finally:  # one side closed: close the other, as a broker or a client would see it
            for sock in ends:
                with contextlib.suppress(OSError):
                    sock.close()

    def silence(self) -> None:
        self.silent = True

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self._server.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def relay(**kwargs: int | None) -> Iterator[Relay]:
    """A :class:`Relay`, cut at the end (so the broker drops what its connections held)."""
    r = Relay(**kwargs)  # type: ignore[arg-type]
    try:
        yield r
    finally:
        r.cut()
