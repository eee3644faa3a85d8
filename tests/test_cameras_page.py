"""The Cameras page (pages/5_Cameras.py over ui/cameras.py, maskrec/cameras/remote.py and report.py).

In Chromium against a real ``serve --cameras`` with two cameras (looped clips of the demo
generator's faces, known bare people) and ``streamlit run``: both cameras' frames and figures, the
events with their evidence, the trend, a compliance report downloaded, and the model swapped from
the page while the cameras run. Without a browser: the page's answer when the server is away
(AppTest), and the compliance report made from what the events writer recorded.
"""
from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from maskrec.cameras.config import Rule
from maskrec.cameras.events import EVENTS, PEOPLE, STATES, Events
from maskrec.cameras.remote import ServeFeed
from maskrec.cameras.report import camera_report, camera_result, event_thumbs, processed
from maskrec.live.track import tracker_for
from tests.conftest import REPO
from tests.test_events import FPS, broker, camera_frames, clip, config, free_port, records, rec, wait_for  # noqa: F401 (fixtures)

APP = str(REPO / "streamlit_app.py")


def test_the_page_says_when_the_server_cannot_be_reached(monkeypatch):
    port = free_port()
    monkeypatch.setenv("MASKREC_SERVE_URL", f"http://127.0.0.1:{port}")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/5_Cameras.py")
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Cameras"
    errors = [e.value for e in at.error]
    assert errors and all(e.startswith(f"cannot reach http://127.0.0.1:{port}: ") for e in errors), errors


@pytest.mark.parametrize("now, start, end", [
    ("2026-12-08 00:27:37", "2026-12-07 23:27", "2026-12-08 00:28"),  # the hour began yesterday
    ("2026-12-07 23:59:30", "2026-12-07 22:59", "2026-12-08 00:00"),  # the range ends tomorrow
    ("2026-12-07 14:05:10", "2026-12-07 13:05", "2026-12-07 14:06")])
def test_the_report_forms_default_range_is_the_last_hour_at_any_time_of_day(now, start, end):
    """The CI run at 00:2x made the form's default range 23:2x today to 00:2x today, and the page refused it
    ('The range ends before it starts'): each end now carries its own date."""
    from datetime import datetime
    from ui.cameras import last_hour
    t0, t1 = last_hour(datetime.fromisoformat(now))
    assert (f"{t0:%Y-%m-%d %H:%M}", f"{t1:%Y-%m-%d %H:%M}") == (start, end) and t0 < t1


def test_a_compliance_report_from_the_recorded_states_and_people(rec, clip, tmp_path):
    """People who came and left (the clip, then empty frames until their tracks end) are in
    people.jsonl with their votes; the report's totals and tracks are theirs."""
    tracker = tracker_for(rec)
    ev = Events(config([Rule("bare", 1.0)]), tmp_path, sinks=[], state_every_s=1.0).start()
    t0 = 1_000_000.0
    try:
        for f in camera_frames(rec, clip, 3.0, t0=t0, tracker=tracker):
            ev.on_frame(f)
        empty = type(f.result)((), f.result.timings, f.result.shape)
        for k in range(int(10 * FPS)):  # nobody: the tracks end (max_age_s) and are recorded
            t = t0 + 3.0 + k / FPS
            ev.on_frame(f._replace(t=t, result=empty, seen=tracker.update(t, [], []), frames=f.frames + k + 1))
        assert ev.drain()
    finally:
        ev.stop()
    people, states, events = records(tmp_path, PEOPLE), records(tmp_path, STATES), records(tmp_path, EVENTS)
    assert sorted(p["label"] for p in people) == ["mask", "no_mask", "no_mask"] and len(events) == 2
    res = camera_result("door", t0, t0 + 13.0, states, people, events)
    assert res.summary["people"] == 3 and res.summary["mask"] == 1 and res.summary["no_mask"] == 2
    assert [t.track for t in res.tracks] == sorted(p["track"] for p in people)
    assert res.timeline[0] == (0, 0, 0) and max(r[1] + r[2] for r in res.timeline) == 3
    assert "2 events raised in this time (GET /v1/events)" in res.summary["warnings"]
    # the frames the camera processed between its first and last state record, at the clip's rate
    assert res.summary["frames"] == states[-1]["frames"] - states[0]["frames"] > 10 * FPS
    assert res.summary["fps"] == pytest.approx(FPS, abs=0.2)
    assert processed([{"frames": 5}, {"frames": 9}, {"frames": 3}, {"frames": 7}]) == 4 + 3 + 4  # a restart at 3
    # the faces kept with the events: a thumbnail beside each track that raised one
    thumbs = {e["track"]: "data:image/jpeg;base64," + base64.b64encode((tmp_path / e["thumbnail"]).read_bytes()).decode()
              for e in events}
    html = camera_report("door", t0, t0 + 13.0, states, people, events, thumbs, title="Door, test")
    assert 'data-key="people" data-value="3"' in html and "<title>Door, test</title>" in html
    assert html.count('<img src="data:image/jpeg;base64,') == 2 and "No thumbnails" not in html
    assert re.search(r"<th>Frames processed</th><td>(\d+)</td>", html).group(1) == str(res.summary["frames"])
    # another camera, or a time before anything was recorded: said, not an empty table alone
    assert camera_result("hall", t0, t0 + 13.0, states, people).summary["note"] == "no record for this camera in this time"


# ------------------------------------------------------------------------ Chromium, two cameras

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (CI installs it)")
def test_the_cameras_page_follows_two_cameras_in_chromium(tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    import httpx2 as httpx
    from tests.rtsp_server import clip as make_clip
    from tests.test_browser import ARGS, Server, idle, no_errors, shots_dir
    from tests.test_events import Serve
    for name, faces in (("door", ((8, 10), (37, 230))), ("hall", ((8, 10), (37, 230), (0, 450)))):
        make_clip(tmp_path / f"{name}.mp4", seconds=3.0, fps=15, size=(720, 540), faces=faces)
    cams = tmp_path / "cameras.toml"
    cams.write_text("".join(f'[[cameras]]\nname = "{n}"\nsource = "{tmp_path / n}.mp4"\n'
                            f'[[cameras.rules]]\nname = "bare-2s"\nbare_for_s = 2.0\ncooldown_s = 600.0\n'
                            for n in ("door", "hall")))
    serve = Serve(tmp_path, cams)
    app = None
    try:
        wait_for(serve.ready, 240, "the server's model")
        got = wait_for(lambda: (r := httpx.get(f"{serve.url}/v1/events").json())["total"] >= 3 and r, 120,
                       "an event of each bare person")
        assert sorted(e["camera"] for e in got["events"]) == ["door", "hall", "hall"]  # hall: two bare people
        os.environ["MASKREC_SERVE_URL"] = serve.url
        try:
            app = Server(tmp_path / "apphome").start()
        finally:
            del os.environ["MASKREC_SERVE_URL"]
        with playwright_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = b.new_page(viewport={"width": 1280, "height": 2400}, accept_downloads=True)
            page.goto(app.url + "/Cameras")
            page.get_by_text("Events (3)").wait_for(timeout=120_000)
            for name in ("door", "hall"):  # each card: its latest frame and figures
                card = page.locator(f".st-key-cam-{name}")
                card.get_by_text(f"{name} · live").wait_for(timeout=60_000)
                card.locator("img").first.wait_for(timeout=60_000)
                for label in ("People now", "Masked", "FPS", "Lag p95"):
                    found = card.get_by_text(label, exact=True)
                    found.first.wait_for(timeout=30_000)  # the card's elements arrive one by one
                    assert found.count() == 1, (name, label)
            shots = [page.locator('[data-testid="stImage"]').filter(has_text=f"{n} · bare-2s") for n in ("door", "hall")]
            assert [s.count() for s in shots] == [1, 2]
            for s in shots:  # the evidence, with its caption
                s.first.locator("img").wait_for(timeout=60_000)
                assert s.first.locator("img").evaluate("i => i.naturalWidth") == 720
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            idle(page)
            no_errors(page)
            page.screenshot(path=str(shots_dir() / "cameras-page.png"), full_page=True)

            page.get_by_role("button", name="Make report").click()
            button = page.get_by_role("button", name="Download door-")
            button.wait_for(timeout=60_000)
            with page.expect_download() as dl:
                button.click()
            html = Path(dl.value.path()).read_text()
            assert "<title>Camera door," in html and 'data-key="people"' in html and "still in view" in html
            frames = re.search(r"<th>Frames processed</th><td>([\d,]+)</td>", html).group(1)
            assert int(frames.replace(",", "")) > 0, frames
            # the faces the events kept, fetched from the server for the report's track table
            door = [e for e in got["events"] if e["camera"] == "door"]
            thumbs = event_thumbs(ServeFeed(serve.url), door)
            assert set(thumbs) == {e["track"] for e in door} and all(v.startswith("data:image/jpeg;base64,/9j/")
                                                                    for v in thumbs.values())

            idle(page)  # the download ran nothing (on_click="ignore"): a rerun would reset the form filled next
            page.get_by_text("Model: load another checkpoint").click()
            page.get_by_label("Operating point").fill("crops")
            page.get_by_role("button", name="Load while running").click()
            page.get_by_text("now net2.pt@crops").wait_for(timeout=120_000)
            page.get_by_text("model net2.pt@crops").nth(1).wait_for(timeout=60_000)  # both cameras' next frames
            no_errors(page)
            page.screenshot(path=str(shots_dir() / "cameras-page-swapped.png"), full_page=True)
            b.close()
        status = httpx.get(f"{serve.url}/v1/cameras").json()["cameras"]
        assert all(c["state"] == "live" and c["model"] == "net2.pt@crops" for c in status)
    finally:
        if app is not None:
            app.kill()
        serve.stop()


def test_a_broker_feed_sees_every_machines_cameras(broker):
    """What the page reads when it follows a broker: the states and events two publishers (two
    machines' MqttSinks) send, the latest state per camera; a dead broker said in words."""
    from maskrec.cameras.config import Mqtt
    from maskrec.cameras.remote import BrokerFeed
    from maskrec.cameras.sinks import MqttSink
    feed = BrokerFeed(*broker).start()
    sinks = [MqttSink(Mqtt(*broker)) for _ in range(2)]
    try:
        wait_for(lambda: feed.status()["connected"], 20, "the feed to connect")
        for s in sinks:
            s.start()
        for i, (s, cam) in enumerate(zip(sinks, ("door", "hall"))):
            s.send_state({"camera": cam, "t": 10.0 + i, "people": 2 + i, "masked": 1, "bare": 1 + i,
                          "masked_share": 1 / (2 + i), "model": "net2.pt@street"})
            s.send_event({"id": f"e-{cam}", "camera": cam, "t": 12.0 + i, "rule": "bare"})
        wait_for(lambda: len(feed.cameras()) == 2 and feed.events()["total"] == 2, 20, "both machines' messages")
        assert [(c["name"], c["people"]) for c in feed.cameras()] == [("door", 2), ("hall", 3)]
        assert [e["id"] for e in feed.events()["events"]] == ["e-hall", "e-door"]  # newest first
        assert [e["id"] for e in feed.events(camera="door")["events"]] == ["e-door"]
        assert [s["camera"] for s in feed.states(since=10.5)] == ["hall"]
    finally:
        for s in sinks:
            s.stop()
        feed.stop()
    dead = BrokerFeed("127.0.0.1", free_port()).start()
    try:
        st = wait_for(lambda: (v := dead.status())["error"] and v, 20, "the dead broker to be said")
        assert not st["connected"] and st["error"].startswith("cannot connect to the MQTT broker at 127.0.0.1:")
    finally:
        dead.stop()


def test_a_broker_feed_says_which_cameras_lost_their_server(broker, tmp_path):
    """Presence: a server killed outright (its last will, published by the broker) and one stopped
    (its goodbye) turn their cameras offline on the page's feed; the other server's camera stays live,
    and presence messages are not counted as sent events or states."""
    import signal
    import subprocess
    import sys
    from maskrec.cameras.config import Mqtt
    from maskrec.cameras.remote import BrokerFeed
    from maskrec.cameras.sinks import MqttSink
    host, port = broker
    script = (f"import threading\nfrom maskrec.cameras.config import Mqtt\nfrom maskrec.cameras.sinks import MqttSink\n"
              f"s = MqttSink(Mqtt({host!r}, {port}), cameras=['gate'])\ns.start()\n"
              f"s.send_state({{'camera': 'gate', 't': 10.0, 'people': 2, 'masked': 1, 'bare': 1}})\n"
              f"threading.Event().wait()\n")
    feed = BrokerFeed(host, port).start()
    lobby = MqttSink(Mqtt(host, port), cameras=["lobby"])
    gate = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        wait_for(lambda: feed.status()["connected"], 20, "the feed to connect")
        lobby.start()
        lobby.send_state({"camera": "lobby", "t": 11.0, "people": 1, "masked": 1, "bare": 0})
        # cameras of their own: a state another test left retained on the broker would read live at once
        states = lambda: {c["name"]: c["state"] for c in feed.cameras() if c["name"] in ("gate", "lobby")}  # noqa: E731
        wait_for(lambda: states() == {"gate": "live", "lobby": "live"}, 30, "both servers' cameras live")
        wait_for(lambda: lobby.status()["sent"] == 1, 20, "the broker to acknowledge lobby's state")
        gate.send_signal(signal.SIGKILL)  # no goodbye: the broker publishes its will
        gate.wait(10)
        wait_for(lambda: states() == {"gate": "offline", "lobby": "live"}, 30, "gate's server's last will")
        (gone,) = [c for c in feed.cameras() if c["name"] == "gate"]
        assert gone["error"] == "its server is gone (its connection to the broker died)" and gone["people"] == 0
        assert lobby.status()["sent"] == 1 and lobby.status()["failed"] == 0  # its presence is not a sent state
        lobby.stop()
        wait_for(lambda: states() == {"gate": "offline", "lobby": "offline"}, 30, "lobby's goodbye")
        assert [c["error"] for c in feed.cameras() if c["name"] in ("gate", "lobby")] == [
            "its server is gone (its connection to the broker died)", "its server is gone (stopped)"]
        # a server that comes back names its camera online again
        again = MqttSink(Mqtt(host, port), cameras=["lobby"])
        again.start()
        try:
            wait_for(lambda: states()["lobby"] == "live", 30, "lobby back")
        finally:
            again.stop()
    finally:
        if gate.poll() is None:
            gate.kill()
            gate.wait()
        lobby.stop()
        feed.stop()
