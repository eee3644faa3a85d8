"""Issue 34's judge: the whole pipeline on the declared scene split, where recognition is used.

    pairs = declared_pairs("test")                       # (image, annotation) of the test scenes, both folders
    dets = detect_all(faces.make_detector("retinaface"), pairs)   # once per detector, for every checkpoint
    r = judge(Predictor.load("checkpoints/net1.pt"), pairs, dets)

For each checkpoint, at its operating point (threshold and unsure band): every annotated face of a
known label that the detector found (paired by ``faces.matched_pairs``, IoU 0.4) is labelled as the
Recognize page labels it (the detector's box grown by the margin, one batch per scene), then counted
by face size (shorter side of the annotated box: < 32, 32-64, > 64 px, and all): bare faces called
mask, masked faces called mask (of all of them, and of those not unsure), unsure faces, and label
accuracy on the faces not unsure, each rate
with its 95% Wilson interval. ``misses`` lists the bare faces called mask and the masked faces
called bare, worst first, for the model card's look at what fails.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from maskrec import faces as F
from maskrec.config import DEV_SCENES, MORE_SCENES
from maskrec.infer.predictor import Predictor
from maskrec.infer.operating import UNSURE, wilson
from maskrec.data.scenes import declared

from .detection import match, summarize

SIZES = (("< 32 px", 0, 32), ("32-64 px", 32, 64), ("> 64 px", 64, 1 << 30), ("all", 0, 1 << 30))


def declared_pairs(part: str, folders=(DEV_SCENES, MORE_SCENES)) -> list[tuple[Path, Path]]:
    """(image, annotation) of the declared split's scenes of ``part`` ("train", "val", "test")."""
    split = declared()
    return [p for folder in folders for p in F.scenes(folder) if split.get(p[0].stem) == part]


def detect_all(detector, pairs, progress=None) -> list[list]:
    """Every scene's detections (boxes), once, for every checkpoint judged after."""
    out = []
    for k, (img, _) in enumerate(pairs):
        out.append(list(detector.detect(F.read_rgb(img))))
        if progress:
            progress(k + 1, len(pairs))
    return out


def _rate(k: int, n: int) -> dict:
    lo, hi = wilson(k, n)
    return {"k": int(k), "n": int(n), "rate": k / n if n else float("nan"), "ci95": [lo, hi]}


def judge(pred: Predictor, pairs, dets, margin: float = F.MARGIN, min_side: int = 12) -> dict:
    """The rates above for one checkpoint at its operating point (``pred.op``), plus detection
    recall/precision of faces >= 32 px and the list of misses."""
    rows = []  # (size, truth 0/1, label, p, scene, box)
    matches = []
    for (img, xml), boxes in zip(pairs, dets):
        truths = F.load_voc(xml)
        matches.append(match(boxes, truths))
        pairs_ = [(i, j) for i, j in F.matched_pairs(boxes, truths) if truths[j].label in F.COVERED
                  and min(truths[j].x1 - truths[j].x0, truths[j].y1 - truths[j].y0) >= min_side]
        if not pairs_:
            continue
        rgb = F.read_rgb(img)
        crops = []
        for i, _ in pairs_:
            x0, y0, x1, y1 = F.crop_box(boxes[i], rgb.shape, margin)
            crops.append(rgb[y0:y1, x0:x1])
        p = pred.predict_proba(crops)
        for (i, j), v, lab in zip(pairs_, p, pred.labels(p)):
            t = truths[j]
            rows.append((min(t.x1 - t.x0, t.y1 - t.y0), F.COVERED[t.label], lab, float(v), img.stem,
                         [t.x0, t.y0, t.x1, t.y1], t.label))
    mask = pred.classes[1]
    out = {"operating_point": pred.op.name, "threshold": pred.op.threshold, "band": pred.op.band,
           "scenes": len(pairs), "detection": summarize(matches), "by_size": {}}
    for name, lo, hi in SIZES:
        r = [x for x in rows if lo <= x[0] < hi]
        bare = [x for x in r if x[1] == 0]
        masked = [x for x in r if x[1] == 1]
        decided = [x for x in r if x[2] != UNSURE]
        out["by_size"][name] = {
            "faces": len(r),
            "bare_as_mask": _rate(sum(x[2] == mask for x in bare), len(bare)),
            "masked_as_mask": _rate(sum(x[2] == mask for x in masked), len(masked)),
            # the same of the masked faces not unsure: an unsure face is neither called mask nor bare
            "masked_as_mask_decided": _rate(sum(x[2] == mask for x in masked),
                                            sum(x[2] != UNSURE for x in masked)),
            "unsure": _rate(sum(x[2] == UNSURE for x in r), len(r)),
            "accuracy": _rate(sum((x[2] == mask) == bool(x[1]) for x in decided), len(decided)),
        }
    wrong = [x for x in rows if x[2] != UNSURE and (x[2] == mask) != bool(x[1])]
    wrong.sort(key=lambda x: -abs(x[3] - pred.op.threshold))
    out["misses"] = [{"scene": x[4], "box": x[5], "side": x[0], "label": x[6], "called": x[2], "p_mask": round(x[3], 4)}
                     for x in wrong]
    out["p"] = np.array([x[3] for x in rows])
    out["y"] = np.array([x[1] for x in rows])
    return out
