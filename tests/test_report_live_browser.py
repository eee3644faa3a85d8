"""The Live tab's report in a real browser: Chromium's fake camera streams the dev scenes (the
webcam test's clip, server and browser), Prepare report, then Download report, twice while the
stream runs (its panel polls every second) and once after STOP; each download is a report of the
session so far with a thumbnail for every person and nothing that loads off the machine.

Waits are on page content, never sleeps. Skipped where Chromium, Playwright or ../shared is absent.
"""
from __future__ import annotations

import os
import re

import pytest

from tests.test_browser import CHROMIUM, idle
from tests.test_report import Report, self_contained
# the fake-camera clip, its server and its browser: the webcam test's module fixtures
from tests.test_webcam_browser import browser, clip, open_recognize, server  # noqa: F401

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (CI installs it)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
START, STOP = re.compile("^start$", re.I), re.compile("^stop$", re.I)


def download(page, panel, tmp_path, n: int) -> str:
    """Prepare, then download (the first Prepare makes the Download button appear; a later click may
    still get the previous Prepare's report, which is as well-formed)."""
    panel.get_by_role("button", name="Prepare report (HTML)").click()
    button = panel.get_by_role("button", name="Download report (HTML)")
    button.wait_for(timeout=60_000)
    with page.expect_download(timeout=60_000) as got:
        button.click()
    assert re.fullmatch(r"live-\d{8}-\d{6}-report\.html", got.value.suggested_filename), got.value.suggested_filename
    path = tmp_path / f"live-{n}.html"
    got.value.save_as(path)
    return path.read_text()


def test_the_live_tab_downloads_the_session_so_far_while_streaming_and_after_stop(server, browser, tmp_path):  # noqa: F811
    page = open_recognize(browser, server)
    page.get_by_role("tab", name="Live").click()
    page.get_by_text("Not streaming").first.wait_for()
    frame = page.frame_locator('iframe[title*="webrtc_streamer"]')
    frame.get_by_role("button", name=START).click()
    page.wait_for_function("""() => { const m = document.body.innerText.match(/(\\d+) frames so far/);
        return m && parseInt(m[1]) >= 40; }""", timeout=180_000)
    panel = page.locator('[data-testid="stTabPanel"]:visible')
    reports = [download(page, panel, tmp_path, n) for n in range(2)]
    frame.get_by_role("button", name=STOP).click()
    page.get_by_text("Not streaming").first.wait_for()
    idle(page)
    reports.append(download(page, panel, tmp_path, 2))
    for html in reports:
        r = Report(html)
        assert r.summary["people"] >= 1 and len(r.tracks) == r.summary["people"]
        assert html.count('<img src="data:image/jpeg;base64,') == len(r.tracks)  # a face for every person
        assert "Live session started" in html
        self_contained(html)
    page.close()
