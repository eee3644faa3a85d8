"""The one rule that pairs boxes found with boxes known: greedy, best score first.

Scoring a detector (``evaluation.detection.match``), scoring the whole pipeline
(``evaluation.scenes``), scene crops choosing the detector's box for an annotated face
(``maskrec.data.scenes``) and video scoring all pair boxes with ``matched_pairs``, so one face is
"found" by the same detection everywhere.
"""
from __future__ import annotations

import numpy as np

from maskrec.faces.boxes import iou_matrix

MATCH_IOU = 0.4  # the overlap from which a detection is that face's box


def matched_pairs(dets, truths, iou: float = MATCH_IOU) -> list[tuple[int, int]]:
    """(detection index, face index) pairs of one image: greedy, best score first, each detection
    (``(x0, y0, x1, y1, score)``) takes the free face of highest IoU >= ``iou`` (the last of
    equals), whatever its size."""
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

