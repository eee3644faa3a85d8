"""The Recognize page's Video tab in a real browser: upload a generated clip, watch the annotated
video play in Chromium, see the people-per-second chart and the track table.

The clip is a 3 s Ken-Burns move at 320x240 over a dev scene with two masked faces (over three
cartoon faces on a fresh clone), written by evaluation.clips. Waits are on page content, never
sleeps. Screenshot: recognize-video.png in $MASKREC_SCREENSHOTS.
"""
from __future__ import annotations

import os

import pytest

from evaluation import clips as C
from maskrec import faces as F
from maskrec import video as V
from tests.conftest import SCENES
from tests.test_browser import ARGS, CHROMIUM, Server, idle, no_errors, shots_dir

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (CI installs it)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")


@pytest.fixture
def clip(tmp_path):
    img = SCENES / "images" / "maksssksksss141.jpg"
    if img.is_file():
        rgb, truths = F.read_rgb(img), F.load_voc(SCENES / "annotations" / "maksssksksss141.xml")
    else:  # fresh clone: cartoon faces the live detector finds (see tests/test_video.py)
        rgb, truths = C.cartoon_scene(3, indices=[8, 25, 15])
    path = tmp_path / f"door{V.output_suffix()}"
    C.write_clip(path, C.ken_burns(rgb, truths, (320, 240), 3.0, 15.0, seed=2), 15.0)
    return path


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "home").start()
    yield s
    s.kill()


def test_upload_a_clip_and_watch_the_annotated_video_timeline_and_tracks(server, clip):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(server.url + "/Recognize")
        page.get_by_role("heading", name="Recognize").wait_for(timeout=120_000)
        idle(page)
        page.get_by_role("tab", name="Video").click()
        panel = page.locator('[data-testid="stTabPanel"]:visible')
        uploader = panel.locator('[data-testid="stFileUploader"]').filter(has_text="Video (mp4")
        uploader.locator('input[type="file"]').set_input_files(str(clip))
        # the job runs in the background; the result replaces the progress bar when it is done. No
        # reload: a run of the page that overlaps the upload's (the Live tab's webcam component sends
        # its first value about then) finds the job too (tests/test_video_tab.py)
        try:
            panel.locator("video").wait_for(timeout=90_000)
        except playwright_api.TimeoutError:
            page.screenshot(path=str(shots_dir() / "recognize-video-timeout.png"), full_page=True)
            pytest.fail("no annotated video after 90 s; the tab said:\n" + panel.inner_text()[-2000:])
        idle(page)
        # Chromium decodes and plays it: data for the current frame, and time moving on. Bounded: a
        # rerun of the page can replace the <video> element mid-wait (then the next try finds the new
        # one), and a promise that never settles would hang the whole suite.
        played = {"err": "not tried"}
        for _ in range(3):
            played = panel.locator("video").first.evaluate("""(v) => new Promise(done => {
                v.muted = true;
                const t0 = v.currentTime, start = performance.now();
                v.onerror = () => done({err: 'media error ' + (v.error && v.error.code)});
                const check = () => {
                    if (v.readyState >= 2 && v.currentTime > t0 + 0.3)
                        return done({ready: v.readyState, t: v.currentTime, w: v.videoWidth, err: null});
                    if (!v.isConnected || performance.now() - start > 15000)
                        return done({err: 'no playback', ready: v.readyState, t: v.currentTime,
                                     paused: v.paused, connected: v.isConnected});
                    if (v.paused) v.play().catch(() => {});
                    setTimeout(check, 100);
                };
                v.play().catch(() => {});
                check();
            })""")
            if played["err"] is None:
                break
        assert played["err"] is None and played["ready"] >= 2 and played["w"] == 320, played
        # the people-per-second chart: one bar per second, with people in them
        bars = panel.locator(".js-plotly-plot").first.evaluate(
            "(el) => el.data.map(t => t.y.reduce((a, b) => a + b, 0))")
        assert len(bars) == 2 and sum(bars) >= 3, bars
        assert panel.locator(".js-plotly-plot").first.evaluate("(el) => el.data[0].x.length") == 3
        # the track table, and the counts above it
        table = panel.locator('[data-testid="stDataFrame"]')
        table.wait_for()
        people = panel.locator('[data-testid="stMetric"]').filter(has_text="People")
        n = int(people.locator('[data-testid="stMetricValue"]').inner_text())
        assert n >= 1
        assert panel.get_by_role("button", name="Tracks (CSV)").is_visible()
        no_errors(page)
        page.screenshot(path=str(shots_dir() / "recognize-video.png"), full_page=True)
        browser.close()
