"""Mails name projects, servers and images (ids beside the names), and wrap at 72 columns."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from reclaim.bus.settings import BusSettings
from reclaim.commands import iso_z
from reclaim.mailer import Renderer
from reclaim.mailer.render import WIDTH, wrap
from reclaim.notices import NoticeMessage
from reclaim.notices.context import Site
from reclaim.policy.acceptable_use import EOL_WARNING
from reclaim.settings import PolicySettings, SweepSettings
from reclaim.store import DynamoTimerStore
from reclaim.sweeper import OpenStackCloud, OsloNotices, Sweeper
from reclaim_sim import SimServer
from tests.notices.conftest import START, People, Smtp
from tests.notices.test_mailer import settle

_COMMAND = re.compile(r"^\s*- (openstack|reclaim) ")


def long_lines(text: str) -> list[str]:
    """Lines over the width that are not commands to copy, nor one word (a URL, an id)."""
    return [
        line
        for line in text.splitlines()
        if len(line) > WIDTH and not _COMMAND.match(line) and " " in line.strip()
    ]


@pytest.mark.rabbitmq
def test_an_end_of_life_warning_names_the_image_the_project_and_each_server(
    keystone: SimServer, people: People, table: DynamoTimerStore, smtp: Smtp, bus_url: str,
    run_mailer: Any,
) -> None:  # fmt: skip
    cloud = keystone.cloud
    image = cloud.image.create_image(
        owner=cloud.admin_project_id, name="ubuntu-20.04", visibility="public", os_hidden=True
    )
    servers = {
        cloud.compute.create_server(
            project_id=people.project_id, user_id=people.owner_id, name=name, image_id=image.id
        ).id: name
        for name in ("analysis-vm", "pipeline-2")
    }
    table.apply(
        EOL_WARNING.schedule(
            image.id, since=START, delay=timedelta(0), event_time=START,
            project_id=cloud.admin_project_id, detail={"eol_at": iso_z(START)},
        )
    )  # fmt: skip
    run_mailer()
    notices = OsloNotices(BusSettings(transport_url=bus_url))
    Sweeper(
        table, OpenStackCloud(keystone.connect()), notices, PolicySettings(), "sweeper-names",
        SweepSettings(),
    ).sweep(START + timedelta(minutes=1))  # fmt: skip
    notices.close()

    subject = '[reclaim] The image "ubuntu-20.04" has reached end of life'
    assert sorted(settle(smtp, 2)) == sorted(
        [(people.owner_email, subject), (people.member_email, subject)]
    )
    text = smtp.box.mails[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "image image" not in text
    assert f'The image "ubuntu-20.04" ({image.id})' in " ".join(text.split())
    listed = [line for line in text.splitlines() if line.startswith("- ")]
    assert sorted(listed) == sorted(f'- "{name}" ({sid})' for sid, name in servers.items())
    assert long_lines(text) == []


def test_a_notice_without_names_names_by_id_and_never_twice() -> None:
    notice = NoticeMessage(
        kind="eol_image", resource_type="image", resource_id="img-1",
        detail={"servers": "srv-1,srv-2"},
    )  # fmt: skip
    r = Renderer(policy=PolicySettings()).render(notice)
    assert r.subject == 'The image "img-1" has reached end of life'
    assert "The image img-1 has reached" in " ".join(r.text.split())
    assert [line for line in r.text.splitlines() if line.startswith("- ")] == [
        "- srv-1",
        "- srv-2",
    ]


def test_every_text_mail_is_wrapped_with_urls_and_addresses_whole() -> None:
    from reclaim.mailer.examples import READER, examples

    url = "https://cloud.example.org/" + "policies/" * 8 + "resource-recovery.html"
    site = Site(cloud_name="the research cloud", support="help@cloud.example.org",
                policy_url=url)  # fmt: skip
    renderer = Renderer(site=site, policy=PolicySettings())
    for notice in examples():
        text = renderer.render(notice, READER).text
        assert long_lines(text) == [], notice.kind
        assert url in text.splitlines(), notice.kind
        assert "help@cloud.example.org." in text, notice.kind


def test_wrap_keeps_indents_items_and_long_words() -> None:
    words = " ".join(["word"] * 30)
    assert [len(x) <= WIDTH for x in wrap(words).splitlines()] == [True] * 3
    item = wrap("- " + words).splitlines()
    assert item[0].startswith("- word") and all(x.startswith("  word") for x in item[1:])
    quoted = wrap('  "' + words + '"').splitlines()
    assert all(x.startswith("  ") for x in quoted)
    long_id = "x" * 100
    assert wrap("see " + long_id).splitlines() == ["see", long_id]
    command = "- openstack image save --file my-copy.img " + long_id
    assert wrap(command) == command
