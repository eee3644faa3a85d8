"""One camera: its source, its people followed as ``video`` follows them, its state and figures.

    cam = Camera(config.Camera("door", "rtsp://..."), models)   # models(detector) -> (Recognizer, "net2.pt@street") | None
    cam.start()                        # the source's decoder thread
    cam.step()                         # on a processing thread (``Workers``): the newest frame, if new
    cam.status()                       # CameraStatus: state, people now, masked share, FPS, lag p50/p95, ...
    cam.jpeg()                         # the latest processed frame, annotated, as JPEG (drawn when asked)

**Processing** is ``video.follow.Follower`` as a video run does it: the one detect-every-k
``live.schedule``, the tracker and its vote, with no scene-cut detection (a camera is one shot).
Each frame's time is its capture time (epoch seconds), so the tracker's velocities and its
``max_age_s`` are in real seconds whatever frames were dropped. After each frame the camera's
listeners get a ``CameraFrame`` (the event engine is one).

**Threads.** A camera has no processing thread of its own: ``Workers`` (a few threads for all the
cameras of a hub) take, in turn, the camera with a new frame whose turn came longest ago, and
process its newest frame. All cameras share one ``Recognizer`` per detector, which runs one frame
at a time, so a thread per camera would only add threads queueing on its lock (docs/serve.md,
Cameras: measured).

**Figures.** FPS is frames processed per second over the last ``WINDOW_S``; lag is capture to
result (the frame's time out of the decoder to the end of its tracking) over the same window; people
now: the faces of the latest frame that are confirmed people (tracks), and the masked share among
them whose running vote says mask.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from typing import Callable, NamedTuple

import numpy as np

from maskrec.cameras.config import Camera as CameraConfig
from maskrec.cameras.config import scrub
from maskrec.cameras.frame import CameraFrame
from maskrec.cameras.source import Source
from maskrec.faces import LIVE_DEFAULT, make_detector
from maskrec.live.recognize import Recognizer, draw_tracked
from maskrec.live.track import tracker_for
from maskrec.video.follow import DETECT_EVERY, Follower

log = logging.getLogger("maskrec.cameras")

WINDOW_S = 10.0     # FPS and lag over the last this many seconds
JPEG_QUALITY = 80
KEEP_ENDED = 1000   # people who left that a camera's tracker remembers (~0.5 KB each), the oldest forgotten
Models = Callable[[str], "tuple[Recognizer, str] | None"]  # detector -> (recogniser, model label); None: not loaded yet
Listener = Callable[[CameraFrame], None]


class CameraStatus(NamedTuple):
    name: str
    source: str             # shown_source: no credentials
    state: str              # "connecting" / "live" / "reconnecting" / "stopped" / "failed: <why>"
    error: str              # why the last connection failed or dropped ("" while live)
    people: int             # confirmed people in the latest frame
    masked: int             # ... of whom voted mask
    masked_share: float | None  # masked / people (None: nobody there)
    fps: float              # frames processed per second, last WINDOW_S
    lag_p50_s: float | None  # capture to result, last WINDOW_S
    lag_p95_s: float | None
    reconnects: int
    frames: int             # frames processed since the start
    decoded: int            # frames decoded since the start (processed + dropped)
    detector: str
    detect_every: int
    model: str              # the checkpoint and operating point of the latest frame ("" before one)
    last_frame_at: float | None  # epoch seconds of the latest processed frame's capture

    def as_json(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self._asdict().items()}


class Camera:
    def __init__(self, config: CameraConfig, models: Models, listeners: list[Listener] = (),
                 notify: Callable[[], None] | None = None, **source_kw):
        self.config, self.name, self.models = config, config.name, models
        self.detector = config.detector or LIVE_DEFAULT
        self.every = config.detect_every or DETECT_EVERY
        self.listeners = list(listeners)
        self.source = Source(config.source, notify, **source_kw)
        self.busy = threading.Lock()      # held by the worker processing this camera
        self.turn = 0.0                   # monotonic time a worker last took it (Workers: least recent first)
        self._lock = threading.Lock()     # the figures and the latest frame
        self._follow: Follower | None = None
        self._rec: Recognizer | None = None   # the shared recogniser the tracker was made for
        self._using: Recognizer | None = None  # the one this frame runs on (the shared one or a worker's copy)
        self._seq = 0                     # the source's seq of the latest frame processed
        self._frames = 0
        self._done: deque[tuple[float, float]] = deque()  # (monotonic time done, lag s), last WINDOW_S
        self._latest = None               # (rgb, result, seen, covered) of the latest frame
        self._jpeg: tuple[int, bytes] | None = None  # (frame number, JPEG) drawn last
        self._people = (0, 0)
        self._model = ""
        self._last_t: float | None = None
        self._next_at = 0.0               # max_fps: monotonic time the next frame may be processed

    def start(self) -> None:
        self.source.start()

    def halt(self) -> None:
        """Ask the source to stop (returns at once; ``stop`` waits for it)."""
        self.source.halt()

    def stop(self) -> None:
        self.source.stop()

    def waiting_since(self) -> float | None:
        """Capture time of a frame not yet processed (None: nothing new, or max_fps says not yet)."""
        newest = self.source.newest()
        if newest is None or newest[0] <= self._seq or time.monotonic() < self._next_at:
            return None
        return newest[1]

    def step(self, local: Callable[[Recognizer], Recognizer] | None = None) -> bool:
        """Process the newest frame if there is a new one (the caller holds ``busy``). True if it did.
        ``local``: the recogniser to use instead of the shared one (``Workers``: a worker's own copy)."""
        got = self.source.take(self._seq)
        if got is None:
            return False
        found = self.models(self.detector)
        if found is None:  # the model is still loading: the frame is dropped, as any overtaken frame is
            self._seq = got.seq
            return False
        rec, model = found
        if rec is not self._rec:  # the first frame, or another model swapped in: a fresh tracker
            self._rec = rec
            self._follow = Follower(lambda rgb, thr: self._using.recognize(rgb, thr),
                                    tracker_for(rec, every=self.every), rec.threshold, self.every)
        self._using = local(rec) if local else rec
        res, seen, _detected = self._follow.frame(got.t, got.rgb)
        self._follow.tracker.forget_ended(KEEP_ENDED)  # memory stays flat however many people pass
        self._seq = got.seq
        covered = rec.predictor.classes[1]
        people = [s for s in seen if s.track]
        done = time.monotonic()
        lag = time.time() - got.t
        if self.config.max_fps:
            self._next_at = done + 1.0 / self.config.max_fps
        with self._lock:
            self._frames += 1
            n = self._frames
            self._done.append((done, lag))
            while self._done and self._done[0][0] < done - WINDOW_S:
                self._done.popleft()
            self._latest = (got.rgb, res, seen, covered)
            self._people = (len(people), sum(s.label == covered for s in people))
            self._model, self._last_t = model, got.t
        frame = CameraFrame(self.name, got.t, got.rgb, res, seen, self._follow.tracker, model, n)
        for listener in self.listeners:
            try:
                listener(frame)
            except Exception:  # noqa: BLE001 - a listener's failure never stops the camera
                log.error("%s: a listener failed: %s", self.name, scrub(traceback.format_exc(), self.config.source))
        return True

    def status(self) -> CameraStatus:
        src = self.source
        with self._lock:
            now = time.monotonic()
            done = [d for d in self._done if d[0] >= now - WINDOW_S]
            frames, (people, masked), model, last_t = self._frames, self._people, self._model, self._last_t
        fps = 0.0
        if len(done) >= 2:
            fps = (len(done) - 1) / max(done[-1][0] - done[0][0], 1e-6)
        lags = np.array([d[1] for d in done])
        p50, p95 = (float(np.percentile(lags, 50)), float(np.percentile(lags, 95))) if len(lags) else (None, None)
        state = src.state
        return CameraStatus(self.name, self.config.shown_source, state, src.error if state != "live" else "",
                            people, masked, masked / people if people else None, fps, p50, p95, src.reconnects,
                            frames, src.decoded, self.detector, self.every, model, last_t)

    def jpeg(self) -> bytes | None:
        """The latest processed frame with its people boxed (``draw_tracked``), as JPEG; None before
        the first. Drawn and encoded when asked, once per frame: a camera nobody watches costs nothing."""
        with self._lock:
            latest, n, cached = self._latest, self._frames, self._jpeg
        if latest is None:
            return None
        if cached is not None and cached[0] == n:
            return cached[1]
        import cv2  # deferred: only a page or a client asking for a picture pays its import
        rgb, res, seen, covered = latest
        shown = draw_tracked(rgb, res, seen, covered)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(shown[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        data = buf.tobytes()
        with self._lock:
            self._jpeg = (n, data)
        return data


def own_copy(rec: Recognizer) -> Recognizer:
    """A recogniser of its own for one worker: the same predictor and operating point, its own
    detector (and so its own lock): two workers detect at once instead of queueing."""
    return Recognizer(rec.predictor, make_detector(rec.detector.name), rec.margin).at(rec.op)


class Workers:
    """``n`` threads processing ``cameras``: each takes the camera with a new frame whose turn came
    longest ago, processes its newest frame (``Camera.step``), and sleeps on a condition the sources
    wake when no camera has a new frame. ``own``: each worker detects with its own copy of the shared
    recogniser (``own_copy``) rather than queueing on the shared one's lock."""

    def __init__(self, cameras: list[Camera], n: int = 1, own: bool = False):
        self.cameras, self.n, self.own = cameras, max(1, n), own
        self.wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def notify(self) -> None:
        with self.wake:
            self.wake.notify()

    def start(self) -> None:
        for i in range(self.n):
            t = threading.Thread(target=self._run, name=f"camera-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        with self.wake:
            self.wake.notify_all()
        for t in self._threads:
            t.join(30)

    def _pick(self) -> Camera | None:
        # the camera whose turn came longest ago, among those with a new frame: each gets an equal
        # share (oldest-frame-first would favour a camera whose decoder is late and starve the punctual)
        waiting = [c for c in self.cameras if not c.busy.locked() and c.waiting_since() is not None]
        for cam in sorted(waiting, key=lambda c: c.turn):
            if cam.busy.acquire(blocking=False):
                cam.turn = time.monotonic()
                return cam
        return None

    def _run(self) -> None:
        mine: dict[int, tuple[Recognizer, Recognizer]] = {}  # id(shared) -> (shared, this worker's copy)

        def local(rec: Recognizer) -> Recognizer:
            got = mine.get(id(rec))
            if got is None or got[0] is not rec:
                got = mine[id(rec)] = (rec, own_copy(rec))
            return got[1]

        while not self._stop.is_set():
            with self.wake:  # picked under the lock: a frame arriving meanwhile waits to notify, never missed
                cam = self._pick()
                if cam is None:
                    # 50 ms at most: a max_fps pause ends without a new frame to wake it
                    self.wake.wait(0.05)
                    continue
            try:
                cam.step(local if self.own else None)
            except Exception:  # noqa: BLE001 - one camera's failure is said, the others go on
                log.error("%s: a frame failed: %s", cam.name, scrub(traceback.format_exc(), cam.config.source))
            finally:
                cam.busy.release()
