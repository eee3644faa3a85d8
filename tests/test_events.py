"""Events (maskrec/cameras/events.py, sinks.py): rules over CameraFrames -> events.jsonl, evidence,
webhooks and MQTT, with real parts: a Mosquitto broker started here on a free port of 127.0.0.1,
a webhook receiver (``http.server`` on a thread), and frames labelled by the real recognizer
(``retinaface-fast`` + net2) on a scene of the demo generator's faces: a bare face on the left,
a masked one in the middle, another bare face on the right, moving 2 px a frame. Recognition
runs once per distinct frame (module fixture); each test replays those results through a fresh
``Tracker`` at the capture times it needs, as a camera would hand them over.
"""
from __future__ import annotations

import contextlib
import json
import queue
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskrec.cameras.config import Camera, CamerasConfig, Mqtt, Rule, Webhook, Zone
from maskrec.cameras.events import EVENTS, STATES, Events, inside, iso
from maskrec.cameras.frame import CameraFrame
from maskrec.cameras.sinks import MqttSink, WebhookSink, shown_url
from maskrec.config import DEFAULT_CHECKPOINT
from maskrec.core.process import end_process
from maskrec.data import synth
from maskrec.live.recognize import Recognizer
from maskrec.live.track import tracker_for

FACES = ((8, 10), (37, 230), (0, 450))  # (demo face index, x): bare, masked, bare (checked in `clip`)
SIDE, FPS = 180, 10.0
LEFT = Zone("left", ((0, 0), (320, 0), (320, 480), (0, 480)))


def scene_frame(k: int, faces=FACES) -> np.ndarray:
    """The demo generator's faces on a grey street, shifted 2k px."""
    c = Image.new("RGB", (640, 480), (200, 200, 200))
    for idx, x in faces:
        face, _ = synth.render(idx, seed=0)
        c.paste(face.resize((SIDE, SIDE)), (x + 2 * k - 5, 150))
    return np.asarray(c)


def labelled_clip(rec, faces, labels):
    """Frames of ``scene_frame`` on which the recognizer finds every face with the label the demo
    generator drew (it misses a masked cartoon on some shifts), and its results: at least 4 of 12."""
    frames, results = [], []
    for k in range(12):
        f = scene_frame(k, faces)
        r = rec.recognize(f)
        if [g.label for g in sorted(r.faces, key=lambda g: g.box[0])] == labels:
            frames.append(f)
            results.append(r)
    assert len(frames) >= 4, f"the recognizer labelled {len(frames)} of 12 frames as drawn"
    return frames, results


@pytest.fixture(scope="module")
def rec():
    return Recognizer.load(DEFAULT_CHECKPOINT, detector="retinaface-fast", engine="torch")


@pytest.fixture(scope="module")
def clip(rec):
    """Frames and the recognizer's result on each: three faces, left to right bare, mask, bare."""
    return labelled_clip(rec, FACES, ["no_mask", "mask", "no_mask"])


def camera_frames(rec, clip, seconds: float, camera="door", model="net2.pt@street", t0=1_000_000.0, tracker=None):
    """The clip looped for ``seconds`` at FPS through one tracker: the CameraFrames a camera would hand over."""
    frames, results = clip
    tracker = tracker or tracker_for(rec)
    for k in range(int(seconds * FPS)):
        t = t0 + k / FPS
        res = results[k % len(results)]
        seen = tracker.update(t, [f.box for f in res.faces], [f.p_mask for f in res.faces])
        yield CameraFrame(camera, t, frames[k % len(frames)], res, seen, tracker, model, k + 1)


def config(rules=(Rule("bare", 1.0),), zones=(), **kw) -> CamerasConfig:
    return CamerasConfig(cameras=(Camera("door", "clip.mp4", zones=zones, rules=tuple(rules)),), **kw)


def records(folder: Path, name=EVENTS) -> list[dict]:
    p = folder / name
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def wait_for(cond, timeout=20.0, what="the condition"):
    """Poll ``cond`` (a check of state another thread changes) until true; fail after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# ------------------------------------------------------------------------ real parts: broker, receiver

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_exe() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")
                                              if Path(p).exists()), None)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """Mosquitto on 127.0.0.1:<free port>, anonymous, no persistence; (host, port)."""
    exe = mosquitto_exe()
    if exe is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto; .ci/run installs it)")
    d = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    (d / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    log = open(d / "log.txt", "w")
    p = subprocess.Popen([exe, "-c", str(d / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT)

    def up():
        assert p.poll() is None, (d / "log.txt").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_for(up, 10, "mosquitto to listen")
    yield "127.0.0.1", port
    end_process(p, 10)
    log.close()


class Subscriber:
    """A paho client subscribed to ``topic`` (ready when constructed), keeping every (topic, json, retain)."""

    def __init__(self, host, port, topic="maskrec/#"):
        import paho.mqtt.client as mqtt
        self.got: list = []
        self.cond = threading.Condition()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(10), "the subscriber could not subscribe"

    def _on_message(self, _c, _u, m):
        with self.cond:
            self.got.append((m.topic, json.loads(m.payload), m.retain))
            self.cond.notify_all()

    def take(self, n, timeout=20.0, topic_end="/event") -> list:
        """The messages on topics ending ``topic_end`` once there are ``n`` (or all there are after ``timeout``)."""
        def matching():
            return [m for m in self.got if m[0].endswith(topic_end)]
        with self.cond:
            self.cond.wait_for(lambda: len(matching()) >= n, timeout)
            return matching()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POSTed JSON; ``mode`` "ok", "500" or "hang"."""

    def __init__(self, mode="ok"):
        self.posts: queue.Queue = queue.Queue()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.mode == "hang":
                    outer.release.wait(30)
                    return
                outer.posts.put(json.loads(body))
                self.send_response(500 if outer.mode == "500" else 200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.mode = mode
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


# ------------------------------------------------------------------------ the rules

def test_inside_a_polygon():
    square = LEFT.points
    assert inside((100, 100), square) and not inside((400, 100), square)
    tri = ((0, 0), (100, 0), (0, 100))
    assert inside((10, 10), tri) and not inside((90, 90), tri)


@pytest.mark.slow  # 4 s: out of the quick subset, which stays under 90 s (issue 36)
def test_a_person_bare_for_n_seconds_raises_one_event_with_evidence_to_disk_webhook_and_mqtt(
        rec, clip, broker, receiver, tmp_path):
    """The issue's end-to-end check on the engine: one bare person, one masked -> exactly one event in
    events.jsonl, one webhook POST, one MQTT message, the evidence file; the delay after its N s."""
    clip1 = labelled_clip(rec, FACES[:2], ["no_mask", "mask"])
    sub = Subscriber(*broker)
    cfg = config([Rule("bare-3s", 3.0)], mqtt=Mqtt(*broker, prefix="maskrec"), webhooks=(Webhook(receiver.url),))
    ev = Events(cfg, tmp_path).start()
    try:
        for f in camera_frames(rec, clip1, 8.0):
            ev.on_frame(f)
        assert ev.drain()
        got = records(tmp_path)
        assert len(got) == 1, got
        e = got[0]
        assert e["camera"] == "door" and e["rule"] == "bare-3s" and e["track"] > 0 and e["model"] == "net2.pt@street"
        assert e["t"] - e["bare_since"] >= 3.0 and e["t"] - e["bare_since"] < 3.0 + 1.5 / FPS
        assert e["box"][0] < 320  # the bare face is the left one
        ev_img = Image.open(tmp_path / e["evidence"])
        assert ev_img.format == "JPEG" and ev_img.size == (640, 480)
        thumb = Image.open(tmp_path / e["thumbnail"])
        assert thumb.format == "JPEG" and max(thumb.size) <= 112
        post = receiver.posts.get(timeout=20)
        assert post == e
        msgs = sub.take(1)
        assert [(m[0], m[1]) for m in msgs] == [("maskrec/door/event", e)]
        states = sub.take(2, topic_end="/state")  # at 0 s (nobody confirmed yet) and 5 s (both people)
        assert [(m[1]["people"], m[1]["masked"], m[1]["bare"]) for m in states] == [(0, 0, 0), (2, 1, 1)]
        assert states[1][1]["masked_share"] == 0.5 and states[1][0] == "maskrec/door/state"
        # the state at 5 s was sent after the event: had a second event been sent, it would be here by now
        assert receiver.posts.empty() and len(sub.take(1)) == 1  # exactly one of each
        print(f"event delay after its {e['bare_for_s']} s: {e['delay_s']} s (frames at {FPS:g} fps, replayed)")
    finally:
        ev.stop()
        sub.close()


def test_zones_and_cooldown_give_one_event_per_person_per_rule(rec, clip, tmp_path):
    cfg = config([Rule("anywhere", 1.0, cooldown_s=5.0), Rule("left-door", 1.0, zone="left", cooldown_s=60.0)],
                 zones=(LEFT,))
    ev = Events(cfg, tmp_path, sinks=[]).start()
    try:
        for f in camera_frames(rec, clip, 8.0):
            ev.on_frame(f)
        assert ev.drain()
    finally:
        ev.stop()
    got = records(tmp_path)
    anywhere = [e for e in got if e["rule"] == "anywhere"]
    left = [e for e in got if e["rule"] == "left-door"]
    # two bare people, each at ~1 s and again after the 5 s cooldown (~6 s); the masked one never
    assert sorted(e["track"] for e in anywhere) == sorted(2 * sorted({e["track"] for e in anywhere}))
    assert len({e["track"] for e in anywhere}) == 2 and len(anywhere) == 4
    for tr in {e["track"] for e in anywhere}:
        a, b = sorted(e["t"] for e in anywhere if e["track"] == tr)
        assert b - a >= 5.0
    # the zone rule: only the person whose face centre is in the left half, once
    assert len(left) == 1 and left[0]["zone"] == "left" and left[0]["box"][2] < 320


def test_a_model_swap_is_recorded_and_a_new_tracker_starts_afresh(rec, clip, tmp_path):
    ev = Events(config([Rule("bare", 1.0, cooldown_s=600)]), tmp_path, sinks=[]).start()
    try:
        for f in camera_frames(rec, clip, 2.0, model="net2.pt@street"):
            ev.on_frame(f)
        # another model: the camera starts a new tracker; its ids restart, so the cooldown of the old ids is void
        for f in camera_frames(rec, clip, 2.0, model="net1.pt@default", t0=1_000_010.0):
            ev.on_frame(f)
        assert ev.drain()
    finally:
        ev.stop()
    got = records(tmp_path)
    assert [e["model"] for e in got] == 2 * ["net2.pt@street"] + 2 * ["net1.pt@default"]


def test_evidence_blurs_the_other_faces_by_option(rec, clip, tmp_path):
    import cv2
    frames, results = clip

    def sharpness(img, box):
        x0, y0, x1, y1 = (int(v) for v in box[:4])
        return cv2.Laplacian(cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    for blur in (True, False):
        d = tmp_path / str(blur)
        ev = Events(config([Rule("bare", 1.0, zone="left")], zones=(LEFT,), blur_others=blur), d, sinks=[]).start()
        try:
            for f in camera_frames(rec, clip, 1.5):
                ev.on_frame(f)
            assert ev.drain()
        finally:
            ev.stop()
        (e,) = records(d)
        img = np.asarray(Image.open(d / e["evidence"]).convert("RGB"))
        frame = frames[round((e["t"] - 1_000_000.0) * FPS) % len(frames)]
        res = results[round((e["t"] - 1_000_000.0) * FPS) % len(results)]
        others = [f.box for f in res.faces if f.box[0] > 200]
        assert len(others) == 2
        for b in others:
            ratio = sharpness(img, b) / sharpness(frame, b)
            assert (ratio < 0.25) if blur else (ratio > 0.5), (blur, ratio)
        target = next(f.box for f in res.faces if f.box[0] < 200)
        inner = (target[0] + 8, target[1] + 8, target[2] - 8, target[3] - 8)  # inside the drawn box
        assert sharpness(img, inner) / sharpness(frame, inner) > 0.5


def test_a_full_writer_queue_drops_and_counts_and_never_blocks_a_camera(rec, clip, tmp_path):
    cfg = config([Rule(f"r{i}", 0.0, cooldown_s=0.0) for i in range(5)])
    ev = Events(cfg, tmp_path, queue_size=3, sinks=[])  # the writer not started: nothing drains the queue
    frames = list(camera_frames(rec, clip, 1.0))
    t = time.perf_counter()
    for f in frames:
        ev.on_frame(f)
    per_frame = (time.perf_counter() - t) / len(frames)
    c = ev.counts()
    # the first frame's state record took one slot, two events the others; every later one was dropped
    assert c["raised"] > 10 and c["queued"] == 3 and c["dropped"] == c["raised"] + 1 - 3
    assert per_frame < 0.05, per_frame  # a put_nowait, never a wait for the writer
    ev.start()
    assert ev.drain()
    ev.stop()
    assert len(records(tmp_path)) == 2 and len(records(tmp_path, STATES)) == 1


# ------------------------------------------------------------------------ bad sinks

@pytest.mark.slow  # 3 s: out of the quick subset, which stays under 90 s (issue 36)
def test_a_hanging_webhook_stalls_nothing_else_and_says_it_timed_out(rec, clip, broker, receiver, tmp_path):
    hanging = Receiver("hang")
    sub = Subscriber(*broker)
    slow = WebhookSink(hanging.url, queue_size=2, timeout_s=0.5, retries=1, backoff_s=0.1)
    good = WebhookSink(receiver.url)
    mq = MqttSink(Mqtt(*broker))
    cfg = config([Rule("bare", 1.0, cooldown_s=1.0)])
    ev = Events(cfg, tmp_path, sinks=[slow, good, mq]).start()
    try:
        t = time.perf_counter()
        for f in camera_frames(rec, clip, 4.0):
            ev.on_frame(f)
        assert time.perf_counter() - t < 2.0  # the camera's side never waited on a sink
        assert ev.drain()
        n = len(records(tmp_path))
        assert n >= 4
        got = [receiver.posts.get(timeout=20) for _ in range(n)]
        assert {g["id"] for g in got} == {e["id"] for e in records(tmp_path)}
        assert len(sub.take(n)) == n
        st = wait_for(lambda: (s := slow.status())["failed"] >= 1 and s, 20, "the hanging hook to time out")
        assert st["last_error"] == "timed out" and st["dropped"] >= 1 and st["sent"] == 0
        assert good.status()["sent"] == n and good.status()["failed"] == 0
    finally:
        ev.stop(timeout=2)
        hanging.close()
        sub.close()


def test_a_webhook_answering_500_is_retried_with_back_off_then_counted(receiver, tmp_path):
    receiver.mode = "500"
    s = WebhookSink(receiver.url, timeout_s=2, retries=2, backoff_s=0.2)
    s.start()
    try:
        t = time.perf_counter()
        s.send_event({"id": "x", "camera": "door"})
        posts = [receiver.posts.get(timeout=10) for _ in range(3)]
        st = wait_for(lambda: (v := s.status())["failed"] == 1 and v, 10, "the failure to be counted")
        assert [p["id"] for p in posts] == ["x"] * 3 and st["last_error"].startswith("HTTP 500")
        assert time.perf_counter() - t >= 0.2 + 0.4  # back-off between tries
    finally:
        s.stop()


def test_an_unreachable_broker_is_said_and_the_rest_goes_on(rec, clip, receiver, tmp_path):
    dead = Mqtt("127.0.0.1", free_port())
    cfg = config([Rule("bare", 1.0)], mqtt=dead, webhooks=(Webhook(receiver.url),))
    ev = Events(cfg, tmp_path).start()
    try:
        for f in camera_frames(rec, clip, 2.0):
            ev.on_frame(f)
        assert ev.drain()
        assert len(records(tmp_path)) == 2
        assert len([receiver.posts.get(timeout=20) for _ in range(2)]) == 2
        mq = next(s for s in ev.sinks if s.kind == "mqtt")
        st = wait_for(lambda: (v := mq.status())["last_error"] and v, 20, "the broker's failure to be said")
        assert not st["connected"] and "cannot connect to the MQTT broker at 127.0.0.1:" in st["last_error"]
        assert ev.status()["sinks"][-1]["connected"] is False
    finally:
        ev.stop(timeout=2)


def test_urls_lose_their_credentials_when_shown():
    assert shown_url("http://user:secret@hooks.example:8080/a/b?token=t0k") == "http://hooks.example:8080/a/b"


# ------------------------------------------------------------------------ serve --cameras, two machines

def camera_file(path: Path, camera: str, clip_path: Path, broker, hook: str) -> Path:
    path.write_text(f'[mqtt]\nhost = "{broker[0]}"\nport = {broker[1]}\nprefix = "maskrec"\n'
                    f'[[webhooks]]\nurl = "{hook}"\n'
                    f'[[cameras]]\nname = "{camera}"\nsource = "{clip_path}"\n'
                    f'[[cameras.rules]]\nname = "bare-3s"\nbare_for_s = 3.0\ncooldown_s = 600.0\n')
    return path


class Serve:
    """``python -m maskrec serve --cameras FILE`` in a subprocess, its own MASKREC_HOME and port."""

    def __init__(self, folder: Path, cameras: Path):
        import os
        import sys
        from tests.conftest import REPO
        self.home, self.port, self.log = folder / "home", free_port(), folder / "server.log"
        env = dict(os.environ, MASKREC_HOME=str(self.home))
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "maskrec", "serve", "--port", str(self.port),
                                          "--engine", "torch", "--cameras", str(cameras)],
                                         cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        import httpx2 as httpx
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self):
        end_process(self.proc)


def sse_events(url: str, got: list, subscribed: threading.Event, stop: threading.Event) -> None:
    """Read a server-sent-events stream on a thread: each ``data:`` line's JSON into ``got``."""
    import httpx2 as httpx
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=None)) as r:
            for line in r.iter_lines():
                if line.startswith(": maskrec events"):
                    subscribed.set()
                elif line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                if stop.is_set():
                    return
    except httpx.TransportError:  # the server stopped at the test's end
        pass


@pytest.mark.slow
def test_two_serve_processes_publish_their_cameras_events_to_one_broker_and_a_model_swap_is_recorded(
        broker, receiver, tmp_path):
    """Items 3, 5 and 6 end to end: two ``serve --cameras`` processes (door on one, hall on the other)
    reading a clip of one known bare person (looped file) -> exactly one event each in its
    events.jsonl, one webhook POST each, one MQTT message each in one subscriber, the evidence over
    HTTP, the event on the stream; then POST /v1/model on one: its camera runs on, and its next event
    (a new tracker: a new person) records the new model."""
    import httpx2 as httpx
    from tests.rtsp_server import clip as make_clip
    movie = make_clip(tmp_path / "one-bare.mp4", seconds=3.0, fps=15, size=(720, 540), faces=((8, 10), (37, 230)))
    sub = Subscriber(*broker)
    servers = {}
    try:
        for cam in ("door", "hall"):
            (tmp_path / cam).mkdir()
            servers[cam] = Serve(tmp_path / cam, camera_file(tmp_path / cam / "cameras.toml", cam, movie, broker,
                                                             receiver.url))
        door, hall = servers["door"], servers["hall"]
        wait_for(door.ready, 240, "the door server's model")
        got, subscribed, stop = [], threading.Event(), threading.Event()
        threading.Thread(target=sse_events, args=(f"{door.url}/v1/events/stream", got, subscribed, stop),
                         daemon=True).start()
        assert subscribed.wait(20), "the stream did not open"
        wait_for(hall.ready, 240, "the hall server's model")
        msgs = sub.take(2, timeout=240)
        assert sorted(m[0] for m in msgs) == ["maskrec/door/event", "maskrec/hall/event"], door.log.read_text()[-3000:]
        by_cam = {m[1]["camera"]: m[1] for m in msgs}
        for cam, e in by_cam.items():
            (rec,) = records(servers[cam].home / "events")  # exactly one on its own disk
            assert rec == e and e["model"] == "net2.pt@street" and e["rule"] == "bare-3s"
            assert (servers[cam].home / "events" / e["evidence"]).is_file()
            print(f"{cam}: event {e['id']} raised {e['delay_s']} s after its {e['bare_for_s']} s")
        posts = [receiver.posts.get(timeout=20) for _ in range(2)]
        assert sorted(p["camera"] for p in posts) == ["door", "hall"]
        listed = httpx.get(f"{door.url}/v1/events", params={"camera": "door"}).json()
        assert listed["total"] == 1 and listed["events"][0] == by_cam["door"]
        r = httpx.get(f"{door.url}/v1/events/{by_cam['door']['id']}/evidence.jpg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert Image.open(__import__("io").BytesIO(r.content)).size == (720, 540)
        wait_for(lambda: got, 20, "the event on the stream")
        assert got == [by_cam["door"]]

        # item 5: another checkpoint and operating point on hall while its camera runs
        frames_before = httpx.get(f"{hall.url}/v1/cameras/hall").json()["frames"]
        bad = httpx.post(f"{hall.url}/v1/model", json={"checkpoint": "checkpoints/nothing.pt"})
        assert bad.status_code == 400 and bad.json() == {"error": "no such checkpoint: checkpoints/nothing.pt"}
        bad = httpx.post(f"{hall.url}/v1/model", json={"operating_point": "dusk"})
        assert bad.status_code == 400 and "no operating point 'dusk'" in bad.json()["error"]
        r = httpx.post(f"{hall.url}/v1/model", json={"checkpoint": "checkpoints/net1.pt", "operating_point": "crops"},
                       timeout=120)
        assert r.status_code == 200 and r.json()["model"] == "net1.pt@crops", r.text
        assert httpx.get(f"{hall.url}/readyz").json()["model"] == "net1.pt@crops"
        later = sub.take(3, timeout=120)
        assert len(later) == 3, hall.log.read_text()[-3000:]
        new = later[2][1]
        # a fresh tracker's run (its ids restart, so the id may be the same): the 600 s cooldown would refuse the old one
        assert new["camera"] == "hall" and new["model"] == "net1.pt@crops" and new["bare_since"] > by_cam["hall"]["t"]
        assert httpx.get(f"{hall.url}/v1/cameras/hall").json()["frames"] > frames_before
        assert len(records(door.home / "events")) == 1  # the other process: untouched, still one event
        metrics = httpx.get(f"{hall.url}/metrics").text
        from tests.test_serve import counter
        assert counter(metrics, "maskrec_events_total", camera="hall", rule="bare-3s") == 2
        stop.set()
    finally:
        for s in servers.values():
            s.stop()
        sub.close()


# ------------------------------------------------------------------------ the HTTP API in process

@pytest.fixture(scope="module")
def loaded_holder():
    from maskrec.serve import ModelHolder, Settings
    holder = ModelHolder(Settings(engine="torch", detector="retinaface-fast"))
    holder.load()
    assert holder.ready, holder.failed
    return holder


def test_the_events_api_lists_filters_pages_and_serves_evidence(rec, clip, loaded_holder, tmp_path):
    from fastapi.testclient import TestClient
    from maskrec.serve import Settings, create_app
    from maskrec.serve.events_api import NO_EVENTS, Broadcast
    app = create_app(Settings(engine="torch"), loaded_holder)
    with TestClient(app) as client:
        r = client.get("/v1/events")
        assert r.status_code == 404 and r.json() == {"error": NO_EVENTS}
        cfg = CamerasConfig(cameras=(Camera("door", "a.mp4", rules=(Rule("bare", 1.0, cooldown_s=2.0),)),
                                     Camera("hall", "b.mp4", rules=(Rule("bare", 1.0, cooldown_s=600.0),))))
        ev = Events(cfg, tmp_path, sinks=[]).start()
        app.state.events, app.state.broadcast = ev, Broadcast()
        for cam, t0 in (("door", 1_000_000.0), ("hall", 1_000_100.0)):
            for f in camera_frames(rec, clip, 4.0, camera=cam, t0=t0):
                ev.on_frame(f)
        assert ev.drain()
        ev.stop()
        every = records(tmp_path)
        door = [e for e in every if e["camera"] == "door"]
        assert len(door) == 4 and len(every) == 6  # door: two people at 1 s and 3 s; hall: two, once
        r = client.get("/v1/events", params={"camera": "door", "limit": 3}).json()
        assert r["total"] == 4 and [e["id"] for e in r["events"]] == [e["id"] for e in sorted(door, key=lambda e: -e["t"])][:3]
        assert r["next_offset"] == 3
        r2 = client.get("/v1/events", params={"camera": "door", "limit": 3, "offset": 3}).json()
        assert len(r2["events"]) == 1 and r2["next_offset"] is None
        times = sorted({e["t"] for e in every})
        cut = times[len(times) // 2]
        after = sum(e["t"] >= cut for e in every)
        assert 0 < after < 6
        assert client.get("/v1/events", params={"since": iso(cut)}).json()["total"] == after
        assert client.get("/v1/events", params={"until": str(cut)}).json()["total"] == 6 - after
        assert client.get("/v1/events", params={"rule": "other"}).json()["total"] == 0
        r = client.get("/v1/events", params={"since": "yesterday"})
        assert r.status_code == 400 and "neither epoch seconds nor ISO 8601" in r.json()["error"]
        e = door[0]
        r = client.get(f"/v1/events/{e['id']}/evidence.jpg")
        assert r.status_code == 200 and r.content == (tmp_path / e["evidence"]).read_bytes()
        assert client.get(f"/v1/events/{e['id']}/thumbnail.jpg").content == (tmp_path / e["thumbnail"]).read_bytes()
        for bad in ("nothing", "..%2F..%2Fevents", "a.b"):
            assert client.get(f"/v1/events/{bad}/evidence.jpg").status_code == 404
        states = client.get("/v1/states", params={"camera": "hall"}).json()["states"]
        assert [s["camera"] for s in states] == ["hall"] and states[0]["people"] == 0
        st = client.get("/v1/events/status").json()
        assert st["written"] == 6 and st["dropped"] == 0 and st["sinks"] == []
        # a client reconnecting with the last id it saw gets what was written after it, in order
        with served(app) as url:
            assert sse_replay(url, every[2]["id"], 3) == [e["id"] for e in every[3:]]
            later_at_door = [e["id"] for e in every[3:] if e["camera"] == "door"]
            assert later_at_door and sse_replay(url, every[2]["id"], len(later_at_door), camera="door") == later_at_door
            assert sse_replay(url, "no-such-id", 0) == []  # and a comment says why nothing came


@contextlib.contextmanager
def served(app):
    """The app on a real uvicorn server in a thread (TestClient never tells a stream its client left)."""
    import uvicorn
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        wait_for(lambda: server.started, 20, "uvicorn to listen")
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        t.join(20)


def sse_replay(url: str, last_id: str, n: int, camera: str | None = None) -> list[str]:
    """The ids of the first ``n`` events the stream sends to a client that says ``Last-Event-ID``
    (the comment lines checked: a replay of nothing says so)."""
    import httpx2 as httpx
    ids, comments = [], []
    params = {"camera": camera} if camera else {}
    with httpx.stream("GET", f"{url}/v1/events/stream", headers={"Last-Event-ID": last_id}, params=params,
                      timeout=httpx.Timeout(5, read=20)) as r:
        for line in r.iter_lines():
            if line.startswith("id: "):
                ids.append(line[4:])
            elif line.startswith(": "):
                comments.append(line)
            if len(ids) == n and (n or len(comments) == 2):
                break
    if not n:
        assert comments[1] == f": {last_id} is not among the events kept: nothing to replay", comments
    return ids


def test_post_model_swaps_checkpoint_or_operating_point_and_refuses_clearly(loaded_holder):
    from fastapi.testclient import TestClient
    from maskrec.serve import Settings, create_app
    app = create_app(Settings(engine="torch", detector="retinaface-fast"), loaded_holder)
    with TestClient(app) as client:
        assert client.get("/readyz").json()["model"] == "net2.pt@street"
        r = client.post("/v1/model", json={"operating_point": "crops"})
        assert r.status_code == 200 and r.json()["model"] == "net2.pt@crops"
        assert client.get("/readyz").json()["model"] == "net2.pt@crops"
        r = client.post("/v1/model", json={})
        assert r.status_code == 400 and r.json() == {"error": "name a checkpoint, an operating point, or both"}
        r = client.post("/v1/model", json={"operating_point": "dusk"})
        assert r.status_code == 400 and "no operating point 'dusk'" in r.json()["error"]
        r = client.post("/v1/model", json={"checkpoint": "README.md"})
        assert r.status_code == 400 and "README.md is not a readable checkpoint" in r.json()["error"]
        assert client.get("/readyz").json()["model"] == "net2.pt@crops"  # a failed swap keeps the model
        r = client.post("/v1/model", json={"checkpoint": "checkpoints/net1.pt"})
        assert r.status_code == 200 and r.json()["model"] == "net1.pt@street" and r.json()["net"] == "net1"


def test_what_is_kept_of_people_gone_is_forgotten(rec, clip, tmp_path):
    """A camera runs for weeks: the engine's memory of each person (bare-run start, last event, last
    seen) goes once no rule could use it, as the tracker forgets its ended tracks."""
    ev = Events(config([Rule("bare", 1.0, cooldown_s=60.0)]), tmp_path, sinks=[]).start()
    try:
        frames = list(camera_frames(rec, clip, 3.0))
        for f in frames:
            ev.on_frame(f)
        cam = next(iter(ev._cams.values()))
        assert cam.last_seen and cam.last_event  # people were followed, and an event raised
        later = frames[-1]._replace(t=frames[-1].t + 61.0 + 5.0, seen=[])  # past the cooldown, a state tick
        ev.on_frame(later)
        assert cam.last_seen == {} and cam.since == {} and cam.last_event == {}
        assert ev.drain()
    finally:
        ev.stop()
