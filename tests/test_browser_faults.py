"""Fault doors in a real browser: two tabs on one training run, and a webcam that is not there.

Same machinery as tests/test_browser.py (Playwright + Debian's Chromium against `streamlit run` on
127.0.0.1); skipped with the reason where Chromium or Playwright is missing. Waits are on page
content, never sleeps.
"""
from __future__ import annotations

import json
import os
import re

import pytest

from tests.test_browser import (ARGS, CHROMIUM, browser, chart_points, idle, no_errors, open_page, server,
                                start_training, wait_points)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (CI installs it)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")


SHARED_FIXTURES = (browser, server)  # test_browser's fixtures, imported so pytest finds them here


def test_two_tabs_on_one_run_see_the_same_run_and_either_can_stop_it(server, browser):
    a = open_page(browser, server.url + "/Train", "Start training")
    start_training(a)
    wait_points(a, ">= 1")
    # tab B (its own browser context, so its own Streamlit session) opens later: it lists the
    # run (newest first) and follows it live
    b = open_page(browser, server.url + "/Train", "state running")
    (run_id,) = os.listdir(server.home / "runs")
    b.get_by_text(run_id).first.wait_for()
    wait_points(b, ">= 1")
    seen = chart_points(b)
    wait_points(b, f"> {seen}")  # B's charts grow while A's run trains
    b.get_by_role("button", name="Stop").click()
    a.get_by_text("state stopped").wait_for(timeout=120_000)  # A learns of the stop from B
    b.get_by_text("state stopped").wait_for(timeout=120_000)
    done = chart_points(a)
    wait_points(b, f"=== {done}")
    no_errors(a)
    no_errors(b)

    # nothing corrupt on disk: every metrics line parses, the checkpoint loads, the state is final
    from maskrec.models import checkpoint
    run_dir = server.home / "runs" / run_id
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, done + 1))
    assert checkpoint.load(run_dir / "last.pt")["epoch"] == done
    assert json.loads((run_dir / "status.json").read_text())["state"] == "stopped"
    a.close()
    b.close()


# (Chromium flags, what streamlit-webrtc must say): no camera at all; a camera the user blocks (a
# fake device, but no fake "Allow" click, and the context grants no permission)
CAMERA_FAULTS = {"no camera": ([], "NotFoundError|Device not available|Requested device not found"),
                 "permission denied": (["--use-fake-device-for-media-stream"],
                                       "NotAllowedError|Access denied|Permission denied")}


@pytest.mark.parametrize("fault", list(CAMERA_FAULTS))
def test_live_stream_without_a_usable_camera_explains_instead_of_failing(server, fault):
    flags, expected = CAMERA_FAULTS[fault]
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + flags)
        page = b.new_context(viewport={"width": 1400, "height": 1000}, permissions=[]).new_page()
        page.goto(server.url + "/Recognize")
        page.get_by_role("heading", name="Recognize").wait_for(timeout=120_000)
        idle(page)
        page.get_by_role("tab", name="Live").click()
        hint = page.get_by_text(re.compile("camera permission was denied"))
        hint.first.wait_for()
        frame = page.frame_locator('iframe[title*="webrtc_streamer"]')
        frame.get_by_role("button", name=re.compile("^start$", re.I)).click()
        # streamlit-webrtc reports the device error inside its own frame ...
        said = frame.get_by_text(re.compile(expected))
        said.first.wait_for(timeout=60_000)
        print(f"\n{fault}: streamlit-webrtc says {said.first.inner_text()!r}")
        # ... and the page keeps its own hint, with no Python traceback anywhere
        idle(page)
        assert hint.first.is_visible()
        no_errors(page)
        b.close()
