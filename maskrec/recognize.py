"""Recognition: find every face in a frame, classify all of them in one batch, draw the result.

    rec = Recognizer.load("checkpoints/net1.pt", detector="blazeface-tiles")
    res = rec.recognize(rgb)                      # FrameResult: faces + timings
    for f in res.faces:
        print(f.box, f.label, f.p_mask)
    shown, res = rec.annotate(rgb)                # the same, plus boxes drawn (draw_ms filled in)

A ``Recognizer`` builds its detector and its ``Predictor`` once; call it per frame. It is safe to
share between threads (a Streamlit page and webcam workers): a lock serialises frames, because a
detector keeps buffers between calls. Crops go through the checkpoint's own preprocessing
(``Predictor`` -> ``data.to_input``) and operating point (``rec.op``: threshold and unsure band;
``rec.op.name`` says which), unless a threshold is passed (a plain cut, no band).

``LiveBuffer`` hands the newest result of a webcam worker thread to the page that polls it, and
counts frames per second; it also follows the faces of the stream (``maskrec.track``) for the
page's unique-people counts and its rolling per-second chart. ``maskrec.gradcam`` shows which pixels of a face crop drove the decision.

Measuring the pipeline on annotated scenes is ``evaluation.scenes`` (outside the product); the live stream's WebRTC
settings are ``maskrec.webrtc``; a crop as a data: URL for a page is ``data.data_url``.
"""
from __future__ import annotations

import copy
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from . import faces as F
from .faces import tags as T
from .faces import MARGIN  # the crop margin (measured in faces.boxes), shared with scene crops
from .inference import TTA, Predictor
from .operating import UNSURE, OperatingPoint
from .track import START_SCORE, Seen, Timeline, Tracker, look, min_hits_for

GREEN, RED, AMBER = (40, 200, 60), (230, 40, 40), (245, 160, 0)  # RGB; amber: unsure


class Face(NamedTuple):
    box: F.Box                         # detector box, pixels, exclusive x1/y1
    crop: tuple[int, int, int, int]    # the box grown by the margin: what the classifier saw
    label: str                         # "mask" / "no_mask" / "unsure" (inside the operating point's band)
    p_mask: float


class Timings(NamedTuple):
    detect_ms: float
    classify_ms: float
    draw_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.classify_ms + self.draw_ms


@dataclass(frozen=True)
class FrameResult:
    faces: tuple[Face, ...]
    timings: Timings
    shape: tuple[int, int]  # (H, W) of the frame

    def as_json(self) -> list[dict]:
        """The CLI's per-face records: box, label, p_mask."""
        return [{"box": [int(v) for v in f.box[:4]], "label": f.label, "p_mask": round(f.p_mask, 4)}
                for f in self.faces]


class Recognizer:
    """One detector + one classifier. ``threshold`` None uses the checkpoint's saved one."""

    def __init__(self, predictor: Predictor, detector: F.Detector, margin: float = MARGIN,
                 threshold: float | None = None, torch_threads: int | None = None):
        self.predictor = predictor
        self.detector = detector
        self.margin = margin
        self.op = predictor.op if threshold is None else OperatingPoint("custom", float(threshold))
        self.threshold = self.op.threshold
        # Threads for the classifier; None lets engines.threads_for decide by the batch and the
        # idle cores: a frame's few faces get one, so training beside the live page keeps its cores.
        self.torch_threads = torch_threads
        self._lock = threading.Lock()

    @classmethod
    def load(cls, checkpoint: str | Path, detector: str = F.DEFAULT, margin: float = MARGIN,
             threshold: float | None = None, device: str = "cpu", engine: str | None = None,
             tta: bool = TTA, **detector_kw) -> "Recognizer":
        """tta: classify each face with its mirror image too (``Predictor``; off by default, see ``TTA``)."""
        return cls(Predictor.load(checkpoint, device, engine, tta), F.make_detector(detector, **detector_kw),
                   margin, threshold)

    def at(self, point: "OperatingPoint | str | float | None") -> "Recognizer":
        """This recognizer labelling at another operating point (a name the checkpoint carries, an
        OperatingPoint, a plain threshold; None: the predictor's). It shares the predictor, the
        detector and the lock (the detector's buffers stay serialised)."""
        if point is None:
            op = self.predictor.op
        elif isinstance(point, OperatingPoint):
            op = point
        elif isinstance(point, str):
            if point not in self.predictor.operating_points:
                raise ValueError(f"the checkpoint has no operating point {point!r}; it has: "
                                 f"{', '.join(self.predictor.operating_points)}")
            op = self.predictor.operating_points[point]
        else:
            op = OperatingPoint("custom", float(point))
        other = copy.copy(self)
        other.op, other.threshold = op, op.threshold
        return other

    def recognize(self, rgb: np.ndarray, threshold: float | None = None) -> FrameResult:
        """(H, W, 3) uint8 RGB -> every face found, classified in one batch."""
        rgb = F.as_rgb(rgb)
        op = self.op if threshold is None else OperatingPoint("custom", float(threshold))
        with self._lock, torch.inference_mode():
            t0 = time.perf_counter()
            dets = self.detector.detect(rgb)
            t1 = time.perf_counter()
            # A box that misses the frame (say on a 1x1 or 2x2 frame) clips to an empty crop: it
            # is no face, rather than an error from resizing nothing.
            boxes, crops = [], []
            for b in dets:
                c = F.crop_box(b, rgb.shape, self.margin)
                if c[2] > c[0] and c[3] > c[1]:
                    boxes.append(b)
                    crops.append(c)
            p = np.zeros(0, np.float32)
            if crops:
                faces = [rgb[y0:y1, x0:x1] for x0, y0, x1, y1 in crops]
                p = (self.predictor.predict_proba(faces) if self.torch_threads is None
                     else self.predictor.predict_proba(faces, threads=self.torch_threads))
            labels = op.labels(p, self.predictor.classes)
            t2 = time.perf_counter()
        found = tuple(Face(b, c, lab, float(v)) for b, c, lab, v in zip(boxes, crops, labels, p))
        return FrameResult(found, Timings(1000 * (t1 - t0), 1000 * (t2 - t1)), rgb.shape[:2])

    def annotate(self, rgb: np.ndarray, threshold: float | None = None,
                 min_side: int = 0) -> tuple[np.ndarray, FrameResult]:
        """``recognize`` then ``draw``; the result's timings include the drawing."""
        res = self.recognize(rgb, threshold)
        t = time.perf_counter()
        out = draw(rgb, res, covered=self.predictor.classes[1], min_side=min_side)
        return out, replace(res, timings=res.timings._replace(draw_ms=1000 * (time.perf_counter() - t)))


TAG_SHARE = 48  # a tag is 1/48 of the frame's width tall: the same share of a photo wherever the page shrinks it


def draw(rgb: np.ndarray, result: FrameResult, covered: str = "mask", min_side: int = 0,
         tags: list[str] | None = None, short: list[str] | None = None, text_px: float | None = None) -> np.ndarray:
    """A copy of the frame with each face boxed: green when ``covered``, red otherwise, and a
    "mask 0.97" tag (P(mask) whatever the label, so one number reads the same on every box).

    min_side: first enlarge a frame whose shorter side is smaller (0 keeps the frame's size, as a
    webcam wants). tags: one text per face instead of the default tag (``draw_tracked``: "#3 mask
    0.97"); short: a shorter one per face (its number), used where the tag would cover another.
    text_px: the tags' height in the drawn frame's pixels; None: 1/``TAG_SHARE`` of its width.
    """
    import cv2  # deferred: drawing and crops pay its import, not every importer of recognize
    rgb = F.as_rgb(rgb)
    h, w = rgb.shape[:2]
    k = min_side / min(h, w) if min_side and min(h, w) < min_side else 1.0
    if k > 1:
        out = cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_LINEAR)
        h, w = out.shape[:2]
    else:
        out = np.array(rgb, copy=True)
    thick = max(1, round(min(h, w) / 320))
    text_px = text_px or max(10.0, w / TAG_SHARE)
    texts = tags if tags is not None else [f"{f.label.replace('_', ' ')} {f.p_mask:.2f}" for f in result.faces]
    boxes = [tuple(v * k for v in f.box[:4]) for f in result.faces]
    texts, rects, (scale, weight) = T.layout(texts, boxes, out.shape, text_px, short)  # apart where there is room
    for f, text, (tx0, ty0, tx1, ty1) in zip(result.faces, texts, rects):
        color = GREEN if f.label == covered else AMBER if f.label == UNSURE else RED
        x0, y0, x1, y1 = (round(v * k) for v in f.box[:4])
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), color, thick)
        if not text:  # a short tag of nothing: the box alone
            continue
        cv2.rectangle(out, (tx0, ty0), (tx1 - 1, ty1 - 1), color, -1)
        base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)[1]
        cv2.putText(out, text, (tx0 + 2, ty1 - base - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    weight, cv2.LINE_AA)
    return out


def draw_tracked(rgb: np.ndarray, result: FrameResult, seen: list[Seen], covered: str = "mask") -> np.ndarray:
    """``draw`` with each face's track: its colour from the track's running label, and a
    "#3 mask 0.97" tag (id and the track's P(mask) so far; just "#3" where it would cover another
    tag); a face not yet confirmed as a track keeps its own label and has no id (nor a short tag)."""
    faces = tuple(f._replace(label=s.label, p_mask=s.p_mask) for f, s in zip(result.faces, seen))
    tags = [f"{'#%d ' % s.track if s.track else ''}{s.label.replace('_', ' ')} {s.p_mask:.2f}" for s in seen]
    short = [f"#{s.track}" if s.track else "" for s in seen]
    return draw(rgb, replace(result, faces=faces), covered, tags=tags, short=short)


def face_crops(rgb: np.ndarray, result: FrameResult, side: int | None = None) -> list[np.ndarray]:
    """The pixels the classifier saw for each face (optionally squashed to ``side`` px)."""
    import cv2  # deferred: drawing and crops pay its import, not every importer of recognize
    out = []
    for f in result.faces:
        x0, y0, x1, y1 = f.crop
        c = rgb[y0:y1, x0:x1]
        out.append(cv2.resize(c, (side, side), interpolation=cv2.INTER_AREA) if side else c.copy())
    return out


def carried(tracker: Tracker, t: float, shape, threshold: float, margin: float = MARGIN,
            tentative: bool = False) -> tuple[FrameResult, list[Seen]]:
    """A frame not run through the detector: each confirmed track (``tentative``: and each face not
    yet confirmed) at the box it predicts for ``t`` (``Tracker.carry``, clipped to the frame; a box
    predicted off the frame is left out), with its running label, as a FrameResult with no detect or
    classify time and one Seen per face."""
    h, w = shape[:2]
    faces, seen = [], []
    for s in tracker.carry(t, threshold, tentative):
        x0, y0, x1, y1, score = s.box
        box = F.Box(int(max(0, round(x0))), int(max(0, round(y0))), int(min(w, round(x1))), int(min(h, round(y1))),
                    float(score))
        if box.x1 - box.x0 < 2 or box.y1 - box.y0 < 2:  # predicted off the frame
            continue
        faces.append(Face(box, F.crop_box(box, shape, margin), s.label, s.p_mask))
        seen.append(s._replace(box=tuple(box)))
    return FrameResult(tuple(faces), Timings(0.0, 0.0), (h, w)), seen


# --------------------------------------------------------------------------- live (worker -> page)

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
        if every < 1:
            raise ValueError(f"detect every {every} frames: it must be 1 or more")
        self.every = int(every)
        self._since: int | None = None  # frames since the last detection frame (None: none yet)
        self._detected = 0  # faces on the latest detection frame: steady while carried frames come and go
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
            self._since, self._detected = 0, len(result.faces)
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
            return self._tracker is None or self._since is None or self._since + 1 >= self.every

    def carry(self, shape, threshold: float, margin: float = MARGIN,
              now: float | None = None) -> tuple[FrameResult, list[Seen]]:
        """A frame between detections (``due`` said no): the tracked people at their predicted boxes."""
        now = time.time() if now is None else now
        with self._lock:
            if self._tracker is None:
                raise RuntimeError("carry before the first tracked frame: ask due() first")
            self._since = (self._since or 0) + 1
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
                               self._frames, (w, h), {k: v[1] for k, v in self._thumbs.items()}, self.every)


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
