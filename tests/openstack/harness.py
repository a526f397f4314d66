"""A real OpenStack on this machine: Keystone, Glance, Placement, Nova (fake driver),
Neutron (API only, router plugin) and Cinder (fake volume driver), from PyPI.

``python -m tests.openstack.harness up [--dir D]`` installs the pinned releases into a
cached venv outside the repository (``~/.cache/reclaim/openstack-venv-<hash>``, keyed by
``requirements.txt``), creates this run's databases on MariaDB (127.0.0.1:3306, root),
starts a RabbitMQ node of its own and every service on 127.0.0.1 with free ports, and prints
what to export. ``python -m tests.openstack.harness down [--dir D]`` stops each process by
its own pid and drops the databases. Standard library only: it runs under any Python 3.11.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
ROOT = HERE.parents[1]
DEFAULT_DIR = ROOT / ".reclaim-openstack"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reclaim"
PYTHON = os.environ.get("RECLAIM_OPENSTACK_PYTHON", "python3.11")

MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306
#: runs a RabbitMQ node as the calling user (Debian's /usr/sbin/rabbitmq-server switches to
#: the rabbitmq user, which could not write the run's directory)
RABBITMQ_SERVER = os.environ.get("RECLAIM_RABBITMQ_SERVER", "/usr/lib/rabbitmq/bin/rabbitmq-server")
REGION = "RegionOne"
ADMIN_PASSWORD = "reclaim-admin"  # a throwaway cloud on 127.0.0.1, dropped at down
#: the services started under gunicorn, with their WSGI module and config variable
WSGI = {
    "keystone": "keystone.wsgi.api",
    "glance": "glance.wsgi.api",
    "placement": "placement.wsgi.api",
    "nova": "nova.wsgi.osapi_compute",
    "neutron": "neutron.wsgi.api",
    "cinder": "cinder.wsgi.api",
}
#: the services' databases (MariaDB: Nova and Neutron fail on SQLite under load)
DATABASES = (
    "keystone",
    "glance",
    "placement",
    "nova_api",
    "nova_cell0",
    "nova",
    "neutron",
    "cinder",
)


class HarnessError(RuntimeError):
    """Something the harness could not do, in one line."""


# -- the venv ------------------------------------------------------------------------------
def venv_path() -> Path:
    """The cached venv for the pinned requirements (and this Python's version)."""
    version = subprocess.run(
        [PYTHON, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + version.encode()).hexdigest()[:12]
    return CACHE / f"openstack-venv-{key}"


def ensure_venv(log: Callable[[str], None] = print) -> Path:
    """The venv, installed once (under a lock: concurrent runs wait for one install)."""
    if shutil.which(PYTHON) is None:
        raise HarnessError(f"{PYTHON} is not installed (set RECLAIM_OPENSTACK_PYTHON)")
    venv = venv_path()
    done = venv / ".installed"
    if done.exists():
        return venv
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "openstack-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        log(f"installing the OpenStack services into {venv} (once; about 2 minutes)")
        started = time.monotonic()
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        proc = subprocess.run(
            [*pip, "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln] or [proc.stderr]
            raise HarnessError(f"pip install of the OpenStack services failed: {errors[-1]}")
        done.write_text(f"{time.monotonic() - started:.0f}s\n")
        log(f"installed in {time.monotonic() - started:.0f} s")
    return venv


# -- what a run holds ----------------------------------------------------------------------
@dataclass
class Run:
    """One started cloud: where it lives, its ports, databases and processes."""

    dir: str
    run_id: str
    venv: str
    ports: dict[str, int]
    databases: list[str]
    pids: dict[str, int] = field(default_factory=dict)
    started_in: float = 0.0

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def transport_url(self) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{self.ports['rabbitmq']}/"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['keystone']}/v3"

    @property
    def clouds_yaml(self) -> Path:
        return self.path / "clouds.yaml"

    def db_url(self, name: str) -> str:
        return f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{self.run_id}_{name}?charset=utf8"

    def bin(self, name: str) -> str:
        return str(Path(self.venv) / "bin" / name)

    def exports(self) -> dict[str, str]:
        return {
            "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml),
            "OS_CLOUD": "openstack-admin",
            "RECLAIM_BUS__TRANSPORT_URL": self.transport_url,
        }

    def save(self) -> None:
        (self.path / "run.json").write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, directory: Path) -> Run:
        try:
            return cls(**json.loads((directory / "run.json").read_text()))
        except FileNotFoundError:
            raise HarnessError(f"no cloud is running from {directory}") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- MariaDB and RabbitMQ ------------------------------------------------------------------
def mysql(sql: str) -> None:
    if shutil.which("mysql") is None:
        raise HarnessError("MariaDB is absent: the mysql client is not installed")
    proc = subprocess.run(
        ["mysql", "-h", MYSQL_HOST, "-P", str(MYSQL_PORT), "-u", "root", "-e", sql],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        line = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        raise HarnessError(f"MariaDB on {MYSQL_HOST}:{MYSQL_PORT} (root) refused: {line}")


def check_mariadb() -> None:
    """Fail in one line when MariaDB is not there (Nova, Neutron and Cinder need it)."""
    try:
        with socket.create_connection((MYSQL_HOST, MYSQL_PORT), timeout=5):
            pass
    except OSError:
        raise HarnessError(
            f"MariaDB is absent: nothing listens on {MYSQL_HOST}:{MYSQL_PORT} "
            "(the real-cloud tests need it for Nova, Neutron and Cinder)"
        ) from None
    mysql("SELECT 1")


def check_rabbitmq() -> None:
    if not os.access(RABBITMQ_SERVER, os.X_OK):
        raise HarnessError(
            f"RabbitMQ is absent: {RABBITMQ_SERVER} is not installed (RECLAIM_RABBITMQ_SERVER "
            "names another rabbitmq-server script)"
        )


def start_broker(run: Run) -> None:
    """The run's own RabbitMQ node (its data, logs and Erlang cookie in the run's directory,
    guest on 127.0.0.1 and a free port). Not the machine's broker: the main suite's bus tests
    stop and start that one, which lost a shelve Nova was doing (its RPC reply) and failed a
    test of the tier when both ran at once."""
    d = run.path / "rabbitmq"
    d.mkdir(parents=True, exist_ok=True)
    (d / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "HOME": str(d),  # its Erlang cookie
        "RABBITMQ_NODENAME": f"{run.run_id}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(run.ports["rabbitmq"]),
        "RABBITMQ_DIST_PORT": str(run.ports["rabbitmq-dist"]),
        "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
        "RABBITMQ_LOG_BASE": str(run.path / "logs" / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
        # none of the machine's settings: no such files
        "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
    }
    spawn(run, "rabbitmq", "rabbitmq", [RABBITMQ_SERVER], env=env)


def broker_answers(run: Run) -> bool:
    """The run's RabbitMQ answers an AMQP 0-9-1 client (its listener opens once it booted)."""
    with socket.create_connection(("127.0.0.1", run.ports["rabbitmq"]), timeout=5) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        return s.recv(1)[:1] == b"\x01"  # a method frame: connection.start


# -- configuration -------------------------------------------------------------------------
def _ini(sections: dict[str, dict[str, Any]]) -> str:
    out: list[str] = []
    for name, values in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in values.items())
        out.append("")
    return "\n".join(out)


def _auth(run: Run) -> dict[str, str]:
    return {
        "auth_url": run.auth_url,
        "auth_type": "password",
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "region_name": REGION,
    }


def _common(run: Run, service: str) -> dict[str, dict[str, Any]]:
    return {
        "DEFAULT": {
            "transport_url": run.transport_url,
            "log_file": str(run.path / "logs" / f"{service}.log"),
            "debug": "false",
            "graceful_shutdown_timeout": 5,  # oslo.service waits 60 s on SIGTERM
        },
        "oslo_messaging_notifications": {
            "driver": "messagingv2",
            "transport_url": run.transport_url,
        },
        "oslo_concurrency": {"lock_path": str(run.path / "locks" / service)},
        "keystone_authtoken": {
            **_auth(run),
            "www_authenticate_uri": run.auth_url,
        },
    }


def _merge(*parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for section, values in part.items():
            out.setdefault(section, {}).update(values)
    return out


def write_configs(run: Run) -> None:
    p, venv_etc = run.path, Path(run.venv) / "etc"
    for d in ("logs", "locks", "images", "staging", "tasks", "nova", "cinder", "keys", "rabbitmq"):
        (p / d).mkdir(parents=True, exist_ok=True)
    conf: dict[str, dict[str, dict[str, Any]]] = {}
    ks_common = _common(run, "keystone")
    del ks_common["keystone_authtoken"]
    conf["keystone"] = _merge(
        ks_common,
        {
            "DEFAULT": {"notification_format": "cadf"},
            "database": {"connection": run.db_url("keystone")},
            "token": {"provider": "fernet"},
            "fernet_tokens": {"key_repository": p / "keys" / "fernet"},
            "fernet_receipts": {"key_repository": p / "keys" / "fernet"},
            "credential": {"key_repository": p / "keys" / "credential"},
        },
    )
    conf["glance"] = _merge(
        _common(run, "glance"),
        {
            "DEFAULT": {"enabled_backends": "fs:file"},
            "database": {"connection": run.db_url("glance")},
            "paste_deploy": {
                "flavor": "keystone",
                "config_file": venv_etc / "glance" / "glance-api-paste.ini",
            },
            "glance_store": {"default_backend": "fs"},
            "fs": {"filesystem_store_datadir": p / "images"},
            "os_glance_staging_store": {"filesystem_store_datadir": p / "staging"},
            "os_glance_tasks_store": {"filesystem_store_datadir": p / "tasks"},
        },
    )
    conf["placement"] = _merge(
        _common(run, "placement"),
        {
            "placement_database": {"connection": run.db_url("placement")},
            "api": {"auth_strategy": "keystone"},
        },
    )
    conf["nova"] = _merge(
        _common(run, "nova"),
        {
            "DEFAULT": {
                "compute_driver": "fake.FakeDriver",
                "my_ip": "127.0.0.1",
                "host": f"reclaim-{run.run_id}",
                "state_path": p / "nova",
                "instances_path": p / "nova" / "instances",
            },
            "api": {"auth_strategy": "keystone"},
            "wsgi": {"api_paste_config": venv_etc / "nova" / "api-paste.ini"},
            "api_database": {"connection": run.db_url("nova_api")},
            "database": {"connection": run.db_url("nova")},
            "notifications": {
                "notification_format": "both",
                "notify_on_state_change": "vm_and_task_state",
            },
            "placement": _auth(run),
            # a service token beside the user's: Cinder deletes an attachment in use (the
            # detach of a server's deletion) only for a request that carries one (else 409
            # ConflictNovaUsingAttachment, and the volume stays in-use)
            "service_user": {**_auth(run), "send_service_user_token": "true"},
            "neutron": _auth(run),
            "cinder": {**_auth(run), "os_region_name": REGION},
            "glance": {"region_name": REGION},
            # no quota: the tests boot many servers in the admin project
            "quota": {"instances": -1, "cores": -1, "ram": -1},
            "conductor": {"workers": 1},
            "scheduler": {"workers": 1, "discover_hosts_in_cells_interval": -1},
            "vnc": {"enabled": "false"},
        },
    )
    conf["neutron"] = _merge(
        _common(run, "neutron"),
        {
            "DEFAULT": {
                "core_plugin": "ml2",
                "service_plugins": "router",
                "auth_strategy": "keystone",
                "api_paste_config": venv_etc / "neutron" / "api-paste.ini",
                "notify_nova_on_port_status_changes": "false",
                "notify_nova_on_port_data_changes": "false",
                "state_path": p / "neutron",
                "api_workers": 1,
                "rpc_workers": 0,
            },
            "database": {"connection": run.db_url("neutron")},
            "nova": _auth(run),
            "ml2": {
                "type_drivers": "flat,vlan,vxlan",
                "tenant_network_types": "vxlan",
                "mechanism_drivers": "",
                "extension_drivers": "port_security",
            },
            "quotas": {
                f"quota_{kind}": -1
                for kind in (
                    "network",
                    "subnet",
                    "port",
                    "router",
                    "floatingip",
                    "security_group",
                    "security_group_rule",
                )
            },
            "ml2_type_vxlan": {"vni_ranges": "1:1000"},
            "ml2_type_flat": {"flat_networks": "public"},
        },
    )
    conf["cinder"] = _merge(
        _common(run, "cinder"),
        {
            "DEFAULT": {
                "auth_strategy": "keystone",
                "api_paste_config": venv_etc / "cinder" / "api-paste.ini",
                "enabled_backends": "fake",
                "state_path": p / "cinder",
                "my_ip": "127.0.0.1",
                "host": f"reclaim-{run.run_id}",
                "quota_volumes": -1,
                "quota_snapshots": -1,
                "quota_gigabytes": -1,
            },
            "database": {"connection": run.db_url("cinder")},
            "fake": {
                "volume_driver": "cinder.tests.fake_driver.FakeLoggingVolumeDriver",
                "volume_backend_name": "fake",
            },
        },
    )
    for service, sections in conf.items():
        d = p / "etc" / service
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{service}.conf").write_text(_ini(sections))
        if service == "glance":
            (d / "glance-api.conf").write_text(_ini(sections))
        if service == "nova":  # Nova's WSGI app reads its pipeline from its first file
            shutil.copy(venv_etc / "nova" / "api-paste.ini", d / "api-paste.ini")
    for service, module in WSGI.items():
        # gunicorn's arguments would reach oslo.config through sys.argv; Cinder's API reads
        # its configuration from there alone
        argv = ["sys.argv[0]"]
        if service == "cinder":
            argv += ['"--config-file"', repr(str(config_file(run, service)))]
        (p / f"wsgi_{service}.py").write_text(
            f"import sys\n\nsys.argv = [{', '.join(argv)}]\n"
            f"from {module} import application  # noqa\n"
        )


def config_file(run: Run, service: str) -> Path:
    return run.path / "etc" / service / f"{service}.conf"


def service_env(run: Run, service: str) -> dict[str, str]:
    d = str(run.path / "etc" / service)
    env = dict(os.environ)
    env.pop("OS_CLOUD", None)
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    upper = service.upper()
    env[f"OS_{upper}_CONFIG_DIR"] = d
    files = {"nova": "api-paste.ini;nova.conf", "glance": "glance-api.conf"}
    env[f"OS_{upper}_CONFIG_FILES"] = files.get(service, f"{service}.conf")
    return env


# -- processes -----------------------------------------------------------------------------
def run_tool(run: Run, service: str, *argv: str, timeout: float = 600) -> str:
    """Run one of the services' tools (db sync...) to completion, or fail in one line."""
    log = run.path / "logs" / f"{Path(argv[0]).name}.out"
    proc = subprocess.run(
        [run.bin(argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        env=service_env(run, service),
        timeout=timeout,
        cwd=run.path,
    )
    with open(log, "a") as f:
        f.write(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise HarnessError(f"{' '.join(argv)} failed ({proc.returncode}): {last} (see {log})")
    return proc.stdout


def spawn(
    run: Run, name: str, service: str, argv: list[str], env: dict[str, str] | None = None
) -> None:
    """Start a long-running process in a session of its own; its pid goes in run.json."""
    out = open(run.path / "logs" / f"{name}.out", "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(
        argv,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env or service_env(run, service),
        cwd=run.path,
        start_new_session=True,
    )
    out.close()
    run.pids[name] = proc.pid
    run.save()


def start_api(run: Run, service: str) -> None:
    logs = run.path / "logs"
    spawn(
        run,
        f"{service}-api",
        service,
        [
            run.bin("gunicorn"),
            "--bind",
            f"127.0.0.1:{run.ports[service]}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--keep-alive",
            "75",
            "--timeout",
            "300",
            "--chdir",
            str(run.path),
            "--access-logfile",
            str(logs / f"{service}-access.log"),
            "--access-logformat",
            '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"',  # the user agent last
            "--error-logfile",
            str(logs / f"{service}-gunicorn.log"),
            f"wsgi_{service}:application",
        ],
    )


def start_keystone(run: Run, notification_format: str) -> tuple[str, str]:
    """A second Keystone API on the same database and keys whose notifications take
    ``notification_format`` (``basic``; the cloud's own sends ``cadf``): its process name in
    ``run.pids`` (stop it with :func:`stop_process`) and its URL, once it answers."""
    name = f"keystone-{notification_format}-api"
    conf = config_file(run, "keystone").read_text()
    d = run.path / "etc" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "keystone.conf").write_text(
        conf.replace("notification_format = cadf", f"notification_format = {notification_format}")
    )
    port = free_port()
    logs = run.path / "logs"
    out = open(logs / f"{name}.out", "ab")  # noqa: SIM115 (the child keeps it)
    env = {**service_env(run, "keystone"), "OS_KEYSTONE_CONFIG_DIR": str(d)}
    proc = subprocess.Popen(
        [
            run.bin("gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--keep-alive",
            "75",
            "--chdir",
            str(run.path),
            "--access-logfile",
            str(logs / f"{name}-access.log"),
            "wsgi_keystone:application",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=run.path,
        start_new_session=True,
    )
    out.close()
    run.pids[name] = proc.pid
    run.save()
    url = f"http://127.0.0.1:{port}/v3"
    wait_for(name, lambda: http("GET", url)[0] == 200, 180, run)
    return name, url


def stop_process(run: Run, name: str) -> None:
    """Stop one of the run's processes by its pid (and forget it)."""
    pid = run.pids.pop(name)
    stop_pids([pid])
    run.save()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_pids(pids: list[int], timeout: float = 30) -> None:
    """SIGTERM each process's own session (it and its workers) at once, SIGKILL those
    still running after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.1)


# -- HTTP ----------------------------------------------------------------------------------
def http(
    method: str, url: str, body: Any = None, token: str | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if raw is not None:
        data = raw
        headers["Content-Type"] = "application/octet-stream"
    if token:
        headers["X-Auth-Token"] = token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read()
            return resp.status, dict(resp.headers), json.loads(text) if text.strip() else None
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            payload = json.loads(text)
        except ValueError:
            payload = text.decode(errors="replace")
        return exc.code, dict(exc.headers), payload


def wait_for(what: str, check: Callable[[], bool], timeout: float, run: Run | None = None) -> None:
    """Poll ``check`` until true; fail naming ``what`` (and any dead process) after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        if run is not None:
            dead = [n for n, pid in run.pids.items() if not alive(pid)]
            if dead:
                raise HarnessError(
                    f"waiting for {what}: {', '.join(dead)} exited (see {run.path / 'logs'})"
                )
        time.sleep(0.5)
    raise HarnessError(
        f"{what} did not happen within {timeout:.0f} s (see {run.path if run else ''}/logs)"
    )


def token(run: Run) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"id": "default"},
                        "password": ADMIN_PASSWORD,
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    status, headers, _ = http("POST", f"{run.auth_url}/auth/tokens", body)
    if status != 201:
        raise HarnessError(f"Keystone refused the admin login: {status}")
    return headers.get("X-Subject-Token") or headers["x-subject-token"]


def grant_service_role(run: Run, tok: str) -> None:
    """The services act as the admin user, which also needs the ``service`` role: Nova sends
    its own token as a service token, and Neutron refuses one without that role."""
    base = run.auth_url
    _, _, roles = http("GET", f"{base}/roles?name=service", token=tok)
    if roles["roles"]:  # Keystone's bootstrap makes it
        role = roles["roles"][0]["id"]
    else:
        status, _, body = http("POST", f"{base}/roles", {"role": {"name": "service"}}, tok)
        if status != 201:
            raise HarnessError(f"creating the service role: {status} {body}")
        role = body["role"]["id"]
    _, _, users = http("GET", f"{base}/users?name=admin", token=tok)
    _, _, projects = http("GET", f"{base}/projects?name=admin", token=tok)
    user, project = users["users"][0]["id"], projects["projects"][0]["id"]
    status, _, body = http("PUT", f"{base}/projects/{project}/users/{user}/roles/{role}", token=tok)
    if status not in (200, 204):
        raise HarnessError(f"granting the service role: {status} {body}")


def register_catalog(run: Run, tok: str) -> None:
    """The service catalog (Keystone's own entry comes from bootstrap)."""
    entries = (  # (service name, its port's key, service type, path)
        ("glance", "glance", "image", ""),
        ("placement", "placement", "placement", ""),
        ("nova", "nova", "compute", "/v2.1"),
        ("neutron", "neutron", "network", ""),
        ("cinder", "cinder", "block-storage", "/v3/%(project_id)s"),
        ("cinderv3", "cinder", "volumev3", "/v3/%(project_id)s"),
    )
    base = run.auth_url
    for name, port, kind, path in entries:
        service = {"service": {"name": name, "type": kind}}
        status, _, body = http("POST", f"{base}/services", service, tok)
        if status != 201:
            raise HarnessError(f"creating the {kind} service: {status} {body}")
        url = f"http://127.0.0.1:{run.ports[port]}{path}"
        for interface in ("public", "internal", "admin"):
            endpoint = {
                "service_id": body["service"]["id"],
                "interface": interface,
                "url": url,
                "region_id": REGION,
            }
            status, _, answer = http("POST", f"{base}/endpoints", {"endpoint": endpoint}, tok)
            if status != 201:
                raise HarnessError(f"creating the {kind} endpoint: {status} {answer}")


def write_clouds_yaml(run: Run) -> None:
    auth = {
        "auth_url": run.auth_url,
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    }
    clouds = {
        "clouds": {
            "openstack-admin": {"auth": auth, "region_name": REGION, "identity_api_version": 3}
        }
    }
    # JSON is YAML: no dependency needed to write it
    run.clouds_yaml.write_text(json.dumps(clouds, indent=2) + "\n")


# -- up and down ---------------------------------------------------------------------------
def up(directory: Path, log: Callable[[str], None] = print) -> Run:
    """Start a cloud in ``directory`` (which must not hold a running one)."""
    check_mariadb()
    check_rabbitmq()
    venv = ensure_venv(log)
    if (directory / "run.json").exists():
        raise HarnessError(f"a cloud already runs from {directory}: stop it with down first")
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    run_id = f"rc{uuid.uuid4().hex[:8]}"
    run = Run(
        dir=str(directory.resolve()),
        run_id=run_id,
        venv=str(venv),
        ports={s: free_port() for s in (*WSGI, "rabbitmq", "rabbitmq-dist")},
        databases=[f"{run_id}_{d}" for d in DATABASES],
    )
    run.save()
    try:
        _start(run, log)
    except BaseException:
        down(directory, log=lambda _m: None)
        raise
    run.started_in = round(time.monotonic() - started, 1)
    run.save()
    return run


def schema_cache() -> Path:
    """Where the services' migrated databases are kept (by the venv's key): a run loads
    them instead of migrating (minutes of ALTER TABLE on a loaded machine)."""
    return CACHE / f"openstack-schema-{venv_path().name.rsplit('-', 1)[-1]}"


def _migrate(run: Run) -> None:
    """Every service's database migrations, in parallel (the first run only)."""

    def tool(service: str, *argv: str) -> Callable[[], Any]:
        conf = str(config_file(run, service))
        return lambda: run_tool(run, service, argv[0], "--config-file", conf, *argv[1:])

    def nova() -> None:
        tool("nova", "nova-manage", "api_db", "sync")()
        tool(
            "nova",
            "nova-manage",
            "cell_v2",
            "map_cell0",
            "--database_connection",
            run.db_url("nova_cell0"),
        )()
        tool("nova", "nova-manage", "cell_v2", "create_cell", "--name", "cell1")()
        tool("nova", "nova-manage", "db", "sync")()

    syncs: list[Callable[[], Any]] = [
        tool("keystone", "keystone-manage", "db_sync"),
        nova,
        tool("glance", "glance-manage", "db_sync"),
        tool("placement", "placement-manage", "db", "sync"),
        tool("neutron", "neutron-db-manage", "upgrade", "heads"),
        tool("cinder", "cinder-manage", "db", "sync"),
    ]
    with ThreadPoolExecutor(max_workers=len(syncs)) as pool:
        for fut in [pool.submit(fn) for fn in syncs]:
            fut.result()


def _dump_schemas(run: Run, cache: Path) -> None:
    tmp = cache.with_name(cache.name + f".{run.run_id}")
    tmp.mkdir(parents=True, exist_ok=True)
    for name in DATABASES:
        proc = subprocess.run(
            [
                "mysqldump",
                "-h",
                MYSQL_HOST,
                "-P",
                str(MYSQL_PORT),
                "-u",
                "root",
                "--skip-comments",
                "--single-transaction",
                f"{run.run_id}_{name}",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            return  # no cache: the next run migrates again
        (tmp / f"{name}.sql").write_text(proc.stdout.replace(run.run_id, "@RUN@"))
    with contextlib.suppress(OSError):
        tmp.rename(cache)
    shutil.rmtree(tmp, ignore_errors=True)


def _load_schemas(run: Run, cache: Path) -> None:
    def load(name: str) -> None:
        sql = (cache / f"{name}.sql").read_text().replace("@RUN@", run.run_id)
        proc = subprocess.run(
            [
                "mysql",
                "-h",
                MYSQL_HOST,
                "-P",
                str(MYSQL_PORT),
                "-u",
                "root",
                f"{run.run_id}_{name}",
            ],
            input=sql,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise HarnessError(f"loading the {name} database: {proc.stderr.strip()[-300:]}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        for fut in [pool.submit(load, name) for name in DATABASES]:
            fut.result()


def _start(run: Run, log: Callable[[str], None]) -> None:
    t0 = time.monotonic()
    write_configs(run)
    start_broker(run)  # it boots while the databases load
    mysql("; ".join(f"CREATE DATABASE `{d}` CHARACTER SET utf8" for d in run.databases))
    ks = str(config_file(run, "keystone"))
    nv = str(config_file(run, "nova"))
    cache = schema_cache()
    if cache.is_dir():
        _load_schemas(run, cache)
        log(f"databases loaded from {cache} ({time.monotonic() - t0:.0f} s)")
    else:
        _migrate(run)
        log(f"databases migrated ({time.monotonic() - t0:.0f} s)")
        _dump_schemas(run, cache)
    # Nova's cell1 mapping holds the broker's URL of the run that made the cache: this
    # run's (Nova's calls to its compute service go there)
    mysql(
        f"UPDATE `{run.run_id}_nova_api`.cell_mappings SET transport_url = "
        f"'{run.transport_url}' WHERE transport_url LIKE 'rabbit:%'"
    )
    for repo in ("fernet", "credential"):  # what keystone-manage *_setup writes
        keys = run.path / "keys" / repo
        keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        for n in ("0", "1"):
            (keys / n).write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
    wait_for("RabbitMQ", lambda: broker_answers(run), 180, run)
    run_tool(
        run,
        "keystone",
        "keystone-manage",
        "--config-file",
        ks,
        "bootstrap",
        "--bootstrap-password",
        ADMIN_PASSWORD,
        "--bootstrap-region-id",
        REGION,
        "--bootstrap-public-url",
        run.auth_url,
        "--bootstrap-internal-url",
        run.auth_url,
        "--bootstrap-admin-url",
        run.auth_url,
    )
    start_api(run, "keystone")
    wait_for("Keystone", lambda: http("GET", run.auth_url)[0] == 200, 120, run)
    grant_service_role(run, token(run))
    tok = token(run)
    register_catalog(run, tok)
    for service in ("glance", "placement", "nova", "neutron", "cinder"):
        start_api(run, service)
    for proc in ("conductor", "scheduler", "compute"):
        spawn(run, f"nova-{proc}", "nova", [run.bin(f"nova-{proc}"), "--config-file", nv])
    cc = str(config_file(run, "cinder"))
    for proc in ("scheduler", "volume"):
        spawn(run, f"cinder-{proc}", "cinder", [run.bin(f"cinder-{proc}"), "--config-file", cc])
    write_clouds_yaml(run)
    nova_url = f"http://127.0.0.1:{run.ports['nova']}/v2.1"
    for service, url in (
        ("glance", f"http://127.0.0.1:{run.ports['glance']}/v2/images"),
        ("placement", f"http://127.0.0.1:{run.ports['placement']}/"),
        ("nova", f"{nova_url}/flavors"),
        ("neutron", f"http://127.0.0.1:{run.ports['neutron']}/v2.0/networks"),
        ("cinder", f"http://127.0.0.1:{run.ports['cinder']}/v3/"),
    ):
        wait_for(f"the {service} API", lambda u=url: http("GET", u, token=tok)[0] < 500, 180, run)  # type: ignore[misc]
    log(f"APIs answer ({time.monotonic() - t0:.0f} s)")
    status, _, body = http(
        "POST",
        f"{nova_url}/flavors",
        {
            "flavor": {
                "name": "reclaim.tiny",
                "vcpus": 1,
                "ram": 256,
                "disk": 1,
                "id": "reclaim-tiny",
            }
        },
        tok,
    )
    if status != 200:
        raise HarnessError(f"creating a flavor: {status} {body}")
    glance = f"http://127.0.0.1:{run.ports['glance']}/v2/images"
    image = {
        "name": "reclaim-test-image",
        "disk_format": "raw",
        "container_format": "bare",
        "visibility": "public",
        "id": str(uuid.uuid4()),
    }
    status, _, body = http("POST", glance, image, tok)
    if status != 201:
        raise HarnessError(f"creating an image: {status} {body}")
    status, _, body = http("PUT", f"{glance}/{image['id']}/file", token=tok, raw=os.urandom(1024))
    if status != 204:
        raise HarnessError(f"uploading the image: {status} {body}")

    def compute_up() -> bool:
        _, _, b = http("GET", f"{nova_url}/os-services?binary=nova-compute", token=tok)
        return any(s.get("state") == "up" for s in (b or {}).get("services", []))

    wait_for("nova-compute to register", compute_up, 180, run)
    deadline = time.monotonic() + 120
    while True:
        out = run_tool(
            run,
            "nova",
            "nova-manage",
            "--config-file",
            nv,
            "cell_v2",
            "discover_hosts",
            "--verbose",
        )
        if "Found 1 unmapped" in out or "Creating host mapping" in out:
            break
        if time.monotonic() > deadline:
            raise HarnessError("nova-compute's host was never mapped to the cell")
        time.sleep(1)
    cinder_url = f"http://127.0.0.1:{run.ports['cinder']}/v3"

    def volume_up() -> bool:
        _, _, b = http("GET", f"{cinder_url}/os-services?binary=cinder-volume", token=tok)
        return any(s.get("state") == "up" for s in (b or {}).get("services", []))

    wait_for("cinder-volume to report", volume_up, 180, run)
    log(f"the cloud is up ({time.monotonic() - t0:.0f} s)")


def down(directory: Path, log: Callable[[str], None] = print) -> None:
    """Stop every process of the run (its RabbitMQ too) by its pid, drop its databases."""
    run = Run.load(directory)
    problems: list[str] = []
    stop_pids(list(run.pids.values()))
    problems.extend(f"{n} (pid {pid}) did not stop" for n, pid in run.pids.items() if alive(pid))
    try:
        mysql("; ".join(f"DROP DATABASE IF EXISTS `{d}`" for d in run.databases))
    except HarnessError as exc:
        problems.append(str(exc))
    (directory / "run.json").unlink()
    if problems:
        raise HarnessError("; ".join(problems))
    log(f"stopped the cloud of {directory} (databases dropped)")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (gunicorn's worker), in MB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
    return total / 1024


def status(run: Run) -> dict[str, Any]:
    """Each process of the run: pid, whether it runs, its RSS; and their sum."""
    procs = {
        name: {"pid": pid, "running": alive(pid), "rss_mb": round(rss_mb(pid))}
        for name, pid in run.pids.items()
    }
    total = sum(float(p["rss_mb"]) for p in procs.values())
    return {"started_in": run.started_in, "processes": procs, "rss_mb": round(total)}


@contextlib.contextmanager
def running(directory: Path, log: Callable[[str], None] = print) -> Iterator[Run]:
    run = up(directory, log)
    try:
        yield run
    finally:
        down(directory, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.openstack.harness", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "install", "check"])
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help=f"where the run lives (default {DEFAULT_DIR})"
    )
    args = parser.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    def interrupted(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # an interrupted up stops what it started

    signal.signal(signal.SIGTERM, interrupted)
    try:
        if args.command == "check":  # what the machine must already have
            check_mariadb()
            check_rabbitmq()
        elif args.command == "status":
            print(json.dumps(status(Run.load(args.dir)), indent=1))
        elif args.command == "install":
            print(ensure_venv(log))
        elif args.command == "up":
            run = up(args.dir, log)
            env = run.exports()
            (args.dir / "env.sh").write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
            log(f"started in {run.started_in} s; logs in {args.dir / 'logs'}")
            for k, v in env.items():
                print(f"export {k}={v}")
        else:
            down(args.dir, log)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
