"""Boxes and their maths: the Box every detector returns, crops, IoU and NMS on torchvision.ops.

Coordinates are pixels with exclusive ``x1, y1``, so ``rgb[y0:y1, x0:x1]`` is the box. IoU and
plain NMS are ``torchvision.ops``; only MediaPipe's weighted NMS, which torchvision lacks, is
grouped here (on torchvision's IoU matrix).
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

