"""The whole pipeline (detector + classifier) measured on annotated scenes (PASCAL VOC).

    rec = Recognizer.load("checkpoints/net1.pt", detector="blazeface-tiles")
    m = evaluate_scenes(rec, faces.scenes(folder))   # detection recall/precision + label accuracy

Detection is scored as ``evaluation.detection.evaluate`` scores a detector alone; each detection
is paired with its annotated face by the same rule (``faces.matched_pairs``), and the label the
Recognizer gave it is checked against the scene's label (``faces.COVERED``). ``bench/pipeline.py``
reports it.
"""
from __future__ import annotations

import time

import numpy as np

from maskrec import faces as F
from maskrec.live.recognize import Recognizer

from .detection import match, summarize


def evaluate_scenes(rec: Recognizer, pairs, iou: float = F.MATCH_IOU, min_size: int = 32,
                    threshold: float | None = None, images: list[np.ndarray] | None = None) -> dict:
    """The whole pipeline on annotated scenes (``faces.scenes(folder)`` pairs).

    Detection: ``summarize`` of ``match`` (recall/precision at ``iou`` on faces
    >= ``min_size``). Labels: accuracy on detected faces >= ``min_size`` against the scene label
    (``COVERED``: mask_weared_incorrect counts as covered), overall and by scene label, and on
    detected faces of any size (``accuracy_all``). ``ms`` is the mean per scene (detect+classify).
    """
    covered = rec.predictor.classes[1]
    matches, secs = [], 0.0
    right = n = right_all = n_all = 0
    by_label: dict[str, list[int]] = {}
    for k, (img, xml) in enumerate(pairs):
        rgb = images[k] if images is not None else F.read_rgb(img)
        truths = F.load_voc(xml)
        t = time.perf_counter()
        res = rec.recognize(rgb, threshold)
        secs += time.perf_counter() - t
        boxes = [f.box for f in res.faces]
        matches.append(match(boxes, truths, iou, min_size))
        for i, j in F.matched_pairs(boxes, truths, iou):
            tr = truths[j]
            if tr.label not in F.COVERED:
                continue
            ok = (res.faces[i].label == covered) == bool(F.COVERED[tr.label])
            right_all += ok
            n_all += 1
            if min(tr.x1 - tr.x0, tr.y1 - tr.y0) >= min_size:
                right += ok
                n += 1
                c = by_label.setdefault(tr.label, [0, 0])
                c[0] += ok
                c[1] += 1
    out = summarize(matches)
    out.update({
        "label_accuracy": right / n if n else float("nan"), "labelled": n,
        "label_accuracy_all": right_all / n_all if n_all else float("nan"), "labelled_all": n_all,
        "accuracy_by_label": {k: (r / m, m) for k, (r, m) in sorted(by_label.items())},
        "ms": 1000 * secs / max(1, len(pairs)),
        "margin": rec.margin,
        "threshold": rec.threshold if threshold is None else threshold,
    })
    return out
