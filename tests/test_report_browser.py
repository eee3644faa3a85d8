"""The compliance report in a real browser: opened from disk (file://) in Chromium, it makes no
request but for the file itself (data: URLs aside), logs no error (a fetch its Content-Security-Policy
refused would be one), draws both Plotly charts, and shows every person of the result in its table,
thumbnails loaded. Once for a video run, once for a live session; and the Video tab's "Download
report (HTML)" button on a streamlit server hands out that report of a finished result.

Waits are on page content, never sleeps. Screenshots: report-video.png, report-live.png in
$MASKREC_SCREENSHOTS.
"""
from __future__ import annotations

import json
import os
import shutil

import pytest

from maskrec import video as V
from maskrec.live.recognize import Recognizer
# browser, server: test_browser's fixtures (Debian's Chromium; a streamlit subprocess)
from tests.test_browser import CHROMIUM, browser, idle, server, shots_dir  # noqa: F401
# clip, predictor, processed: test_report's module fixtures (a processed cartoon clip)
from tests.test_report import HOSTILE, assert_same_numbers, clip, live_buffer, predictor, processed  # noqa: F401
from tests.test_video import MagentaFrames

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (CI installs it)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")


@pytest.fixture
def report(request, tmp_path):
    """(path, result) of a report: a processed cartoon clip, or a live session of two people."""
    rec = Recognizer(request.getfixturevalue("predictor"), MagentaFrames())
    if request.param == "video":
        res = V.process(request.getfixturevalue("clip"), rec)
        html = V.render_report(res, V.settings_of(rec, None, HOSTILE), HOSTILE)
    else:
        s = live_buffer().session()
        res = V.session_result(s.tracker, s.timeline, start=s.start, end=s.end, frames=s.frames, size=s.size,
                               thumbs=s.thumbs)
        html = V.session_report(s, V.settings_of(rec, 0.5, "live camera"), "Mask compliance: live camera")
    path = tmp_path / f"report-{request.param}.html"
    path.write_text(html)
    return path, res


@pytest.mark.parametrize("report", ["video", "live"], indirect=True)
def test_the_report_opens_offline_with_its_charts_and_people(report, browser):  # noqa: F811
    path, res = report
    opens_offline(browser, path, res, shots_dir() / path.with_suffix(".png").name)
    if path.name == "report-video.html":  # the hostile name reads as text, it runs nothing
        page = browser.new_page()
        page.goto(path.as_uri())
        assert page.title() == HOSTILE and page.locator("h1").inner_text() == HOSTILE
        page.close()


def test_the_video_tabs_button_downloads_the_report_of_the_result(server, browser, processed, tmp_path):  # noqa: F811
    # a finished result as an upload leaves it (result.json, settings.json, name.txt): the tab lists it
    folder = server.home / "cache" / "videos" / "20260101-120000-abcdef"
    shutil.copytree(processed, folder)
    (folder / "name.txt").write_text("door.mp4")
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page.goto(server.url + "/Recognize")
    page.get_by_role("heading", name="Recognize").wait_for(timeout=120_000)
    idle(page)
    page.get_by_role("tab", name="Video").click()
    button = page.locator('[data-testid="stTabPanel"]:visible').get_by_role("button", name="Download report (HTML)")
    # clicked at once, while the Live tab's component may still be starting the rerun it asks for
    # after the page has loaded: the report is fixed bytes with one URL across reruns (ui/video.py)
    with page.expect_download(timeout=60_000) as got:
        button.click()
    assert got.value.suggested_filename == "door-report.html"
    path = tmp_path / "door-report.html"
    got.value.save_as(path)
    page.close()
    html = path.read_text()
    on_disk = json.loads((folder / V.RESULT).read_text())
    assert_same_numbers(html, on_disk["summary"], on_disk["tracks"])
    assert "Mask compliance: door.mp4" in html and "magenta" in html  # the settings the run was started with
    opens_offline(browser, path, V.load(folder), None)


def opens_offline(browser, path, res, shot) -> None:
    """Open the report from disk: no request but itself, no error, nothing run from its strings (an
    alert() in a file name would show as a dialog), both charts, every person."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("dialog", lambda d: errors.append(f"dialog: {d.message}") or d.dismiss())
    page.goto(path.as_uri())
    # both charts drawn: Plotly has put its SVG into each, with the result's seconds on the x axis
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2",
                           timeout=60_000)
    drawn = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map("
                          "el => ({traces: el.data.length, x: el.data[0].x.length, bars: el.querySelectorAll("
                          "'.point, .scatterlayer .trace').length}))")
    assert [d["traces"] for d in drawn] == [2, 1] and all(d["x"] == len(res.timeline) for d in drawn), drawn
    assert all(d["bars"] > 0 for d in drawn), drawn
    # the table: one row per person, their ids and labels as in the result, every thumbnail decoded
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
    rows = page.evaluate("() => [...document.querySelectorAll('table.tracks tbody tr')].map(tr => ({"
                         "id: tr.children[1].innerText, label: tr.dataset.label,"
                         "img: tr.querySelector('img')?.naturalWidth || 0}))")
    assert [(r["id"], r["label"]) for r in rows] == [(str(t.track), t.label) for t in res.tracks]
    assert len(rows) >= 2 and all(r["img"] > 0 for r in rows), rows
    if shot is not None:
        page.screenshot(path=str(shot), full_page=True)
    assert requests == [path.as_uri()], requests  # nothing but the file itself (data: URLs make no request)
    assert errors == [], errors
    page.close()
