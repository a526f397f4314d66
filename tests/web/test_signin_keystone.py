"""Keystone sign-in (reclaim.web.keystone) against the simulated cloud's Keystone over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from reclaim.web.keystone import Keystone, KeystoneUnavailable, SignInRefused, v3_url
from reclaim_sim import Cloud, SimClock, SimServer


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    cloud = Cloud(clock=SimClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    idn = cloud.identity
    alpha = idn.create_project("alpha")
    beta = idn.create_project("beta")
    gamma = idn.create_project("gamma")
    off = idn.create_project("switched-off")
    ann = idn.create_user("ann", password="ann-pw")
    idn.grant(ann.id, alpha.id, "member")
    idn.grant(ann.id, beta.id, "reader")
    idn.grant(ann.id, off.id, "member")
    idn.update_project(off.id, enabled=False)
    op = idn.create_user("olga", password="olga-pw")
    idn.grant(op.id, gamma.id, "admin")
    idn.create_user("nobody", password="nobody-pw")
    idn.create_application_credential(
        ann.id, alpha.id, "ci-reader", secret="app-secret", roles=("reader",)
    )
    with SimServer(cloud) as server:
        yield server
    cloud.close()


def test_a_member_sees_the_projects_they_hold_a_role_on_and_no_other(sim: SimServer) -> None:
    before = datetime.now(UTC)
    me = Keystone(sim.auth_url).password("ann", "ann-pw")
    assert me.user_name == "ann"
    assert [(p.name, p.roles) for p in me.projects] == [
        ("alpha", ("member", "reader")),
        ("beta", ("reader",)),
    ]  # gamma is not hers; the disabled project is not listed
    assert not me.operator
    # the token's own expiry, as Keystone gave it
    assert before < me.expires_at <= before + timedelta(seconds=24 * 3600 + 5)


def test_member_roles_narrow_what_is_shown(sim: SimServer) -> None:
    me = Keystone(sim.auth_url, member_roles=("member",)).password("ann", "ann-pw")
    assert [p.name for p in me.projects] == ["alpha"]


def test_the_admin_role_makes_an_operator(sim: SimServer) -> None:
    olga = Keystone(sim.auth_url.removesuffix("/v3")).password("olga", "olga-pw")
    assert olga.operator
    assert [(p.name, "admin" in p.roles) for p in olga.projects] == [("gamma", True)]
    assert (
        not Keystone(sim.auth_url, operator_role="cloud-admin").password("olga", "olga-pw").operator
    )


@pytest.mark.parametrize(
    ("user", "password"), [("ann", "wrong"), ("nobody-at-all", "x"), ("ann", ""), ("", "x")]
)
def test_wrong_credentials_are_refused(sim: SimServer, user: str, password: str) -> None:
    with pytest.raises(SignInRefused):
        Keystone(sim.auth_url).password(user, password)


def test_a_user_without_roles_signs_in_with_nothing_to_see(sim: SimServer) -> None:
    me = Keystone(sim.auth_url).password("nobody", "nobody-pw")
    assert me.projects == ()
    assert not me.operator


def test_an_unreachable_keystone_is_not_a_refusal() -> None:
    with pytest.raises(KeystoneUnavailable):
        Keystone("http://127.0.0.1:9/identity", timeout=2).password("ann", "ann-pw")


def test_v3_url() -> None:
    assert v3_url("https://k.example.org:5000") == "https://k.example.org:5000/v3"
    assert v3_url("https://k.example.org/identity/v3/") == "https://k.example.org/identity/v3"


def _credential(sim: SimServer, name: str) -> str:
    found = [c for c in sim.cloud.identity.app_credentials.values() if c.name == name]
    return found[0].id


def test_an_application_credential_shows_its_one_project_with_its_roles(sim: SimServer) -> None:
    me = Keystone(sim.auth_url).application_credential(_credential(sim, "ci-reader"), "app-secret")
    assert me.user_name == "ann"
    assert me.method == "application credential"
    # only alpha, and only the role the credential was made with (ann is a member there)
    assert [(p.name, p.roles) for p in me.projects] == [("alpha", ("reader",))]
    assert not me.operator


def test_an_application_credential_with_a_wrong_secret_is_refused(sim: SimServer) -> None:
    with pytest.raises(SignInRefused):
        Keystone(sim.auth_url).application_credential(_credential(sim, "ci-reader"), "guess")
    with pytest.raises(SignInRefused):
        Keystone(sim.auth_url).application_credential("0" * 32, "app-secret")
