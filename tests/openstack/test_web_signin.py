"""Signing in to reclaim web against a real Keystone: a password shows the projects the
user holds a role on and no other, an application credential its one project with its
roles, the admin role makes an operator, and the token's expiry bounds the session."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from reclaim.web.keystone import Keystone, SignInRefused
from tests.openstack import harness


def test_sign_in_with_a_password_and_an_application_credential(
    cloud: harness.Run, admin: Any
) -> None:
    import openstack.connection

    tag = uuid.uuid4().hex[:8]
    idn = admin.identity
    mine = idn.create_project(name=f"web-{tag}", domain_id="default")
    theirs = idn.create_project(name=f"web-other-{tag}", domain_id="default")
    password = f"pw-{uuid.uuid4().hex}"
    user = idn.create_user(name=f"web-user-{tag}", password=password, domain_id="default")
    idn.assign_project_role_to_user(mine, user, idn.find_role("member"))

    keystone = Keystone(cloud.auth_url)
    me = keystone.password(user.name, password)
    assert me.user_id == user.id and not me.operator
    assert [(p.id, p.name) for p in me.projects] == [(mine.id, mine.name)]
    assert "member" in me.projects[0].roles
    assert theirs.id not in me.project_ids()
    assert datetime.now(UTC) < me.expires_at
    with pytest.raises(SignInRefused):
        keystone.password(user.name, "not-the-password")

    as_user = openstack.connection.Connection(
        auth_url=cloud.auth_url, username=user.name, password=password,
        user_domain_id="default", project_id=mine.id, project_domain_id="default",
    )  # fmt: skip
    cred = as_user.identity.create_application_credential(
        user=user.id, name=f"reclaim-web-{tag}", roles=[{"name": "reader"}]
    )
    by_cred = keystone.application_credential(cred.id, cred.secret)
    assert by_cred.user_id == user.id
    assert [(p.id, p.roles) for p in by_cred.projects] == [(mine.id, ("reader",))]
    with pytest.raises(SignInRefused):
        keystone.application_credential(cred.id, "wrong-secret")

    entry = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]["openstack-admin"]["auth"]
    operator = keystone.password(entry["username"], entry["password"])
    assert operator.operator
