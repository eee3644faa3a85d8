"""``predict CHECKPOINT IMAGE...``: every face in each image, boxed and classified.

Every image is tried, as cat and grep do: a bad one is reported (on stderr, or as a JSON
``{"image", "error"}`` line) and the rest still run; the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maskrec import faces
from maskrec.data import BadImage, open_rgb
from maskrec.infer.engines import ENGINES
from maskrec.infer.predictor import TTA, Predictor
from maskrec.live.photo import WHOLE_IMAGE, PhotoReader
from maskrec.cli.common import UserError, add_engine_argument


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
    s.add_argument("--detector", default=faces.DEFAULT, choices=[*faces.DETECTORS, WHOLE_IMAGE],
                   help=f"face detector (default {faces.DEFAULT}: best recall on photos; "
                        "`python bench/detectors.py` compares them); "
                        "none: the whole image is one face, for face crops")


def run(a):
    pred = Predictor.load(a.checkpoint, engine=a.engine, tta=TTA if a.tta is None else a.tta,
                          operating_point=a.operating_point)
    reader = PhotoReader(pred)
    if a.detector != WHOLE_IMAGE:  # a detector that cannot run is the command's error (2), not each image's
        why = faces.available()[a.detector]
        if why:
            raise UserError(f"detector {a.detector} cannot run here: {why}")
        reader.recognizer(a.detector)
    failed = 0
    for path in a.images:
        # Anything one image raises, in decoding or in detection (a cv2 error, a MemoryError), is
        # that image's failure, not the command's; Ctrl-C (not an Exception) still stops them all.
        try:
            record = reader.record(path, open_rgb(Path(path), draft=faces.PHOTO_SIDE), a.detector)
        except Exception as e:
            failed += 1
            why = str(e) if isinstance(e, BadImage) else f"{type(e).__name__}: {e}"
            print(json.dumps({"image": path, "error": why}) if a.json else f"{_shown(path)}: error: {_shown(why)}",
                  file=sys.stdout if a.json else sys.stderr, flush=True)
            continue
        if a.json:  # maskrec.live.photo builds the record, as serve's POST /v1/detect does
            print(json.dumps(record), flush=True)
        else:
            found = record["faces"]
            desc = ", ".join(f"{f['label']} ({f['p_mask']:.2f}) at {f['box']}" for f in found) or "no face found"
            print(f"{_shown(path)}: {desc}", flush=True)
    return 1 if failed else 0


def _shown(text: str) -> str:
    """A name as one printable line: quoted with repr's escapes when it holds a newline, another
    control character or bytes that are not text (so a name cannot split one result in two)."""
    return text if text.isprintable() else repr(text)
