"""The HTML mails as a reader sees them: every kind rendered by headless Chromium (Debian's
chromium and chromium-driver, installed by .ci/setup) in a 375 px wide window."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reclaim.mailer.examples import PROJECT_NAME, READER, examples
from reclaim.mailer.render import Renderer
from reclaim.settings import PolicySettings

WIDTH = 375  # a phone

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="needs chromium and chromium-driver (bash .ci/setup)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={WIDTH},800"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(str(shutil.which("chromedriver"))))
    try:
        yield driver
    finally:
        driver.quit()


def show(browser: Any, html: str, path: Path) -> str:
    """Open ``html`` (written to ``path``) and return the text a reader sees."""
    path.write_text(html)
    browser.get(path.as_uri())
    return str(browser.execute_script("return document.body.innerText"))


def overflow(browser: Any) -> int:
    """How far the page is wider than the window (0: nothing to scroll sideways)."""
    width = browser.execute_script("return document.documentElement.scrollWidth")
    window = browser.execute_script("return document.documentElement.clientWidth")
    return int(width) - int(window)


def screenshot(browser: Any, html: str, work: Path, out: Path) -> None:
    """A PNG of ``html`` as rendered, the whole mail (``out``)."""
    show(browser, html, work)
    height = int(browser.execute_script("return document.documentElement.scrollHeight")) + 90
    metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    out.write_bytes(base64.b64decode(shot["data"]))


def test_every_html_mail_reads_without_raw_ids_or_sideways_scrolling(
    browser: Any, tmp_path: Path
) -> None:
    from reclaim.notices.context import with_project_name

    renderer = Renderer(policy=PolicySettings())
    for notice in examples():
        named = with_project_name(notice, PROJECT_NAME) if notice.project_id else notice
        html = renderer.render(named, READER).html
        text = show(browser, html, tmp_path / f"{notice.kind}.html")
        assert overflow(browser) <= 0, (notice.kind, overflow(browser))
        assert text.startswith("Dear Ada Lovelace,"), notice.kind
        if notice.project_id:
            # the project is named; its id only ever beside the name
            assert f'"{PROJECT_NAME}" ({notice.project_id})' in text or (
                notice.project_id not in text
            ), (notice.kind, text)
        if notice.resource_name:
            assert notice.resource_name in text, notice.kind
        assert "{{" not in text and "{%" not in text, notice.kind


def test_the_end_of_life_mail_lists_the_servers_by_name(browser: Any, tmp_path: Path) -> None:
    (notice,) = [n for n in examples() if n.kind == "eol_image"]
    html = Renderer(policy=PolicySettings()).render(notice, READER).html
    show(browser, html, tmp_path / "eol.html")
    items = [li.text for li in browser.find_elements("tag name", "li")]
    assert [i.split(" (")[0] for i in items] == ['"analysis-vm"', '"pipeline-2"']
    shot = tmp_path / "eol.png"
    screenshot(browser, html, tmp_path / "eol.html", shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_late_warning_says_so_in_a_browser(browser: Any, tmp_path: Path) -> None:
    """A warning read two days after its date: the reader sees that the date has passed,
    the date before which nothing happens if it is the first warning, and what to do now."""
    from datetime import timedelta

    (notice,) = [n for n in examples() if n.kind == "delete_upcoming"]
    assert notice.due_at is not None
    html = (
        Renderer(policy=PolicySettings())
        .render(notice, READER, notice.due_at + timedelta(days=2))
        .html
    )
    text = show(browser, html, tmp_path / "late.html")
    assert overflow(browser) <= 0
    assert browser.title == 'Your shelved server "analysis-vm" was due to be deleted on 2026-03-15'
    paragraphs = [p.text for p in browser.find_elements("tag name", "p")]
    (late,) = [p for p in paragraphs if p.startswith("This mail reaches you late")]
    assert "Sunday 15 March 2026 at 09:00 UTC, a date that has passed" in late
    # published 30 days before its date, read 2 days after it: 30 days from the reading
    assert "it will not happen before Thursday 16 April 2026 at 09:00 UTC" in late
    assert "will be deleted on" not in text and "If it is still there, unshelve it now" in text
