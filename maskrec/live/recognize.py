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

The live stream's channel to its page is ``maskrec.live.channel`` (``LiveBuffer``), the
detect-every-k schedule it shares with ``video`` is ``maskrec.live.schedule``, following faces is
``maskrec.live.track``; ``maskrec.live.gradcam`` shows which pixels of a face crop drove the decision.

Measuring the pipeline on annotated scenes is ``evaluation.scenes`` (outside the product); the live stream's WebRTC
settings are ``maskrec.live.webrtc``; a crop as a data: URL for a page is ``data.data_url``.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from maskrec import faces as F
from maskrec.faces import tags as T
from maskrec.faces import MARGIN  # the crop margin (measured in faces.boxes), shared with scene crops
from maskrec.infer.predictor import TTA, Predictor
from maskrec.infer.operating import UNSURE, OperatingPoint
from maskrec.live.track import Seen

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
