"""``predict CHECKPOINT IMAGE...``: every face in each image, boxed and classified.

Every image is tried, as cat and grep do: a bad one is reported (on stderr, or as a JSON
``{"image", "error"}`` line) and the rest still run; the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import weakref
from pathlib import Path

import numpy as np

from .. import faces
from ..data import BadImage, open_rgb
from ..engines import ENGINES
from ..inference import TTA, Predictor
from ..recognize import Recognizer
from .common import UserError, add_engine_argument


def add_arguments(s):
    s.add_argument("checkpoint")
    s.add_argument("images", nargs="+")
    s.add_argument("--json", action="store_true", help="one JSON object per image")
    s.add_argument("--operating-point", metavar="NAME", help="the checkpoint's operating point to label at "
                   "(default: its default, street where it has one; `evaluate` lists them)")
    add_engine_argument(s, ENGINES)
    s.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation: average each face's P(mask) with its mirror's "
                        "(off by default: no gain measured at the saved thresholds, ~2x the cost a face)")
    s.add_argument("--detector", default=faces.DEFAULT, choices=[*faces.DETECTORS, "none"],
                   help=f"face detector (default {faces.DEFAULT}: best recall on photos; "
                        "`python bench/detectors.py` compares them); "
                        "none: the whole image is one face, for face crops")


def run(a):
    pred = Predictor.load(a.checkpoint, engine=a.engine, tta=TTA if a.tta is None else a.tta,
                          operating_point=a.operating_point)
    op = {"name": pred.op.name, "threshold": round(pred.op.threshold, 4),
          "band": [round(v, 4) for v in pred.op.band] if pred.op.band else None}
    if a.detector != "none":  # a detector that cannot run is the command's error (2), not each image's
        why = faces.available()[a.detector]
        if why:
            raise UserError(f"detector {a.detector} cannot run here: {why}")
        _recognizer(pred, a.detector)
    failed = 0
    for path in a.images:
        # Anything one image raises, in decoding or in detection (a cv2 error, a MemoryError), is
        # that image's failure, not the command's; Ctrl-C (not an Exception) still stops them all.
        try:
            img = open_rgb(Path(path), draft=faces.PHOTO_SIDE)
            found = _in_file_pixels(_faces(pred, img, a.detector), img)
        except Exception as e:
            failed += 1
            why = str(e) if isinstance(e, BadImage) else f"{type(e).__name__}: {e}"
            print(json.dumps({"image": path, "error": why}) if a.json else f"{_shown(path)}: error: {_shown(why)}",
                  file=sys.stdout if a.json else sys.stderr, flush=True)
            continue
        if a.json:  # the engine that classified the faces, and its calibration (none ran for no face)
            print(json.dumps({"image": path, "faces": found, "operating_point": op}
                             | ({"engine": pred.engine_info} if found else {})), flush=True)
        else:
            desc = ", ".join(f"{f['label']} ({f['p_mask']:.2f}) at {f['box']}" for f in found) or "no face found"
            print(f"{_shown(path)}: {desc}", flush=True)
    return 1 if failed else 0


def _shown(text: str) -> str:
    """A name as one printable line: quoted with repr's escapes when it holds a newline, another
    control character or bytes that are not text (so a name cannot split one result in two)."""
    return text if text.isprintable() else repr(text)


def _in_file_pixels(found: list[dict], img) -> list[dict]:
    """Boxes found on an image decoded reduced (open_rgb's draft) scaled to the file's pixels, so
    that a box means the same for a 108 MP photo as for a small one."""
    w, h = img.info.get("original_size", img.size)
    if (w, h) == img.size:
        return found
    sx, sy = w / img.width, h / img.height
    for f in found:
        x0, y0, x1, y1 = f["box"]
        f["box"] = [round(x0 * sx), round(y0 * sy), min(w, round(x1 * sx)), min(h, round(y1 * sy))]
    return found


def _faces(pred, img, detector: str | None = None):
    """Every face the detector finds in ``img`` (PIL RGB), classified in one batch:
    ``[{"box": [x0, y0, x1, y1], "label": ..., "p_mask": ...}]``, ``[]`` when none is found.
    ``detector="none"`` treats the whole image as one face (for face crops like the training data)."""
    if detector is None:
        detector = faces.PHOTO_DEFAULT
    if detector == "none":
        p = float(pred.predict_proba([img])[0])
        return [{"box": [0, 0, img.width, img.height], "label": pred.labels([p])[0], "p_mask": round(p, 4)}]
    return _recognizer(pred, detector).recognize(np.asarray(img)).as_json()


def _recognizer(pred, detector: str):
    """The Recognizer of ``pred`` and ``detector``: built once (the detector loads its model), then
    reused for every image."""
    # keyed weakly by the predictor: the cache lives as long as the command's Predictor
    cache = _recognizer.__dict__.setdefault("recognizers", weakref.WeakKeyDictionary())
    rec = cache.setdefault(pred, {}).get(detector)
    if rec is None:
        # faces.make_detector looked up at call time: tests put a stand-in detector there
        rec = cache[pred][detector] = Recognizer(pred, faces.make_detector(detector))
    return rec
