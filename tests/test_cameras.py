"""Cameras (maskrec/cameras, issue 38 item 2): the camera file, sources, the hub, the HTTP API.

Real parts: RTSP cameras are ``tests/rtsp_server.RtspCamera`` (ffmpeg sending a clip made here from
the demo generator's faces as RTP; a small RTSP server relaying it), the recogniser is the shipped
checkpoint with its live detector, and ``serve --cameras`` runs as a subprocess. Tests that need
ffmpeg skip with that reason where it is absent (CI installs it: a skip fails CI).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from maskrec.cameras import config as C
from maskrec.cameras.source import Source
from maskrec.core.process import end_process
from tests.conftest import REPO
from tests.rtsp_server import FFMPEG, RtspCamera, clip, free_port

needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
SECRET = "s3cr3t-pw"


def write(tmp_path: Path, text: str, name: str = "cameras.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------------ the camera file

GOOD = """
[mqtt]
host = "127.0.0.1"
port = 1883

[[webhooks]]
url = "http://127.0.0.1:9000/hook"

[events]
dir = "ev"
blur_others = false

[[cameras]]
name = "door"
source = "rtsp://admin:s3cr3t-pw@10.0.0.5:554/stream?channel=1&password=s3cr3t-pw"
detector = "retinaface"
detect_every = 3
max_fps = 10

[[cameras.zones]]
name = "entry"
points = [[0, 0], [640, 0], [640, 480], [0, 480]]

[[cameras.rules]]
name = "bare-at-door"
bare_for_s = 3.0
zone = "entry"
cooldown_s = 30

[[cameras]]
name = "demo_2"
source = "clip.mp4"
"""


def test_camera_file_read(tmp_path):
    cfg = C.load(write(tmp_path, GOOD))
    door, demo = cfg.cameras
    assert (door.name, door.detector, door.detect_every, door.max_fps) == ("door", "retinaface", 3, 10.0)
    assert door.zones == (C.Zone("entry", ((0, 0), (640, 0), (640, 480), (0, 480))),)
    assert door.rules == (C.Rule("bare-at-door", 3.0, "entry", 30.0),)
    assert demo.source == str(tmp_path / "clip.mp4")  # a file beside the camera file
    assert (demo.detector, demo.detect_every, demo.zones, demo.rules) == (None, None, (), ())
    assert cfg.mqtt == C.Mqtt("127.0.0.1", 1883, "maskrec") and cfg.webhooks == (C.Webhook("http://127.0.0.1:9000/hook"),)
    assert (cfg.events_dir, cfg.blur_others, cfg.path) == ("ev", False, str(tmp_path / "cameras.toml"))


CAM = '[[cameras]]\nname = "a"\nsource = "x.mp4"\n'
ZONE = '[[cameras.zones]]\nname = "z"\npoints = [[0, 0], [10, 0], [0, 10]]\n'


@pytest.mark.parametrize("text, said", [
    ("x = ", "not valid TOML"),
    ("", "cameras: no [[cameras]] table"),
    ('[[cameras]]\nname = "a"\n', "camera 'a': source: missing (required)"),
    ('[[cameras]]\nsource = "x.mp4"\n', "cameras[0]: name: missing (required)"),
    ('[[cameras]]\nname = "a b"\nsource = "x.mp4"\n', "camera 'a b': name: 'a b' is not a camera name"),
    (CAM + CAM, "camera 'a': name: used by another camera too"),
    (CAM + "fps = 3\n", "camera 'a': fps: unknown key (allowed: name, source,"),
    ("[[camera]]\n", "camera: unknown key"),
    (CAM + "detect_every = 0\n", "camera 'a': detect_every: must be a whole number >= 1, not a number (0)"),
    (CAM + "detect_every = 1.5\n", "camera 'a': detect_every: must be a whole number >= 1"),
    (CAM + 'max_fps = "fast"\n', "camera 'a': max_fps: must be a number > 0, not a string ('fast')"),
    (CAM + 'detector = "yolo"\n', "camera 'a': detector: unknown detector 'yolo'"),
    ('[[cameras]]\nname = "a"\nsource = "ftp://u:s3cr3t-pw@h/x"\n', "camera 'a': source: 'ftp://***@h/x': the scheme"),
    (CAM + '[[cameras.zones]]\nname = "z"\npoints = [[0, 0], [1, 1]]\n',
     "camera 'a': zone 'z': points: a polygon needs at least 3 [x, y] points"),
    (CAM + '[[cameras.zones]]\nname = "z"\npoints = [[0, 0], [1, 1], [2]]\n', "zone 'z': points: each point must be [x, y]"),
    (CAM + ZONE + ZONE, "camera 'a': zones: two zones are named 'z'"),
    (CAM + ZONE + '[[cameras.rules]]\nname = "r"\nbare_for_s = 3\nzone = "hall"\n',
     "camera 'a': rule 'r': zone: no zone named 'hall' on this camera (it has: z)"),
    (CAM + '[[cameras.rules]]\nname = "r"\nbare_for_s = -1\n', "rule 'r': bare_for_s: must be a number >= 0"),
    (CAM + '[[cameras.rules]]\nname = "r"\n', "camera 'a': rules[0]: bare_for_s: missing (required)"),
    (CAM + '[mqtt]\nport = 70000\n', "[mqtt]: port: must be a whole number >= 1 and <= 65535"),
    (CAM + '[[webhooks]]\nurl = "ftp://h/x"\n', "webhooks[0]: url: must be an http:// or https:// URL"),
    (CAM + '[events]\nblur_others = "yes"\n', "[events]: blur_others: must be true or false"),
])
def test_camera_file_mistakes_said_clearly(tmp_path, text, said):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as e:
        C.load(path)
    assert str(e.value).startswith(f"{path}: ") and said in str(e.value), str(e.value)
    assert SECRET not in str(e.value)


def test_missing_camera_file(tmp_path):
    with pytest.raises(ValueError, match="no such camera file"):
        C.load(tmp_path / "nope.toml")


@pytest.mark.parametrize("source, seen", [
    ("rtsp://admin:s3cr3t-pw@10.0.0.5:554/stream", "rtsp://***@10.0.0.5:554/stream"),
    ("rtsp://admin@10.0.0.5/stream", "rtsp://***@10.0.0.5/stream"),
    ("http://cam/video.mjpg?user=admin&password=s3cr3t-pw&res=hd", "http://cam/video.mjpg?user=***&password=***&res=hd"),
    ("rtsp://10.0.0.5/stream", "rtsp://10.0.0.5/stream"),
    ("/videos/door.mp4", "/videos/door.mp4"),
])
def test_shown_source_hides_credentials(source, seen):
    assert C.Camera("a", source).shown_source == seen
    assert SECRET not in repr(C.Camera("a", source))
    assert C.scrub(f"Connection refused: '{source}'", source) == f"Connection refused: '{seen}'"
    assert SECRET not in C.scrub(f"error at {source.replace('s3cr3t-pw', 'other-s3cr3t-pw')}")


# ------------------------------------------------------------------------ sources, cameras, the hub

def until(what, timeout: float, every: float = 0.05):
    """Poll ``what()`` until it is truthy (its value) or ``timeout`` s pass (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(every)  # polling interval: what is waited on is what() itself
    return None


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    return clip(tmp_path_factory.mktemp("cameras") / "street.mp4")


@pytest.fixture(scope="module")
def models():
    """The server's own way to give cameras a recogniser: the shipped checkpoint, the live detector."""
    from maskrec.faces import LIVE_DEFAULT
    from maskrec.serve.cameras_api import models_of
    from maskrec.serve.model import ModelHolder
    from maskrec.serve.settings import Settings
    holder = ModelHolder(Settings(detector=LIVE_DEFAULT))
    holder.load()
    assert holder.ready, holder.failed
    return models_of(holder)


def hub_of(tmp_path, text: str, models, **kw):
    from maskrec.cameras.hub import Hub
    return Hub(C.load(write(tmp_path, text)), models, **kw)


@needs_ffmpeg
@pytest.mark.slow
def test_source_reads_rtsp_newest_frame_and_comes_back(movie, caplog):
    """The decoder alone: frames from an RTSP camera, each newer than the last taken; a drop said as
    'reconnecting'; back within 5 s of the camera's return; no credentials in any log line."""
    caplog.set_level(logging.INFO, logger="maskrec.cameras")
    with RtspCamera(movie, user="admin", password=SECRET) as cam:
        src = Source(cam.url)
        src.start()
        try:
            first = until(lambda: src.take(0), 15)
            assert first is not None, f"no frame: {src.state} {src.error}"
            assert first.rgb.shape == (480, 640, 3) and abs(time.time() - first.t) < 5
            later = until(lambda: src.take(first.seq), 5)
            assert later.seq > first.seq and later.t >= first.t
            assert src.take(src.decoded) is None  # nothing newer than the newest
            cam.stop()
            assert until(lambda: src.state == "reconnecting", 10), src.state
            assert until(lambda: src.error == "" or "refused" in src.error.lower(), 5)
            time.sleep(8)  # away this long, retries doubling without a cap would be 8 s apart by now
            cam.start()
            back = time.monotonic()
            seq = src.decoded
            assert until(lambda: src.take(seq), 5), f"not back within 5 s: {src.state} {src.error}"
            assert time.monotonic() - back < 5 and src.state == "live" and src.reconnects == 1
        finally:
            src.stop()
    assert src.state == "stopped"
    said = caplog.text
    assert "reconnecting" in said and "live" in said and SECRET not in said and "admin" not in said


@needs_ffmpeg
def test_source_reads_http_mjpeg(movie, tmp_path):
    """An HTTP MJPEG camera (multipart/x-mixed-replace, served by ffmpeg's own HTTP server)."""
    port = free_port()
    proc = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
                             "-i", str(movie), "-an", "-c:v", "mjpeg", "-q:v", "6", "-f", "mpjpeg", "-listen", "1",
                             f"http://127.0.0.1:{port}/cam.mjpg"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    src = Source(f"http://127.0.0.1:{port}/cam.mjpg")
    src.start()
    try:
        got = until(lambda: src.take(0), 15)
        assert got is not None, f"no frame: {src.state} {src.error}"
        assert got.rgb.shape == (480, 640, 3) and src.state == "live"
    finally:
        src.stop()
        proc.kill()
        proc.wait()


def test_source_missing_file_fails_for_good(tmp_path):
    src = Source(str(tmp_path / "gone.mp4"))
    src.start()
    assert until(lambda: src.state.startswith("failed"), 5), src.state
    assert src.state == f"failed: no such video file: {tmp_path / 'gone.mp4'}"
    src.stop()


@needs_ffmpeg
@pytest.mark.slow
def test_killed_stream_back_within_5s_other_camera_undisturbed(tmp_path, movie, models, caplog):
    """Issue 38's 'done when': camera a's stream killed and restarted is processed again within 5 s
    of its return; camera b, meanwhile, never stops; an unreachable camera and a missing file are
    their own states only; frames are dropped rather than queued, so the lag stays bounded."""
    caplog.set_level(logging.INFO, logger="maskrec.cameras")
    with RtspCamera(movie, user="admin", password=SECRET) as a, RtspCamera(movie) as b:
        text = (f'[[cameras]]\nname = "a"\nsource = "{a.url}"\n'
                f'[[cameras]]\nname = "b"\nsource = "{b.url}"\n'
                f'[[cameras]]\nname = "away"\nsource = "rtsp://admin:{SECRET}@127.0.0.1:{free_port()}/x"\n'
                f'[[cameras]]\nname = "gone"\nsource = "gone.mp4"\n'
                f'[[cameras]]\nname = "capped"\nsource = "{movie}"\nmax_fps = 3\n')
        hub = hub_of(tmp_path, text, models)
        frames = []
        hub.add_listener(frames.append)
        with hub:
            cam_a, cam_b = hub.camera("a"), hub.camera("b")
            assert until(lambda: cam_a.status().frames >= 10 and cam_b.status().frames >= 10, 60), hub.statuses()
            a.stop()
            assert until(lambda: cam_a.status().state == "reconnecting", 10)
            b_before = cam_b.status().frames
            time.sleep(5)  # a stays away (its back-off reaches its cap); b is watched meanwhile
            a.start()
            back = time.monotonic()
            a_seen = cam_a.status().frames
            assert until(lambda: cam_a.status().frames > a_seen, 5), f"a not back in 5 s: {cam_a.status()}"
            took = time.monotonic() - back
            sa, sb = cam_a.status(), cam_b.status()
            assert sa.state == "live" and sa.reconnects == 1, sa
            # b undisturbed: live all along, processing the whole time, never reconnected
            assert sb.state == "live" and sb.reconnects == 0 and sb.frames - b_before >= 5 * 5, (sb, b_before)
            assert sb.decoded > sb.frames or sb.fps > 10  # dropped, not queued (or kept up with 15 fps)
            assert sb.lag_p95_s is not None and sb.lag_p95_s < 2.0, sb
            away, gone = hub.camera("away").status(), hub.camera("gone").status()
            assert away.state == "connecting" and "refused" in away.error.lower(), away
            assert gone.state.startswith("failed: no such video file"), gone
            capped = hub.camera("capped").status()  # a looped file at 15 fps, processed 3 times a second at most
            assert capped.state == "live" and capped.frames > 0 and 0 < capped.fps <= 3.3, capped
            jpeg = cam_b.jpeg()
            assert jpeg[:3] == b"\xff\xd8\xff"
        print(f"camera a processed again {took:.2f} s after its stream came back")
    assert {f.camera for f in frames} == {"a", "b", "capped"} and all(len(f.seen) == len(f.result.faces) for f in frames)
    assert any(s.track for f in frames for s in f.seen)  # people followed, not only faces
    assert frames[-1].model.startswith("net2.pt@")
    for s in hub.statuses():
        assert s.state == "stopped" or s.state.startswith("failed")
        assert SECRET not in json.dumps(s.as_json())
    assert SECRET not in caplog.text


# ------------------------------------------------------------------------ serve --cameras

KEY = "camera-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.mark.slow  # 6 s: out of the quick subset, which stays under 90 s (issue 36)
def test_serve_refuses_a_malformed_camera_file(tmp_path):
    """Said in one line before it listens (exit 2), naming file, camera and key; nothing started."""
    path = write(tmp_path, CAM + "detect_every = 0\n")
    r = subprocess.run([sys.executable, "-m", "maskrec", "serve", "--port", str(free_port()), "--cameras", str(path)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert f"{path}: camera 'a': detect_every: must be a whole number >= 1" in r.stderr
    assert "Traceback" not in r.stderr and "Uvicorn running" not in r.stderr


def test_cameras_routes_without_cameras():
    """A server started without --cameras says so (404), with the API key rules of every /v1 route."""
    from fastapi.testclient import TestClient

    from maskrec.serve import Settings, create_app
    client = TestClient(create_app(Settings(api_key=KEY)))  # no `with`: no lifespan, no model loading
    assert client.get("/v1/cameras").status_code == 401
    r = client.get("/v1/cameras", headers=AUTH)
    assert r.status_code == 404 and r.json() == {"error": "no cameras: start the server with --cameras FILE"}


@needs_ffmpeg
@pytest.mark.slow
def test_serve_with_cameras_end_to_end(tmp_path, movie):
    """``python -m maskrec serve --cameras FILE``: states, figures, the latest frame, Prometheus
    series per camera; an unknown camera 404; the key asked; the credentials nowhere (API, metrics,
    OpenAPI, the server's log)."""
    with RtspCamera(movie, user="admin", password=SECRET) as door:
        path = write(tmp_path, f'[[cameras]]\nname = "door"\nsource = "{door.url}"\ndetect_every = 3\n'
                               f'[[cameras]]\nname = "loop"\nsource = "{movie}"\n'
                               f'[[cameras]]\nname = "away"\nsource = "rtsp://admin:{SECRET}@127.0.0.1:{free_port()}/x"\n')
        port, log = free_port(), tmp_path / "server.log"
        env = dict(os.environ, MASKREC_HOME=str(tmp_path / "home"), MASKREC_API_KEY=KEY)
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "maskrec", "serve", "--port", str(port),
                                     "--cameras", str(path)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            def live_both():
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    r = httpx.get(f"{url}/v1/cameras", headers=AUTH, timeout=5)
                except httpx.TransportError:
                    return None
                cams = {c["name"]: c for c in r.json()["cameras"]}
                return cams if all(cams[n]["frames"] >= 5 for n in ("door", "loop")) else None
            cams = until(live_both, 240, every=0.2)
            assert cams, log.read_text()[-3000:]
            door_s = cams["door"]
            assert door_s["state"] == "live" and door_s["source"] == door.url.replace(f"admin:{SECRET}", "***")
            assert door_s["detect_every"] == 3 and door_s["detector"] == "retinaface-fast"
            assert door_s["fps"] > 0 and 0 <= door_s["lag_p50_s"] <= door_s["lag_p95_s"] < 5
            assert door_s["people"] >= 1 and 0 <= door_s["masked_share"] <= 1 and door_s["model"].startswith("net2.pt@")
            assert cams["away"]["state"] == "connecting" and "refused" in cams["away"]["error"].lower()
            one = httpx.get(f"{url}/v1/cameras/door", headers=AUTH).json()
            assert one["name"] == "door" and one["frames"] >= door_s["frames"]
            r = httpx.get(f"{url}/v1/cameras/door/frame.jpg", headers=AUTH)
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:3] == b"\xff\xd8\xff"
            from PIL import Image
            import io
            assert Image.open(io.BytesIO(r.content)).size == (640, 480)
            r = httpx.get(f"{url}/v1/cameras/away/frame.jpg", headers=AUTH)
            assert r.status_code == 404 and "no processed frame yet" in r.json()["error"]
            r = httpx.get(f"{url}/v1/cameras/hall", headers=AUTH)
            assert r.status_code == 404 and r.json()["error"] == "no camera named 'hall'; the cameras are: door, loop, away"
            assert httpx.get(f"{url}/v1/cameras").status_code == 401
            assert httpx.get(f"{url}/v1/cameras/door/frame.jpg").status_code == 401
            metrics = httpx.get(f"{url}/metrics", headers=AUTH).text
            from tests.test_serve import counter
            assert counter(metrics, "maskrec_camera_up", camera="door") == 1
            assert counter(metrics, "maskrec_camera_up", camera="away") == 0
            assert counter(metrics, "maskrec_camera_fps", camera="loop") > 0
            assert counter(metrics, "maskrec_camera_frames_total", camera="door") >= 5
            assert 0 < counter(metrics, "maskrec_camera_lag_seconds", camera="door", quantile="0.95") < 5
            assert counter(metrics, "maskrec_camera_reconnects_total", camera="door") == 0
            said = [json.dumps(httpx.get(f"{url}{p}", headers=AUTH).json()) for p in ("/v1/cameras", "/openapi.json")]
            assert not any(SECRET in s or "admin" in s for s in [*said, metrics])
        finally:
            end_process(proc)
    text = log.read_text()
    assert "rtsp://***@127.0.0.1" in text and SECRET not in text, text[-3000:]
    # a graceful stop, the cameras with it (uvicorn then ends by the SIGTERM it caught: -15)
    assert "cameras stopped" in text and "Application shutdown complete" in text, text[-3000:]


@needs_ffmpeg
@pytest.mark.slow
def test_bench_cameras_runs(tmp_path):
    """bench/cameras.py end to end on one camera for a few seconds (a smoke run, not a timing)."""
    out = tmp_path / "b.json"
    r = subprocess.run([sys.executable, "bench/cameras.py", "--cameras", "1", "--seconds", "4", "--sample-s", "1",
                        "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(out.read_text())
    (row,) = got["per_camera"]
    assert row["camera"] == "cam0" and row["frames"] > 0 and row["state"] == "live" and got["cpu"] in r.stdout
    assert len(got["samples"]) >= 3 and got["server"]["rss_mb_last"] > 0


def test_tracker_forgets_the_oldest_ended_tracks():
    """A camera's tracker keeps at most KEEP_ENDED people who left: memory flat over weeks."""
    from maskrec.live.track import Tracker
    tr = Tracker(0.5, min_hits=1, max_age_s=0.5)
    for i in range(6):  # six people, one after another, each seen for two frames then gone
        x = 100 * i
        tr.update(2.0 * i, [(x, 0, x + 50, 50, 0.9)], [0.9])
        tr.update(2.0 * i + 0.1, [(x, 0, x + 50, 50, 0.9)], [0.9])
    tr.update(20.0, [], [])
    assert len(tr.tracks()) == 6
    tr.forget_ended(2)
    assert [r.track for r in tr.tracks()] == [5, 6]
