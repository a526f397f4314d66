"""Serve a :class:`Cloud` over HTTP on 127.0.0.1, write its clouds.yaml, connect to it."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from reclaim_sim.cloud import Cloud
from reclaim_sim.compute import ComputeAPI
from reclaim_sim.control import ControlAPI
from reclaim_sim.identity import IdentityAPI
from reclaim_sim.image import ImageAPI
from reclaim_sim.network import NetworkAPI
from reclaim_sim.object_store import ObjectStoreAPI
from reclaim_sim.volume import VolumeAPI
from reclaim_sim.wsgi import SimApp

ADMIN_CLOUD = "sim-admin"


class _Handler(WSGIRequestHandler):
    """Keep-alive (HTTP/1.1) so clients reuse connections; no per-request log lines."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


def make_app(cloud: Cloud) -> SimApp:
    """The WSGI app serving every simulated service of ``cloud``."""
    apis = [
        IdentityAPI(cloud),
        ComputeAPI(cloud),
        ImageAPI(cloud),
        VolumeAPI(cloud),
        NetworkAPI(cloud),
        ObjectStoreAPI(cloud),
        ControlAPI(cloud),
    ]
    return SimApp(cloud, list(apis))


class SimServer:
    """Runs ``cloud`` on 127.0.0.1 in a background thread; a context manager.

    ``port=0`` picks a free port. ``url`` is the base address once started.
    """

    def __init__(
        self, cloud: Cloud | None = None, *, port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        self.cloud = cloud or Cloud()
        self.host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulated cloud is not running")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    def start(self) -> SimServer:
        if self._server is not None:
            return self
        server = make_server(
            self.host, self._port, make_app(self.cloud), threaded=True, request_handler=_Handler
        )
        server.daemon_threads = True  # type: ignore[attr-defined]
        self._server = server
        self.cloud.base_url = f"http://{self.host}:{server.server_port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"reclaim-sim:{server.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- client configuration --------------------------------------------------------------
    def cloud_config(
        self, user: str = "admin", project: str = "admin", password: str | None = None
    ) -> dict[str, Any]:
        """A clouds.yaml entry for ``user`` scoped to ``project`` (names)."""
        if password is None:
            password = (
                self.cloud.admin_password
                if user == "admin"
                else self.cloud.identity.user(user).password
            )
        return {
            "auth_type": "password",
            "auth": {
                "auth_url": self.auth_url,
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": self.cloud.config.region,
            "interface": "public",
            "identity_api_version": 3,
        }

    def clouds(self) -> dict[str, dict[str, Any]]:
        """clouds.yaml entries: ``sim-admin`` and ``sim-<project>`` per user's first project.

        Each project gets one entry for the first user holding a role on it (admin
        excluded), so ``OS_CLOUD=sim-<project>`` acts as a member of that project.
        """
        cloud = self.cloud
        entries = {ADMIN_CLOUD: self.cloud_config()}
        with cloud.lock:
            for (uid, pid), roles in sorted(cloud.identity.assignments.items()):
                project = cloud.identity.projects.get(pid)
                user = cloud.identity.users.get(uid)
                if not roles or project is None or user is None or user.name == "admin":
                    continue
                entries.setdefault(
                    f"sim-{project.name}", self.cloud_config(user.name, project.name, user.password)
                )
        return entries

    def write_clouds_yaml(self, path: str | Path) -> Path:
        """Write a clouds.yaml for this cloud (admin and per-project entries)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump({"clouds": self.clouds()}, sort_keys=False))
        return target

    def connect(
        self,
        user: str = "admin",
        project: str = "admin",
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """An ``openstack.connection.Connection`` for ``user`` on ``project``."""
        import openstack.connection

        config = self.cloud_config(user, project, password)
        return openstack.connection.Connection(
            auth_type=config["auth_type"],
            auth=config["auth"],
            region_name=config["region_name"],
            interface="public",
            identity_api_version="3",
            **kwargs,
        )


@contextmanager
def empty_cloud_environment() -> Iterator[dict[str, str]]:
    """An empty simulated cloud on 127.0.0.1 and the variables that point openstacksdk at it
    (``reclaim invoke --lambda`` without a cloud of its own)."""
    cloud = Cloud()
    with tempfile.TemporaryDirectory(prefix="reclaim-sim-") as tmp, SimServer(cloud) as server:
        path = server.write_clouds_yaml(Path(tmp) / "clouds.yaml")
        yield {"OS_CLIENT_CONFIG_FILE": str(path), "OS_CLOUD": ADMIN_CLOUD}
    cloud.close()
