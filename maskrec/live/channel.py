"""The live stream's worker-to-page channel: a webcam worker thread puts its newest result in a
``LiveBuffer`` and the page's polling fragment takes a snapshot; ``frame_callback`` is the
streamlit-webrtc callback that runs the recogniser, the detect-every-k ``Schedule`` and the tracker
on each frame. The worker never calls Streamlit.
"""
from __future__ import annotations

import copy
import threading
import time
from collections import deque
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from maskrec.faces import MARGIN
from maskrec.live.recognize import FrameResult, Recognizer, Timings, draw_tracked, face_crops
from maskrec.live.schedule import Schedule, carried
from maskrec.live.track import START_SCORE, Seen, Timeline, Tracker, look, min_hits_for

# The live stream runs the detector on one frame in this many, as a video run does
# (``video.follow.DETECT_EVERY``): the tracker carries each person's box and label between.
LIVE_DETECT_EVERY = 2

class LiveStats(NamedTuple):
    """What the page reads from a ``LiveBuffer``: a copy, safe to use without the lock."""
    result: FrameResult | None       # the newest frame's faces
    crops: tuple[np.ndarray, ...]    # its face crops, one per face
    fps: float                       # frames processed per second, recent window
    mean: Timings | None             # mean per-frame latency over the same window
    frames: int                      # frames processed since the buffer was made
    error: str                       # the last frame's error, "" when it went through
    people: dict | None = None       # unique people followed so far: Tracker.counts()
    timeline: tuple = ()             # (epoch second, with mask, without) over the last history_s
    detected: int = 0                # faces the detector found on its latest frame (carried frames drop the weak ones)


class LiveSession(NamedTuple):
    """What the stream followed so far, for a report (``video.session_result``): copies, safe
    to read without the buffer's lock."""
    tracker: Tracker
    timeline: Timeline               # per epoch second, the last SESSION_S of the session
    start: float                     # wall-clock time of the first frame tracked
    end: float                       # and of the latest
    frames: int
    size: tuple[int, int]            # (W, H) of the latest frame
    thumbs: dict                     # track id -> its largest face crop so far (RGB uint8)
    every: int = 1                   # the detector ran on one frame in this many
    with_faces: int = 0              # detection frames that found a face
    most_faces: int = 0              # the most faces one of them found


THUMB_SIDE = 64       # px, at most: a session report's thumbnails
SESSION_S = 4 * 3600  # per-second counts a session report can chart: ~0.6 KB a second, at most ~9 MB


class LiveBuffer:
    """The newest result of a webcam worker thread, for a page that polls it.

    The worker (streamlit-webrtc's frame callback) must never call Streamlit; it ``put``s typed
    results here under a lock and the page's polling fragment takes a ``snapshot``. Only the
    newest frame matters for display, so there is no queue to drain. FPS is frames processed per
    second over the last ``window`` frames, and 0 once no frame came for ``stale_s``.

    ``track`` follows the stream's faces (one ``Tracker`` per buffer, so per browser tab, and
    it outlives the page's reruns, which rebuild the frame callback): unique people so far and
    per-second counts over the last ``history_s`` seconds come with each snapshot; ``session``
    copies the whole session so far (with each person's largest face crop) for a report.

    ``every``: the detector runs on one frame in this many (``due`` says which); ``carry`` draws the
    frames between from the tracker (no scene cuts here: a camera is one continuous shot).
    """

    def __init__(self, window: int = 30, stale_s: float = 2.0, history_s: int = 60, every: int = LIVE_DETECT_EVERY):
        self._schedule = Schedule(every)  # raises on every < 1
        self.every = self._schedule.every
        self._detected = 0  # faces on the latest detection frame: steady while carried frames come and go
        self._with_faces, self._most_faces = 0, 0  # detection frames with a face; the most in one
        self._lock = threading.Lock()
        self._times: deque[float] = deque(maxlen=window)
        self._timings: deque[Timings] = deque(maxlen=window)
        self._stale_s = stale_s
        self._result: FrameResult | None = None
        self._crops: tuple[np.ndarray, ...] = ()
        self._frames = 0
        self._error = ""
        self._history_s = history_s
        self._tracker: Tracker | None = None
        self._timeline: Timeline | None = None
        self._session: Timeline | None = None      # the report's: longer than the page's chart
        self._span: tuple[float, float] = (0.0, 0.0)
        self._thumbs: dict[int, tuple[int, np.ndarray]] = {}  # track -> (crop area px, crop)

    def track(self, result: FrameResult, threshold: float, classes=("no_mask", "mask"),
              now: float | None = None, detector: str = "", crops=(), band=None) -> list[Seen]:
        """Follow ``result``'s faces: one ``Seen`` per face (track id, running label; band: the
        operating point's unsure band, whose frames are no vote).
        detector: its registry name, for the score a face needs to start a track. crops: the faces'
        crops, kept for a report with the update that may make a face a person (a report taken
        between the two would list a person without a face), and their looks re-identify a person
        lost for a moment (``track.look``)."""
        now = time.time() if now is None else now
        with self._lock:
            self._schedule.detected()
            self._detected = len(result.faces)
            if result.faces:
                self._with_faces += 1
                self._most_faces = max(self._most_faces, len(result.faces))
            if self._tracker is None:
                self._tracker = Tracker(threshold, classes, min_hits=min_hits_for(self.every),
                                        new_score=START_SCORE.get(detector, 0.0), band=band)
                self._timeline = Timeline(classes[1], keep=self._history_s)
                self._session = Timeline(classes[1], keep=SESSION_S)
                self._span = (now, now)
            # wall-clock seconds: the live chart's axis is the time of day; the tracker only needs
            # them to grow (a clock stepped back would at worst end tracks early)
            # each face's look: a person lost for a moment and back elsewhere keeps their id (track.py)
            looks = [look(c) for c in crops] if len(crops) == len(result.faces) else None
            seen = self._tracker.update(now, [f.box for f in result.faces], [f.p_mask for f in result.faces],
                                        threshold, looks)
            self._keep_thumbs(result, crops, seen)
            self._note(now, seen)
            return seen

    def due(self) -> bool:
        """Whether the next frame goes through the detector: the first one, and one in ``every``."""
        with self._lock:
            return self._tracker is None or self._schedule.due()

    def carry(self, shape, threshold: float, margin: float = MARGIN,
              now: float | None = None) -> tuple[FrameResult, list[Seen]]:
        """A frame between detections (``due`` said no): the tracked people at their predicted boxes."""
        now = time.time() if now is None else now
        with self._lock:
            if self._tracker is None:
                raise RuntimeError("carry before the first tracked frame: ask due() first")
            self._schedule.carried()
            # the faces not yet a person too: drawn on detection frames only, they blinked
            res, seen = carried(self._tracker, now, shape, threshold, margin, tentative=True)
            self._note(now, seen)
            return res, seen

    def _note(self, now: float, seen: list[Seen]) -> None:  # under the lock
        self._timeline.add(int(now), seen)
        self._session.add(int(now), seen)
        self._span = (self._span[0], now)

    def put(self, result: FrameResult, crops=(), seen: list[Seen] = ()) -> None:
        """``seen``: the faces' ``track`` result, to keep each person's largest crop for a report."""
        with self._lock:
            self._keep_thumbs(result, crops, seen)
            self._times.append(time.monotonic())
            self._timings.append(result.timings)
            self._result, self._crops = result, tuple(crops)
            self._frames += 1
            self._error = ""

    def _keep_thumbs(self, result: FrameResult, crops, seen) -> None:  # under the lock
        for f, c, s in zip(result.faces, crops, seen):
            area = (f.crop[2] - f.crop[0]) * (f.crop[3] - f.crop[1])
            if s.track and area > self._thumbs.get(s.track, (0, None))[0]:
                k = -(-max(c.shape[:2]) // THUMB_SIDE)  # every k-th pixel: ~7 KB a person, not 27
                self._thumbs[s.track] = (area, np.ascontiguousarray(c[::k, ::k]))

    def fail(self, error: str) -> None:
        with self._lock:
            self._error = error

    def snapshot(self) -> LiveStats:
        with self._lock:
            times, timings = list(self._times), list(self._timings)
            res, crops, n, err = self._result, self._crops, self._frames, self._error
            # untracked, every frame is a detection frame
            found = self._detected if self._tracker is not None else len(res.faces) if res is not None else 0
            people = self._tracker.counts() if self._tracker else None
            since = int(time.time()) - self._history_s + 1
            timeline = tuple(self._timeline.rows(since)) if self._timeline else ()
        fps = 0.0
        if len(times) >= 2 and time.monotonic() - times[-1] < self._stale_s:
            fps = (len(times) - 1) / max(times[-1] - times[0], 1e-6)
        mean = Timings(*np.mean(np.array(timings), axis=0).tolist()) if timings else None
        return LiveStats(res, crops, fps, mean, n, err, people, timeline, found)

    def session(self) -> LiveSession | None:
        """The session so far, copied (None before the first tracked frame)."""
        with self._lock:
            if self._tracker is None:
                return None
            h, w = self._result.shape if self._result is not None else (0, 0)
            return LiveSession(copy.deepcopy(self._tracker), copy.deepcopy(self._session), *self._span,
                               self._frames, (w, h), {k: v[1] for k, v in self._thumbs.items()}, self.every,
                               self._with_faces, self._most_faces)


def frame_callback(rec: Recognizer, buffer: LiveBuffer, threshold: float | None = None,
                   crop_side: int = 96, track: bool = True):
    """A streamlit-webrtc ``video_frame_callback``: av.VideoFrame in, annotated frame out.

    Runs on the WebRTC worker thread: no Streamlit calls, results go to ``buffer``. An error is
    recorded there (the page shows it) and the frame passes through unchanged. ``track``: follow
    faces through ``buffer.track`` and draw track ids and voted labels (the draw time includes it),
    running the detector on one frame in ``buffer.every`` (``buffer.carry`` between); without
    ``track`` every frame is detected and classified.
    """
    import av  # deferred: PyAV is needed by the live stream only

    def callback(frame: "av.VideoFrame") -> "av.VideoFrame":
        try:
            rgb = frame.to_ndarray(format="rgb24")
            seen, crops = (), None  # crops: cut before track() on detection frames, else after the draw time
            if track:
                thr = rec.threshold if threshold is None else threshold
                if buffer.due():
                    res = rec.recognize(rgb, threshold)
                    crops = face_crops(rgb, res, crop_side)
                    t = time.perf_counter()
                    seen = buffer.track(res, thr, rec.predictor.classes, detector=getattr(rec.detector, "name", ""),
                                        crops=crops, band=rec.op.band if threshold is None else None)
                else:
                    t = time.perf_counter()
                    res, seen = buffer.carry(rgb.shape, thr, rec.margin)
                shown = draw_tracked(rgb, res, seen, rec.predictor.classes[1])
                res = replace(res, timings=res.timings._replace(draw_ms=1000 * (time.perf_counter() - t)))
            else:
                shown, res = rec.annotate(rgb, threshold)
            buffer.put(res, face_crops(rgb, res, crop_side) if crops is None else crops, seen)
            # streamlit-webrtc copies pts/time_base from the input frame onto what we return
            return av.VideoFrame.from_ndarray(shown, format="rgb24")
        except Exception as e:  # noqa: BLE001 - shown on the page instead of killing the stream
            buffer.fail(f"{type(e).__name__}: {e}")
            return frame
    return callback
