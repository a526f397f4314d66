"""The web pages as the Lambda function runs them: its real handler, the template's
environment, a Function URL (API Gateway v2 payload) event."""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from reclaim.serverless import local
from reclaim.store import open_store
from reclaim.web.app import CSP
from reclaim.web.links import LinkGrant, sign, verify
from reclaim_sim import SimServer
from reclaim_sim.server import empty_cloud_environment
from tests.notices.conftest import Smtp
from tests.serverless.conftest import fresh_table, lambda_event
from tests.serverless.test_mailer_function import ADA, _secrets, keystone, smtp
from tests.web.conftest import KEY

__all__ = ["keystone", "smtp"]


def _get(path: str, query: str = "") -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(lambda_event("web-healthz"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = query
    return event


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = local.invoke(
        "web",
        event,
        store_url=f"memory://{fresh_table()}",
        environment={"RECLAIM_WEB__SECRET_KEY": KEY},
        local_cloud=empty_cloud_environment,
    )
    return response


def test_healthz_through_the_lambda_handler() -> None:
    response = _invoke(lambda_event("web-healthz"))
    assert response["statusCode"] == 200
    assert response["body"] == "ok\n"
    headers = response["headers"]
    assert headers["content-security-policy"] == CSP
    # a Function URL is https only: HSTS goes out
    assert headers["strict-transport-security"].startswith("max-age=")


def test_a_page_through_the_lambda_handler() -> None:
    response = _invoke(_get("/signin", "next=/projects"))
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("text/html")
    body = response["body"]
    assert "<h1>Sign in</h1>" in body
    assert 'name="csrf_token"' in body
    # the session cookie is Secure, HttpOnly and SameSite=Lax behind the https URL
    (cookie,) = [c for c in response.get("cookies", []) if c.startswith("reclaim_session=")]
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= attributes


def test_a_signed_out_visitor_is_sent_to_sign_in() -> None:
    response = _invoke(_get("/projects"))
    assert response["statusCode"] == 303
    assert response["headers"]["location"] == "/signin?next=/projects"


def test_mails_from_the_mailer_function_link_to_the_web_function_with_one_key(
    keystone: SimServer, smtp: Smtp, tmp_path: Path
) -> None:
    url = f"memory://{fresh_table()}"
    open_store(url)  # moto serves the table and Secrets Manager
    web_key = "web-key-" + uuid.uuid4().hex * 2
    env = {
        **_secrets(keystone, smtp, tmp_path),
        "WEB_SECRET": boto3.client("secretsmanager").create_secret(
            Name=f"web-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"secret_key": web_key})
        )["ARN"],
        "RECLAIM_WEB__BASE_URL": "https://pages.example.org",
    }
    local.invoke("MailerFunction", lambda_event("mailer-mq"), url, environment=env)
    (mail,) = [m for m in smtp.box.mails if m["To"].addresses[0].addr_spec == ADA]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (token,) = re.findall(r"https://pages\.example\.org/l/(\S+)", text)
    # signed with the secret's key, for the mail's server, until its due date + 7 days
    grant = verify(token, web_key, datetime_of(token, web_key))
    assert grant.resource_type == "server" and grant.recipient == ADA

    def opened(t: str) -> int:
        response: dict[str, Any] = local.invoke(
            "WebFunction", _get(f"/l/{t}"), url, environment=env
        )
        return int(response["statusCode"])

    # the web function knows the key: the mail's link is genuine (its sample date is past,
    # so it has expired: 410), a link signed with another key is refused as changed (400)
    forged = sign(LinkGrant("server", grant.resource_id, grant.project_id, ADA,
                            grant.expires), "another-key-" + "y" * 40)  # fmt: skip
    assert (opened(token), opened(forged)) == (410, 400)


def datetime_of(token: str, key: str) -> Any:
    """A moment at which ``token`` is still valid: a day before its expiry."""
    from itsdangerous import URLSafeSerializer

    from reclaim.web.links import SALT

    payload = URLSafeSerializer(key, salt=SALT).loads(token)
    return LinkGrant.from_payload(payload).expires - timedelta(days=1)
