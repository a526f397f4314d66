"""The notice schema, the sweeper's use of it, and the rendered examples in docs/notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from reclaim.mailer.examples import example_files
from reclaim.mailer.render import GENERIC, Renderer
from reclaim.notices import KINDS, SCHEMA_VERSION, NoticeMessage, parse_notice
from reclaim.sweeper.notices import owner_notice
from reclaim.timers import Notice, Timer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "notices"
DUE = datetime(2026, 3, 15, 9, tzinfo=UTC)


def timer(due: datetime) -> Timer:
    return Timer(resource_type="server", resource_id="s1", rule="shelve", action="shelve",
                 project_id="p1", user_id="u1", due_at=due, detail={"name": "vm"})  # fmt: skip


def test_the_sweepers_constructor_names_recipients_and_a_stable_id() -> None:
    n = NoticeMessage(kind="shelved", resource_type="server", resource_id="s1", project_id="p1",
                      user_id="u1", action="shelve", due_at=DUE, clause="c", detail={"name": "vm"})  # fmt: skip
    assert n.version == SCHEMA_VERSION == 1
    assert n.recipients.user_ids == ("u1",) and n.recipients.project_id == "p1"
    assert n.resource_name == "vm" and n.event_type == "reclaim.notice.shelved"
    assert n.notice_id == NoticeMessage(**n.model_dump(exclude={"notice_id"})).notice_id


def test_a_notice_keeps_its_id_on_republication_and_a_moved_timer_gets_new_ones() -> None:
    week = Notice(kind="shelve_upcoming", before=timedelta(days=7), due_at=DUE - timedelta(days=7))
    a, b = owner_notice(timer(DUE), week), owner_notice(timer(DUE), week)
    assert a.notice_id == b.notice_id
    later = DUE + timedelta(days=3)
    moved = owner_notice(
        timer(later), week.model_copy(update={"due_at": later - timedelta(days=7)})
    )
    assert moved.notice_id != a.notice_id


def test_payloads_round_trip_and_unknown_fields_are_ignored() -> None:
    n = owner_notice(timer(DUE), Notice(kind="shelve_upcoming", before=timedelta(days=1),
                                        due_at=DUE - timedelta(days=1)))  # fmt: skip
    payload = {**n.payload(), "added_in_a_later_release": {"x": 1}}
    assert parse_notice(payload) == n
    assert n.payload()["due_at"] == "2026-03-15T09:00:00Z"


def test_allocation_contacts_become_addresses_and_alerts_go_to_operators() -> None:
    n = NoticeMessage(kind="allocation_ended", resource_type="project", resource_id="p1",
                      project_id="p1", detail={"contacts": "a@x.org, b@x.org"})  # fmt: skip
    assert n.recipients.addresses == ("a@x.org", "b@x.org")
    alert = NoticeMessage(kind="action_failed", resource_type="server", resource_id="s1",
                          project_id="p1", user_id="u1")  # fmt: skip
    assert alert.operator and alert.recipients.operators and alert.recipients.user_ids == ()
    assert alert.priority == "WARN"


def test_an_unknown_kind_is_mailed_with_the_generic_template() -> None:
    r = Renderer()
    assert r.template_for("something_new") == GENERIC
    mail = r.render(NoticeMessage(kind="something_new", resource_type="server", resource_id="s9",
                                  detail={"why": "because"}))  # fmt: skip
    assert mail.subject == "Something new: server s9"
    assert "- why: because" in mail.text and "<li>why: because</li>" in mail.html


def test_an_operator_template_overrides_the_builtin_one(tmp_path: Path) -> None:
    (tmp_path / "shelved.j2").write_text(
        "{% extends layout %}{% block subject %}Shelved: {{ name }}{% endblock %}"
        "{% block body %}Ours <b>{{ name }}</b>.{% endblock %}"
    )
    n = NoticeMessage(kind="shelved", resource_type="server", resource_id="s1",
                      detail={"name": "<vm>"})  # fmt: skip
    mail = Renderer(tmp_path).render(n)
    assert mail.subject == "Shelved: <vm>"
    assert "Ours <b><vm></b>." in mail.text
    assert "Ours <b>&lt;vm&gt;</b>." in mail.html


def test_docs_show_what_each_kind_of_mail_looks_like_today() -> None:
    files = example_files()
    assert {name.rsplit(".", 1)[0] for name in files} >= set(KINDS)
    on_disk = {
        p.name: p.read_text() for p in DOCS.iterdir() if p.suffix in {".txt", ".html", ".json"}
    }
    stale = sorted(n for n in files if on_disk.get(n) != files[n])
    assert not stale, f"regenerate with: python -m reclaim.mailer --examples docs/notices ({stale})"
    assert set(on_disk) == set(files)
