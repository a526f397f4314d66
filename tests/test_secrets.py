"""Secrets are never printed or stored: settings errors, URLs, request context and tokens."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reclaim.bus.log import JsonLineFormatter, emit
from reclaim.cli import app
from reclaim.deadletters import dead_letter
from reclaim.redact import mask_url, scrub, secret_name, url_problem
from reclaim.timers import AuditEntry

runner = CliRunner()
TOKEN = "gAAAAABlive-keystone-token-7f3e9a"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rabbit://u:pw@h:5672/vh", "rabbit://u:***@h:5672/vh"),
        ("rabbit://u:p1@h1:5672,v:p2@h2:5672/vh", "rabbit://u:***@h1:5672,v:***@h2:5672/vh"),
        ("rabbit://u:Pa%2Css%2Fw%40d%3A1%25@h/", "rabbit://u:***@h/"),
        ("rabbit://u:pa,ss@h:5672/", "rabbit://***@h:5672/"),  # raw: all credentials hidden
        ("rabbit://u:pa/ss@h:5672/", "rabbit://***@h:5672/"),
        ("rabbit://u:pa@ss@h:5672/", "rabbit://***@h:5672/"),
        ("rabbit://u:pa:ss@[::1]:5672/", "rabbit://u:***@[::1]:5672/"),
        ("rabbit://guest@h/", "rabbit://guest@h/"),
        ("kombu+memory:////", "kombu+memory:////"),
        ("http://127.0.0.1:8000/table", "http://127.0.0.1:8000/table"),
    ],
)
def test_mask_url_hides_every_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("rabbit://u:Pa%2Css%2Fw%40d%3A1%25@h/", None),
        ("rabbit://u:p1@h1,v:p2@h2/", None),
        ("fake://", None),
        ("rabbit://u:pa,ss@h/", "reserved character"),
        ("rabbit://u:pa/ss@h/", "reserved character"),
        ("rabbit://u:pa#ss@h/", "reserved character"),
        ("rabbit://u:50%@h/", "'%'"),
    ],
)
def test_url_problem_says_what_to_encode(url: str, problem: str | None) -> None:
    found = url_problem(url)
    assert (found is None) if problem is None else (problem in (found or ""))
    assert "pa" not in (found or "").replace("password", "").replace("percent", "")


@pytest.mark.parametrize(
    ("name", "secret"),
    [("mailer.password", True), ("PASWORD", True), ("client_secret", True), ("api_key", True),
     ("auth_token", True), ("smtp_port", False), ("keystone_url", False), ("monkey", False)],
)  # fmt: skip
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def settings_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["timers", "list"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = result.output.splitlines()
    return line


def test_a_mistyped_secret_variable_is_refused_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = settings_error(monkeypatch, RECLAIM_MAILER__PASWORD="hunter2")
    assert line.startswith("reclaim: error: settings: mailer.pasword: ")
    assert "hunter2" not in line


def test_a_bad_secret_in_the_config_file_is_named_not_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "reclaim.yaml"
    config.write_text("mailer:\n  password: 424242\n  smtp_port: nope\n")
    line = settings_error(monkeypatch, RECLAIM_CONFIG=str(config))
    assert "mailer.password: Input should be a valid string" in line
    assert "424242" not in line
    assert "mailer.smtp_port: " in line and "(got 'nope')" in line, "other values are shown"


def test_a_url_setting_error_masks_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    line = settings_error(monkeypatch, RECLAIM_BUS__TRANSPORT_URL="rabbit://u:xq,zv@h:5672/")
    assert "bus.transport_url: a user or password holds a reserved character" in line
    assert "(got 'rabbit://***@h:5672/')" in line and "xq" not in line and "zv" not in line
    line = settings_error(
        monkeypatch, RECLAIM_BUS__TRANSPORT_URL="rabbit://u:ok@h/", RECLAIM_BUS__PREFETCH="x"
    )
    assert "bus.prefetch" in line


def test_scrub_removes_context_and_tokens_everywhere() -> None:
    inner = {"_context_auth_token": TOKEN, "_context_user": "u", "event_type": "e",
             "payload": {"X-Auth-Token": TOKEN, "auth_token": TOKEN, "name": "vm",
                         "note": f"curl -H 'X-Auth-Token: {TOKEN}'"}}  # fmt: skip
    body = {"oslo.version": "2.0", "oslo.message": json.dumps(inner)}
    kept = json.dumps(scrub(body))
    assert TOKEN not in kept and "_context_" not in kept
    assert json.loads(json.loads(kept)["oslo.message"])["payload"]["name"] == "vm"


@pytest.mark.parametrize("form", ["mapping", "bytes", "text"])
def test_dead_letters_keep_no_token(form: str) -> None:
    body = {"_context_auth_token": TOKEN, "event_type": "compute.instance.update",
            "payload": {"token": TOKEN}}  # fmt: skip
    raw = json.dumps(body)
    given = body if form == "mapping" else raw.encode() if form == "bytes" else raw + "{"
    letter = dead_letter(given, stage="parse", reason=f"bad: X-Auth-Token: {TOKEN}", now=T0)
    assert TOKEN not in letter.model_dump_json()
    assert "compute.instance.update" in letter.body


def test_audit_entries_and_timer_details_keep_no_token() -> None:
    entry = AuditEntry(at=T0, what="shelve", outcome="failed",
                       detail={"why": f"401 for X-Auth-Token: {TOKEN}", "auth_token": TOKEN,
                               "cloud": "rabbit://u:pw@h/"})  # fmt: skip
    assert TOKEN not in entry.model_dump_json() and "pw" not in entry.detail["cloud"]
    assert entry.detail["why"].startswith("401 for X-Auth-Token: ")


def test_log_lines_keep_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="reclaim.bus")
    emit("broker_unreachable", url="rabbit://u:xq,zv@h:5672/", auth_token=TOKEN,
         error=f"refused X-Auth-Token: {TOKEN}")  # fmt: skip
    [record] = caplog.records
    line = JsonLineFormatter().format(record)
    assert TOKEN not in line and "xq" not in line and "zv" not in line
    assert json.loads(line)["url"] == "rabbit://***@h:5672/"
    other = logging.LogRecord("oslo", logging.ERROR, "x", 1,
                              "AMQP rabbit://u:s3cr3t@h:5672// unreachable", None, None)  # fmt: skip
    assert "s3cr3t" not in JsonLineFormatter().format(other)
