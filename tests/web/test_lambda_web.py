"""The web pages as the Lambda function runs them: its real handler, the template's
environment, a Function URL (API Gateway v2 payload) event."""

from __future__ import annotations

import copy
from typing import Any

from reclaim.serverless import local
from reclaim.web.app import CSP
from reclaim_sim.server import empty_cloud_environment
from tests.serverless.conftest import fresh_table, lambda_event
from tests.web.conftest import KEY


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
