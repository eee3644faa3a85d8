"""Boxes and their maths: the Box every detector returns, crops, IoU and NMS on torchvision.ops.

Coordinates are pixels with exclusive ``x1, y1``, so ``rgb[y0:y1, x0:x1]`` is the box. IoU and
plain NMS are ``torchvision.ops``; only MediaPipe's weighted NMS and the dropping of boxes inside a
bigger one (``drop_inside``), which torchvision lacks, are written here (on torchvision's IoU
matrix and box areas).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

# Crop margin, a share of the box size on each side, that the Recognizer grows a detector's box by
# before classifying it, and that scene crops are cut with (so training sees what recognition shows).
# Label accuracy of net1.pt on the 256 matched dev-scene faces >= 32 px by margin: 0.0 0.926,
# 0.1 0.938, 0.15 0.938, 0.2-0.3 0.930, 0.4 0.922.
MARGIN = 0.15


class Box(NamedTuple):
    x0: int
    y0: int
    x1: int
    y1: int
    score: float


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
    # deferred: torch and torchvision take seconds to import; ``python -m maskrec --help``, the
    # registry listing and VOC reading must not pay that, only code that measures boxes
    import torch
    import torchvision.ops
    return torch, torchvision.ops


def _xyxy(boxes):
    """(N, 4) float32 tensor of a list of (x0, y0, x1, y1, ...) boxes or an (N, >=4) array."""
    torch, _ = _ops()
    return torch.as_tensor(np.array([tuple(b[:4]) for b in boxes], np.float32).reshape(-1, 4))


def iou_matrix(a, b) -> np.ndarray:
    """(N, M) IoU of two lists of (x0, y0, x1, y1, ...) pixel boxes (``torchvision.ops.box_iou``);
    0 where a box is empty."""
    torch, ops = _ops()
    return torch.nan_to_num(ops.box_iou(_xyxy(a), _xyxy(b)), nan=0.0).numpy()


def inside_matrix(a, b) -> np.ndarray:
    """(N, M) share of the area of each box of ``a`` that lies inside each box of ``b``; 0 where
    the ``a`` box is empty. The intersection comes from torchvision's IoU and areas: with IoU u,
    areas A and B, the intersection is u (A + B) / (1 + u)."""
    torch, ops = _ops()
    ta, tb = _xyxy(a), _xyxy(b)
    u = torch.nan_to_num(ops.box_iou(ta, tb), nan=0.0)
    area_a = ops.box_area(ta)
    inter = u * (area_a[:, None] + ops.box_area(tb)[None, :]) / (1 + u)
    # float rounding of that formula may pass 1 by an ulp
    return torch.nan_to_num(inter / area_a[:, None], nan=0.0, posinf=0.0).clamp(0.0, 1.0).numpy()


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1, ...) boxes; 0 when either is empty."""
    return float(iou_matrix([tuple(a[:4])], [tuple(b[:4])])[0, 0])


# The share of a box's area inside a bigger box from which it is dropped (``drop_inside``). Faces
# do not sit inside faces: 1 of the 1,366 annotated faces of the validation scenes lies 0.5 or more
# inside a bigger one (2 of 1,250 in test), while RetinaFace on a face several times larger than
# its 512 px anchors boxes its eyes, mouth or forehead. 0.5 to 0.8 scored the same there.
INSIDE = 0.65


def drop_inside(boxes, share: float = INSIDE) -> np.ndarray:
    """Indices, in order, of the (x0, y0, x1, y1, ...) boxes to keep: each box whose area lies
    ``share`` or more inside a bigger box is dropped, whatever their scores (a face part boxed
    inside its face).

    torchvision.ops has no such op: its ``nms`` suppresses by IoU, which is symmetric and small
    for a part inside a whole (an eye box a 20th of its face has IoU 0.05 with it), so no IoU
    threshold removes the part without merging neighbouring faces. Containment (intersection over
    the smaller box's area) is one-sided, and what it calls a duplicate is the detector's business:
    in a crowd a small far face may overlap a near one, but hardly ever lies inside it.
    """
    xyxy = np.array([tuple(b[:4]) for b in boxes], np.float32).reshape(-1, 4)
    if len(xyxy) < 2:
        return np.arange(len(xyxy))
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    bigger = area[None, :] > area[:, None]  # (N, N): box j is bigger than box i
    return np.flatnonzero(~((inside_matrix(xyxy, xyxy) >= share) & bigger).any(1))


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

