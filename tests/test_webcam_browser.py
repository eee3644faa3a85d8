"""The Recognize page in a real browser: a photo upload, and the live webcam stream end to end.

Chromium's fake camera plays a Y4M clip that the test writes from the dev scenes (640x480), the
page streams it over WebRTC to `streamlit run` on 127.0.0.1 (no STUN/TURN), the server detects and
classifies faces with the default recogniser (config.DEFAULT_CHECKPOINT: net2.pt since issue 34; Net1
before) + the live detector (faces.LIVE_DEFAULT) and streams the boxed frames back. Waits are on page
content (the FPS metric, the face count), never fixed sleeps; the FPS measurement itself counts
frames over a short window. Screenshots go to $MASKREC_SCREENSHOTS (default
/tmp/maskrec-screenshots): recognize-upload.png and recognize-live.png.

Skipped (with the reason) where /usr/bin/chromium, Playwright or the ../shared dev scenes are absent.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from maskrec.config import DEFAULT_CHECKPOINT
from maskrec.faces import LIVE_DEFAULT
from tests.conftest import SCENES
from tests.test_browser import ARGS, CHROMIUM, Server, idle, no_errors, shots_dir

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (CI installs it)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")

# The clip runs at 30 fps, not 15: a 15 fps camera would cap the measured rate at the goal itself.
# MASKREC_CLIP_FPS=60 measures past 30 (issue 14's goal for the live page).
W, H, FPS_IN = 640, 480, int(os.environ.get("MASKREC_CLIP_FPS", "30"))
# Scenes with several large faces, covered and bare, so the live detector finds them at 640x480.
CLIP_SCENES = ("maksssksksss110", "maksssksksss141", "maksssksksss104")
PHOTO = "maksssksksss110"
# Goal: >= 15 FPS at 640x480 with Net1 + the live detector (MASKREC_MIN_FPS=15, or a later goal, on a
# quiet machine checks it). The default floor is for CI, which runs the suite alone on 2 cores:
# measured 22.1 FPS on the AVX2-only EPYC (quiet) and 28.1 on an AVX-512/bf16 EPYC with the load
# near 2; 3.5-6 only while other training jobs shared the cores. On the AVX2-only EPYC (2026-12-04) the
# live test alone gave 19-29, but 7-14 right after the upload test (8.3 recognised / 7.5 painted in a CI
# run, under the old floor of 8), and 20 after a 20 s pause: a transient the upload test leaves on the
# machine, not found yet. 5 FPS still fails a pipeline that stalls (a blocking recogniser, a GIL hog:
# 0-2 FPS) or that recognises a frame only now and then. With net2.pt as the default (issue 34): 13.4
# FPS on the AVX-512/bf16 EPYC, quiet (classify 29 ms a frame against Net1's few).
FPS_FLOOR = float(os.environ.get("MASKREC_MIN_FPS", "5"))


def scene_paths(name: str) -> tuple[Path, Path]:
    return SCENES / "images" / f"{name}.jpg", SCENES / "annotations" / f"{name}.xml"


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = FPS_IN) -> Path:
    """(H, W, 3) uint8 RGB frames -> a YUV4MPEG2 4:2:0 clip, the format Chromium's fake camera reads."""
    import cv2
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            # (H*3/2, W) uint8: the Y plane, then U and V at half resolution (I420)
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from evaluation.detection import letterbox
    from maskrec.faces import read_rgb
    paths = [scene_paths(n)[0] for n in CLIP_SCENES]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"dev scenes not found at {SCENES} (they live in ../shared, present in CI)")
    # each scene held for a second (~40 MB in all); Chromium loops the file
    frames = [letterbox(read_rgb(p)) for p in paths for _ in range(FPS_IN)]
    return write_y4m(tmp_path_factory.mktemp("clip") / "scenes.y4m", frames)


@pytest.fixture(scope="module")
def server(tmp_path_factory, clip):
    s = Server(tmp_path_factory.mktemp("home")).start()
    yield s
    s.kill()


@pytest.fixture(scope="module")
def browser(clip):
    fake_camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   f"--use-file-for-fake-video-capture={clip}"]
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + fake_camera)
        yield b
        b.close()


def open_recognize(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url + "/Recognize")
    page.get_by_role("heading", name="Recognize").wait_for(timeout=120_000)
    idle(page)
    return page


def metric(page, label: str) -> str:
    """The value shown by the st.metric labelled exactly ``label`` ("" when there is none)."""
    return page.evaluate("""(label) => {
        for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
            const l = m.querySelector('[data-testid="stMetricLabel"]');
            if (l && l.innerText.trim() === label)
                return m.querySelector('[data-testid="stMetricValue"]').innerText.trim();
        }
        return ""; }""", label)


def metric_js(label: str) -> str:
    """A JS expression: the value text of the st.metric labelled ``label`` ("" when absent)."""
    return ("""([...document.querySelectorAll('[data-testid="stMetric"]')].find(m =>
        m.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() === '%s')
        ?.querySelector('[data-testid="stMetricValue"]').innerText ?? '')""" % label)


def wait_until(page, js: str, timeout_s: float) -> None:
    """page.wait_for_function, failing with what the page says (the live panel's state) instead
    of a bare timeout."""
    try:
        page.wait_for_function(js, timeout=timeout_s * 1000)
    except playwright_api.TimeoutError:
        text = page.locator('[data-testid="stMain"]').inner_text()
        pytest.fail(f"waited {timeout_s:.0f} s for {js!r}; the page says:\n{text[-1500:]}")


def images_loaded(page) -> None:
    """Every st.image picture has arrived (none broken, none still loading)."""
    page.wait_for_function("""() => { const imgs = [...document.querySelectorAll('[data-testid="stImage"] img')];
        return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }""", timeout=60_000)


def test_upload_a_photo_shows_boxes_and_faces(server, browser):
    page = open_recognize(browser, server)
    img, _ = scene_paths(PHOTO)
    page.get_by_role("tab", name="Upload photos").click()
    # the photos' uploader, not the Video tab's (both are in the page, one per tab)
    page.locator('[data-testid="stFileUploader"]').filter(has_text="Photos").locator(
        'input[type="file"]').set_input_files(str(img))
    cap = page.get_by_text(re.compile(rf"{PHOTO}\.jpg: \d+ face\(s\)"))
    try:
        cap.wait_for(timeout=120_000)
    except playwright_api.TimeoutError:  # say what the page showed instead (seen once, on a loaded machine)
        page.screenshot(path=str(shots_dir() / "recognize-upload-timeout.png"), full_page=True)
        pytest.fail("no face caption after 120 s; the page said:\n" + page.inner_text("body")[-3000:])
    idle(page)
    n = int(re.search(r": (\d+) face", cap.inner_text()).group(1))
    assert n >= 8
    # each crop's caption carries the number of its box on the photo: "3 · mask 0.97"
    assert page.get_by_text(re.compile(r"^\d+ · (no mask|mask|unsure) \d\.\d\d$")).count() >= n  # unsure: in the band
    images_loaded(page)
    no_errors(page)
    page.screenshot(path=str(shots_dir() / "recognize-upload.png"), full_page=True)
    page.close()


def test_live_webcam_stream_reports_faces_and_fps(server, browser):
    page = open_recognize(browser, server)
    page.get_by_role("tab", name="Live").click()
    page.get_by_text("Not streaming").first.wait_for()
    frame = page.frame_locator('iframe[title*="webrtc_streamer"]')
    frame.get_by_role("button", name=re.compile("^start$", re.I)).click()

    # The server processed frames: FPS > 0 and faces reported by the polling fragment.
    wait_until(page, """() => [...document.querySelectorAll('[data-testid="stMetric"]')].some(m =>
        m.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() === 'FPS' &&
        parseFloat(m.querySelector('[data-testid="stMetricValue"]').innerText) > 0)""", 120)
    wait_until(page, """() => /(^|\\n)[1-9]\\d* face\\(s\\) found on the latest detection frame/.test(document.body.innerText)""", 60)
    # let the 30-frame FPS window fill with frames of the running stream
    wait_until(page, """() => { const m = document.body.innerText.match(/(\\d+) frames so far/);
        return m && parseInt(m[1]) >= 40; }""", 180)

    # Frames of the returned (boxed) video painted over 3 s. With async processing streamlit-webrtc
    # answers every incoming frame with the newest processed one, so this follows the camera's
    # rate when recognition is slower: it shows the video flows, while the FPS metric (distinct
    # frames recognised per second) is the recognition rate.
    shown_fps = frame.locator("video").first.evaluate("""(v) => new Promise(done => {
        let n = 0; const t0 = performance.now();
        const tick = () => { n++; if (performance.now() - t0 < 3000) v.requestVideoFrameCallback(tick);
                             else done(n * 1000 / (performance.now() - t0)); };
        v.requestVideoFrameCallback(tick); })""")
    server_fps = float(metric(page, "FPS"))
    latency = {k: metric(page, k) for k in ("Detect", "Classify", "Draw")}
    print(f"\nlive 640x480, {DEFAULT_CHECKPOINT.stem} + {LIVE_DEFAULT}: FPS metric (frames recognised/s) {server_fps:.1f}, "
          f"video painted {shown_fps:.1f} frames/s, per-frame latency {latency}")
    images_loaded(page)
    page.screenshot(path=str(shots_dir() / "recognize-live.png"), full_page=True)
    no_errors(page)
    assert server_fps >= FPS_FLOOR and shown_fps >= FPS_FLOOR, (server_fps, shown_fps, latency)
    assert all(v.endswith(" ms") for v in latency.values()), latency

    # The same tracker follows the stream: people followed and the last minute's per-second chart move.
    # The clip shows three scenes a second each, looped: a face back 2 s later is mostly re-identified
    # by its look (maskrec.live.track), so the count need not grow with each loop.
    chart = """document.querySelector('[data-testid="stTabPanel"]:not([hidden]) .js-plotly-plot')"""
    wait_until(page, f"""() => {{ const el = {chart};
        return el && el.data && el.data[0].x.length >= 2 && parseInt('0' + ({metric_js("People")})) > 0; }}""", 60)
    seconds0 = page.evaluate(f"() => {chart}.data[0].x.length")
    wait_until(page, f"""() => {{ const el = {chart}; return el.data[0].x.length >= {seconds0 + 2}; }}""", 60)
    bars = page.evaluate(f"() => {chart}.data.map(t => t.y.reduce((a, b) => a + b, 0))")
    assert sum(bars) > 0, bars  # people were counted in the chart's seconds, not only in the total

    frame.get_by_role("button", name=re.compile("^stop$", re.I)).click()
    page.get_by_text("Not streaming").first.wait_for(timeout=60_000)
    page.close()
