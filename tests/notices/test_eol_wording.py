"""The end-of-life mail names the operating system as people write it, and only once."""

from __future__ import annotations

import pytest

from reclaim.mailer import Renderer
from reclaim.mailer.examples import READER, examples
from reclaim.notices import NoticeMessage
from reclaim.notices.context import os_label
from reclaim.settings import PolicySettings


def _eol(name: str, distro: str, version: str) -> NoticeMessage:
    return NoticeMessage(
        kind="eol_image", resource_type="image", resource_id="5e4d3c2b", resource_name=name,
        detail={"os_distro": distro, "os_version": version, "servers": "srv-1",
                "eol_at": "2025-05-31T00:00:00Z"},
    )  # fmt: skip


def _first_sentence(notice: NoticeMessage) -> str:
    text = " ".join(Renderer(policy=PolicySettings()).render(notice, READER).text.split())
    return text.split("The image ", 1)[1].split(". ", 1)[0]


@pytest.mark.parametrize(
    ("name", "distro", "version", "said"),
    [
        ("Ubuntu 20.04", "ubuntu", "20.04", '"Ubuntu 20.04" (5e4d3c2b) reached'),
        ("ubuntu-20.04", "ubuntu", "20.04", '"ubuntu-20.04" (5e4d3c2b) reached'),
        ("CentOS-7", "centos", "7", '"CentOS-7" (5e4d3c2b) reached'),
        ("focal-lab", "ubuntu", "20.04", '"focal-lab" (5e4d3c2b), Ubuntu 20.04, reached'),
        ("lab-base", "centos", "7", '"lab-base" (5e4d3c2b), CentOS 7, reached'),
        ("lab-base", "opensuse", "15.5", '"lab-base" (5e4d3c2b), openSUSE 15.5, reached'),
        ("lab-base", "myos", "2", '"lab-base" (5e4d3c2b), Myos 2, reached'),
        # the name says the distribution but another release: the OS is stated
        ("ubuntu-lab", "ubuntu", "18.04", '"ubuntu-lab" (5e4d3c2b), Ubuntu 18.04, reached'),
    ],
)
def test_the_os_is_written_as_people_write_it_unless_the_name_says_it(
    name: str, distro: str, version: str, said: str
) -> None:
    sentence = _first_sentence(_eol(name, distro, version))
    assert sentence.startswith(said), sentence


def test_the_documented_example_does_not_repeat_the_os() -> None:
    (notice,) = [n for n in examples() if n.kind == "eol_image"]
    sentence = _first_sentence(notice)
    assert sentence.lower().count("ubuntu") == 1, sentence


def test_os_label_without_a_distribution_is_empty() -> None:
    assert os_label({}) == ""
    assert os_label({"os_version": "7"}) == ""
    assert os_label({"os_distro": "debian", "os_version": "12"}) == "Debian 12"
    assert os_label({"os_distro": "SLES", "os_version": "15"}, "lab") == "SLES 15"
