"""How well the live tracker's re-identification (``track.look`` and its decision rule) tells a face
that comes back from another face.

    python -m evaluation.reid [SCENES] [--seed N]

Each annotated photo with two faces or more is made a webcam frame (letterboxed to 640x480, faces of
20 px or more there kept). A face's track look is the sum of the looks of 3 frames, each frame
JPEG-compressed anew (quality 35-60: a video codec's loss) and the face re-boxed as a detector might
(moved by up to 12% of its side, scaled 0.85-1.18). Two tracks per face; then for each face:

- **a return**: its second track against the first tracks of every face of its photo with its label
  (the tracker's vote check keeps the other label apart), all taken as lost a moment ago: re-identified
  as itself, as someone else, or not at all (``Tracker``'s rule: the most alike at ``REID_SIM`` or
  more, and ``REID_MARGIN`` above the next);
- **a stranger**: the same without its own first track: any answer merges two people.

A pessimistic crowd: everyone else of the photo lost at once, in the same light. The tracker's time
and size checks come on top.
"""
from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image

from evaluation.detection import letterbox
from maskrec.config import DEV_SCENES
from maskrec.faces import COVERED, MARGIN, crop_box, load_voc, read_rgb, scenes
from maskrec.live.track import REID_MARGIN, REID_SIM, look

FRAMES = 3  # a track's look when it is confirmed: min_hits_for(LIVE_DETECT_EVERY) detection frames


def _frame(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "JPEG", quality=int(rng.integers(35, 60)))
    return np.asarray(Image.open(b).convert("RGB"))


def _recrop(rgb: np.ndarray, box, rng: np.random.Generator) -> np.ndarray:
    import cv2
    x0, y0, x1, y1 = box
    dx, dy = rng.uniform(-0.12, 0.12, 2) * max(x1 - x0, y1 - y0)
    k = rng.uniform(0.85, 1.18)
    cx, cy, w, h = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy, (x1 - x0) * k, (y1 - y0) * k
    c = crop_box((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), rgb.shape, MARGIN)
    return cv2.resize(rgb[c[1]:c[3], c[0]:c[2]], (96, 96), interpolation=cv2.INTER_AREA)


def _track_look(rgb: np.ndarray, box, rng: np.random.Generator) -> np.ndarray:
    v = sum(look(_recrop(_frame(rgb, rng), box, rng)) for _ in range(FRAMES))
    return v / np.linalg.norm(v)


def _decide(sims: list[tuple[float, int]], sim: float, margin: float) -> int | None:
    """Tracker._lost_as's rule on (similarity, who) pairs: who, or None."""
    sims = sorted(sims, reverse=True)
    if not sims or sims[0][0] < sim or (len(sims) > 1 and sims[1][0] > sims[0][0] - margin):
        return None
    return sims[0][1]


def measure(folder=DEV_SCENES, seed: int = 0, sim: float = REID_SIM, margin: float = REID_MARGIN) -> dict:
    """{"photos", "faces", "right", "wrong", "missed", "strangers_merged"} (shares of the faces)."""
    rng = np.random.default_rng(seed)
    n = right = wrong = merged = photos = 0
    for img, xml in scenes(folder):
        rgb0 = read_rgb(img)
        h0, w0 = rgb0.shape[:2]
        rgb, k = letterbox(rgb0), min(640 / w0, 480 / h0)
        ox, oy = (640 - w0 * k) / 2, (480 - h0 * k) / 2
        truths = [t for t in load_voc(xml) if min(t.x1 - t.x0, t.y1 - t.y0) * k >= 20]
        if len(truths) < 2:
            continue
        photos += 1
        boxes = [(t.x0 * k + ox, t.y0 * k + oy, t.x1 * k + ox, t.y1 * k + oy) for t in truths]
        first, second = (np.array([_track_look(rgb, b, rng) for b in boxes]) for _ in range(2))
        s = second @ first.T  # (faces, faces): a second track against every first one
        label = [COVERED[t.label] for t in truths]
        for i in range(len(truths)):
            lost = [(float(s[i, j]), j) for j in range(len(truths)) if label[j] == label[i]]
            who = _decide(lost, sim, margin)
            n, right, wrong = n + 1, right + (who == i), wrong + (who is not None and who != i)
            merged += _decide([x for x in lost if x[1] != i], sim, margin) is not None
    return {"photos": photos, "faces": n, "right": right / n, "wrong": wrong / n,
            "missed": 1 - (right + wrong) / n, "strangers_merged": merged / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenes", nargs="?", default=str(DEV_SCENES))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    m = measure(a.scenes, a.seed)
    print(f"{m['photos']} photos, {m['faces']} faces; REID_SIM {REID_SIM}, margin {REID_MARGIN}: returns "
          f"re-identified {m['right']:.1%}, as someone else {m['wrong']:.1%}, missed {m['missed']:.1%}; "
          f"strangers merged {m['strangers_merged']:.1%}")


if __name__ == "__main__":
    main()
