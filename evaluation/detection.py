"""Detectors scored against annotated scenes: recall, precision, recall of small faces, by label.

Shared by ``bench/detectors.py``, ``evaluation.scenes`` and the tests; the app never scores::

    truths = faces.load_voc("annotations/x.xml")   # [Truth(x0, y0, x1, y1, label)]
    m = match(det.detect(rgb), truths)              # one image: counts
    summary = summarize([m, ...])                   # recall, precision, recall by label
    r = evaluate(det, faces.scenes(folder))         # the same over a folder, plus ms per image

Rules of ``match`` (COCO-style for the small faces): a detection matches the not-yet-matched face
of *any* size with which its IoU is highest and >= ``iou`` (0.4; greedy, best score first:
``faces.matched_pairs``, the rule every pairing of boxes uses).
Recall counts faces whose shorter side is >= ``min_size`` (32 px); ``recall_small`` those from
``min_size / 2`` (16 px) up to it. Precision counts a detection correct when it matches a face
>= ``min_size``, wrong when it matches nothing and is itself >= ``min_size``; the rest (a match
with a small face, an unmatched small box) is ignored, since small faces are not all annotated.
``inside`` counts the unmatched detections of any size whose area lies ``faces.INSIDE`` (0.65) or
more inside a bigger annotated face: a face part (eye, mouth, forehead) boxed as a face.
Coordinates are pixels with exclusive ``x1, y1``, so ``rgb[y0:y1, x0:x1]`` is the box.

``letterbox`` makes a camera-sized frame of any photo, for timing a detector as a webcam feeds it.
"""
from __future__ import annotations

import time
from typing import Iterable

import cv2
import numpy as np

from maskrec.faces import INSIDE, MATCH_IOU, Detector, inside_matrix, load_voc, matched_pairs, read_rgb


def _short_side(b) -> float:
    return min(b[2] - b[0], b[3] - b[1])


def _area(boxes) -> np.ndarray:
    b = np.array([tuple(x[:4]) for x in boxes], float).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def match(dets: Iterable, truths: Iterable, iou: float = MATCH_IOU, min_size: int = 32) -> dict:
    """Match one image's detections to its faces (rules in the module docstring).

    Returns counts that ``summarize`` adds up: ``tp``/``fp``/``ignored`` detections, ``inside``
    (unmatched detections inside a bigger face), ``n``/``found`` faces >= min_size,
    ``n_small``/``found_small`` faces from min_size / 2 up to min_size, ``n_all``/``found_all``
    faces of any size, and ``by_label`` {label: [found, n]} for faces >= min_size.
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
    loose = [d for i, d in enumerate(dets) if i not in found]
    inside = 0
    if loose and truths:
        bigger = _area(truths)[None, :] > _area(loose)[:, None]  # (unmatched, faces)
        inside = int(((inside_matrix(loose, truths) >= INSIDE) & bigger).any(1).sum())
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
    return {"tp": tp, "fp": fp, "ignored": ignored, "inside": inside, "n": sum(big),
            "found": int(taken[big].sum()) if truths else 0,
            "n_small": n_small, "found_small": found_small,
            "n_all": len(truths), "found_all": int(taken.sum()), "by_label": by_label}


def summarize(results: Iterable[dict]) -> dict:
    """Add up ``match`` results: recall (faces >= min_size), ``recall_small`` (min_size / 2 up to
    min_size), precision (as defined above), recall by label."""
    keys = ("tp", "fp", "ignored", "inside", "n", "found", "n_small", "found_small", "n_all", "found_all")
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


def letterbox(rgb: np.ndarray, w: int = 640, h: int = 480) -> np.ndarray:
    """(H, W, 3) uint8 scaled to fit (w, h), centred on black: a camera-sized frame from any photo."""
    f = min(w / rgb.shape[1], h / rgb.shape[0])
    nw, nh = round(rgb.shape[1] * f), round(rgb.shape[0] * f)
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - nh) // 2, (w - nw) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out


def evaluate(det: Detector, pairs, iou: float = MATCH_IOU, min_size: int = 32,
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
