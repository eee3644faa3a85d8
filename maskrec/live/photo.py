"""A photo in, its record out: the JSON of ``python -m maskrec predict --json`` and of ``serve``'s
``POST /v1/detect`` (one builder, so a program calling the server and a script calling the CLI read
the same fields), and the per-crop records of ``POST /v1/classify``.

    reader = PhotoReader(Predictor.load(path))        # builds each detector once, on first use
    img = open_rgb(path_or_file, draft=faces.PHOTO_SIDE)
    reader.record(str(path), img, "retinaface")
    # {"image", "faces": [{"box": [x0, y0, x1, y1], "label", "p_mask"}], "operating_point": {...}}
    #  + "engine" (Predictor.engine_info) when a face was classified

Boxes are in the file's pixels (a big JPEG decoded reduced is scaled back), labels at an operating
point of the checkpoint (its default unless one is given). ``WHOLE_IMAGE`` ("none") as the detector
takes the whole image as one face, for face crops like the training data.
"""
from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from maskrec import faces as F
from maskrec.infer.predictor import Predictor
from maskrec.infer.operating import OperatingPoint
from maskrec.live.recognize import Recognizer

WHOLE_IMAGE = "none"  # the detector name that makes the whole image one face


def point_json(op: OperatingPoint) -> dict:
    """The operating point as the records state it: name, threshold and unsure band."""
    return {"name": op.name, "threshold": round(op.threshold, 4),
            "band": [round(v, 4) for v in op.band] if op.band else None}


def classified(pred: Predictor, images: list, op: OperatingPoint | None = None) -> list[dict]:
    """Face crops (PIL RGB or (H, W, 3) uint8), classified in one batch: ``[{"label", "p_mask"}]``."""
    op = op or pred.op
    p = pred.predict_proba(images)
    return [{"label": lab, "p_mask": round(float(v), 4)} for lab, v in zip(op.labels(p, pred.classes), p)]


def in_file_pixels(found: list[dict], img: Image.Image) -> list[dict]:
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


class PhotoReader:
    """One predictor and the recognizers built on it, one per detector name (each loads its model
    once). Safe to share between threads: building is locked, and a Recognizer serialises its frames."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self._recognizers: dict[str, Recognizer] = {}
        self._lock = threading.Lock()

    def point(self, name: str | None) -> OperatingPoint:
        """The checkpoint's operating point ``name`` (None: the predictor's); ValueError naming the
        ones it has otherwise."""
        pred = self.predictor
        if name is None:
            return pred.op
        if name not in pred.operating_points:
            raise ValueError(f"the checkpoint has no operating point {name!r}; it has: "
                             f"{', '.join(pred.operating_points)}")
        return pred.operating_points[name]

    def recognizer(self, detector: str) -> Recognizer:
        with self._lock:
            rec = self._recognizers.get(detector)
            if rec is None:
                # faces.make_detector looked up at call time: tests put a stand-in detector there
                rec = self._recognizers[detector] = Recognizer(self.predictor, F.make_detector(detector))
            return rec

    def faces(self, img: Image.Image, detector: str = F.PHOTO_DEFAULT, op: OperatingPoint | None = None) -> list[dict]:
        """Every face ``detector`` finds in ``img`` (PIL RGB, from open_rgb), classified in one batch:
        ``[{"box": [x0, y0, x1, y1], "label", "p_mask"}]`` in the file's pixels, ``[]`` when none."""
        op = op or self.predictor.op
        if detector == WHOLE_IMAGE:
            return in_file_pixels([{"box": [0, 0, img.width, img.height]} | classified(self.predictor, [img], op)[0]],
                                  img)
        return in_file_pixels(self.recognizer(detector).at(op).recognize(np.asarray(img)).as_json(), img)

    def record(self, name: str | None, img: Image.Image, detector: str = F.PHOTO_DEFAULT,
               op: OperatingPoint | None = None) -> dict:
        """``faces`` as one record: the image's name, its faces, the operating point that labelled
        them and, when a face was classified, the engine that did it (and its calibration)."""
        op = op or self.predictor.op
        found = self.faces(img, detector, op)
        return ({"image": name, "faces": found, "operating_point": point_json(op)}
                | ({"engine": self.predictor.engine_info} if found else {}))
