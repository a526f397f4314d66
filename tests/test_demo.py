"""``reclaim demo`` as a user runs it: the policy's six stories, in time order, and the
output kept in docs/demo-output.txt."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAVED = ROOT / "docs" / "demo-output.txt"
#: A timeline line: time, story, kind, text.
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (\d) (\w+) +(.*)$")
#: The only line that differs from one run to the next.
WALL = re.compile(r"^played in [\d.]+ s of wall time$")

pytestmark = pytest.mark.slow


def _demo(*args: str) -> str:
    exe = Path(sys.executable).with_name("reclaim")
    out = subprocess.run(
        [str(exe), "demo", *args], capture_output=True, text=True, timeout=240,
        env={"PATH": str(exe.parent), "COLUMNS": "80", "HOME": str(Path.home())},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no library noise
    return out.stdout


@pytest.fixture(scope="module")
def text() -> str:
    return _demo()


@pytest.fixture(scope="module")
def timeline(text: str) -> list[tuple[str, int, str, str]]:
    found = [LINE.match(line) for line in text.splitlines()]
    return [(m[1], int(m[2]), m[3], m[4]) for m in found if m]


def _at(timeline: list[tuple[str, int, str, str]], story: int, kind: str, text: str) -> list[int]:
    """Where the timeline has this line (its positions)."""
    return [i for i, line in enumerate(timeline) if line[1:] == (story, kind, text)]


def _first(timeline: list[tuple[str, int, str, str]], story: int, kind: str, text: str) -> int:
    where = _at(timeline, story, kind, text)
    assert where, f"no line: {story} {kind} {text}"
    return where[0]


def _warned_then_acted(
    timeline: list[tuple[str, int, str, str]],
    story: int,
    event: str,
    warning: str,
    action: str,
    told: str,
) -> tuple[int, list[int], int, int]:
    """The story's ``event``, then its ``warning`` notices, then the ``action``, then the
    notice that ``told`` what was done, in that order: their positions (every warning's)."""
    happened = _first(timeline, story, "event", event)
    warned = _at(timeline, story, "notice", warning)
    acted = _first(timeline, story, "action", action)
    after = _first(timeline, story, "notice", told)
    assert warned, f"no warning: {story} {warning}"
    assert happened < warned[0] and warned[-1] < acted < after
    return happened, warned, acted, after


def test_every_line_is_in_time_order_with_one_time_format(
    text: str, timeline: list[tuple[str, int, str, str]]
) -> None:
    times = [t for t, *_ in timeline]
    assert len(timeline) > 40 and times == sorted(times)
    stamps = re.findall(r"\d{4}-\d\d-\d\d[T ][\d:.]+\S*", text)
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s) for s in stamps)
    told = "\n".join(line[3] for line in timeline)
    assert not re.search(r"\b[0-9a-f]{8}(-?[0-9a-f]{4}){3}", told)  # people read names


def test_a_stopped_server_is_warned_then_shelved_then_told(
    timeline: list[tuple[str, int, str, str]],
) -> None:
    _stop, _warned, shelved, told = _warned_then_acted(
        timeline, 1, "ana stops analysis", "shelve_upcoming -> ana (analysis)",
        "shelve server analysis: done", "shelved -> ana (analysis)",
    )  # fmt: skip
    assert timeline[shelved][0] == timeline[told][0]
    assert _first(timeline, 1, "action", "shelve server viz: done")  # suspended
    texts = " ".join(line[3] for line in timeline)
    assert "shelve server notebook" not in texts  # restarted in time
    assert "course" not in texts.replace("tess stops course", "")  # exempt


def test_a_shelved_server_is_deleted_after_its_warnings(
    timeline: list[tuple[str, int, str, str]],
) -> None:
    _shelve, warned, deleted, _told = _warned_then_acted(
        timeline, 2, "ana shelves pipeline", "delete_upcoming -> ana (pipeline)",
        "delete server pipeline: done", "deleted -> ana (pipeline)",
    )  # fmt: skip
    assert len(warned) == 3
    assert timeline[deleted][0][:10] == "2026-07-08"  # 180 days after 2026-01-09


def test_an_ended_allocation_is_cleaned_up_and_a_forged_one_alerts_once(
    text: str, timeline: list[tuple[str, int, str, str]]
) -> None:
    ends, warned, cleaned, _told = _warned_then_acted(
        timeline, 3, "genomics' allocation ends (Keystone, then the bus)",
        "cleanup_upcoming -> gus (genomics)", "cleanup project genomics: done",
        "project_cleaned -> gus (genomics)",
    )  # fmt: skip
    said = _first(timeline, 3, "notice", "allocation_ended -> gus (genomics)")
    assert ends < said < warned[0] and len(warned) == 3
    dependents = _first(timeline, 3, "notice", "image_going_away -> ana, olga (genomics-toolkit)")
    assert ends < dependents < cleaned
    forged = _first(timeline, 3, "event", "an allocation.ended for astro dated 200 days ago")
    (held,) = [i for i, line in enumerate(timeline) if line[2] == "hold"]
    assert timeline[held][3] == (
        "cleanup, scan_dependents project astro: allocation not confirmed by Keystone "
        "(allocation_end=2027-12-31: the allocation runs)"
    )
    alerts = [line for line in timeline if "-> operators" in line[3]]
    assert alerts == [(timeline[held][0], 3, "notice", "cleanup_unconfirmed -> operators (astro)")]
    assert forged < held
    assert "(operator alerts: 1)" in text


def test_a_removed_owner_s_dependents_are_warned_before_the_image_goes(
    timeline: list[tuple[str, int, str, str]],
) -> None:
    _removed, warned, _deleted, _told = _warned_then_acted(
        timeline, 4, "olga, owner of stellar-tools, is removed from Keystone",
        "image_going_away -> tess (stellar-tools)", "delete_images user olga: done",
        "images_deleted -> help desk (olga)",
    )  # fmt: skip
    assert len(warned) == 2


def test_the_users_of_an_end_of_life_image_are_warned_and_reminded(
    timeline: list[tuple[str, int, str, str]],
) -> None:
    marked = _first(timeline, 5, "event", "operators mark ubuntu-20.04 end of life")
    acted = _at(timeline, 5, "action", "warn_eol image ubuntu-20.04: done")
    warned = _at(timeline, 5, "notice", "eol_image -> ana (ubuntu-20.04)")
    assert len(acted) == len(warned) == 2
    assert marked < acted[0] < warned[0] < acted[1] < warned[1]


def test_a_port_open_to_the_world_is_warned_until_the_rule_goes(
    timeline: list[tuple[str, int, str, str]],
) -> None:
    opened = _first(timeline, 6, "event", "tess opens MongoDB (27017) to the world")
    warned = _at(timeline, 6, "notice", "exposed_service -> tess (tcp 27017 from 0.0.0.0/0)")
    gone = _first(timeline, 6, "event", "tess deletes the rule")
    assert len(warned) == 2 and opened < warned[0] < warned[1] < gone
    assert [line for line in timeline[gone + 1 :] if line[1] == 6] == []


def test_the_saved_output_is_the_demo_s_output(text: str) -> None:
    """docs/demo-output.txt is what ``reclaim demo`` prints today (but its wall time), and
    the servers left are named beside their ids."""
    assert re.search(r"│ notebook │ [0-9a-f-]{36} │ astro +│ ACTIVE", text)

    def steady(out: str) -> list[str]:
        return [line for line in out.splitlines() if not WALL.match(line)]

    assert steady(SAVED.read_text()) == steady(text), (
        "regenerate with: .venv/bin/reclaim demo > docs/demo-output.txt"
    )


def test_json_tells_the_same_timeline_and_the_cloud_left() -> None:
    story = json.loads(_demo("--json"))
    assert set(story["stories"]) == {"1", "2", "3", "4", "5", "6"}
    assert {line["story"] for line in story["timeline"]} == {1, 2, 3, 4, 5, 6}
    times = [line["at"] for line in story["timeline"]]
    assert times == sorted(times)
    status = {s["name"]: s["status"] for s in story["servers"]}
    assert all(re.fullmatch(r"[0-9a-f-]{36}", s["id"]) for s in story["servers"])
    assert status == {"notebook": "ACTIVE", "course": "SHUTOFF", "lab": "ACTIVE"}
    assert story["deleted"] == ["analysis", "assembler", "pipeline", "viz"]
    assert {i["name"] for i in story["images"]} == {"ubuntu-24.04", "ubuntu-20.04"}
    assert story["alerts"] == 1 and story["mails"] >= 40
    # each story's first mail carries a signed link to its resource, for its recipient
    from reclaim.demo import WEB_KEY, WEB_URL
    from reclaim.web.links import verify

    links = story["links"]
    assert set(links) == {"1", "2", "3", "4", "5", "6"}
    assert links["1"]["mail"] == "shelve_upcoming -> ana (analysis)"
    for entry in links.values():
        assert entry["link"].startswith(f"{WEB_URL}/l/")
        token = entry["link"].split("/l/")[1]
        grant = verify(token, WEB_KEY, datetime(2026, 1, 1, tzinfo=UTC))
        assert grant.resource_id and "@" in grant.recipient  # signed for one resource, one person
