"""How well ``track.look`` tells a face that comes back from another face (the live re-identification).

    python -m evaluation.reid [SCENES] [--seed N]

Every face of 20 px or more on each annotated photo with two faces or more is cropped twice as a
detector might box it again (the box moved by up to 12% of its side, scaled 0.85-1.18, half of the
crops 15% darker or brighter), each crop squashed to 96 px as the live stream keeps them. A face
against its own second crop is a return; against every other face of its photo (same light, same
camera) with the same label a stranger (a stranger with the other label is never taken for them:
the tracker's vote check). Prints the share of returns at or above ``track.REID_SIM`` and the share
of strangers, bare and masked, that would be taken for one another, before the tracker's time and
size checks.
"""
from __future__ import annotations

import argparse

import numpy as np

from maskrec.config import DEV_SCENES
from maskrec.faces import COVERED, MARGIN, crop_box, load_voc, read_rgb, scenes
from maskrec.track import REID_SIM, look


def _recrop(rgb: np.ndarray, box, rng: np.random.Generator) -> np.ndarray:
    import cv2
    x0, y0, x1, y1 = box
    dx, dy = rng.uniform(-0.12, 0.12, 2) * max(x1 - x0, y1 - y0)
    k = rng.uniform(0.85, 1.18)
    cx, cy, w, h = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy, (x1 - x0) * k, (y1 - y0) * k
    c = crop_box((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), rgb.shape, MARGIN)
    im = rgb[c[1]:c[3], c[0]:c[2]]
    if rng.random() < 0.5:
        im = np.clip(im.astype(np.float32) * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)
    return cv2.resize(im, (96, 96), interpolation=cv2.INTER_AREA)


def measure(folder=DEV_SCENES, seed: int = 0, sim: float = REID_SIM) -> dict:
    """{"photos", "faces", "returns_found", "bare_pairs", "bare_merged", "masked_pairs", "masked_merged"}
    (shares in [0, 1])."""
    rng = np.random.default_rng(seed)
    same, strangers, photos = [], {0: [], 1: []}, 0
    for img, xml in scenes(folder):
        truths = [t for t in load_voc(xml) if min(t.x1 - t.x0, t.y1 - t.y0) >= 20]
        if len(truths) < 2:
            continue
        photos += 1
        rgb = read_rgb(img)
        a, b = ([look(_recrop(rgb, t[:4], rng)) for t in truths] for _ in range(2))
        s = np.array(a) @ np.array(b).T  # (faces, faces) Bhattacharyya coefficients
        same += list(np.diag(s))
        label = [COVERED[t.label] for t in truths]
        for i in range(len(truths)):
            strangers[label[i]] += [s[i, j] for j in range(len(truths)) if j != i and label[j] == label[i]]
    bare, masked = np.array(strangers[0]), np.array(strangers[1])
    return {"photos": photos, "faces": len(same), "returns_found": float(np.mean(np.array(same) >= sim)),
            "bare_pairs": len(bare), "bare_merged": float(np.mean(bare >= sim)),
            "masked_pairs": len(masked), "masked_merged": float(np.mean(masked >= sim))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenes", nargs="?", default=str(DEV_SCENES))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    m = measure(a.scenes, a.seed)
    print(f"{m['photos']} photos, {m['faces']} faces; at {REID_SIM}: {m['returns_found']:.1%} of returns "
          f"re-identified; strangers taken for one another: {m['bare_merged']:.1%} of {m['bare_pairs']} bare "
          f"pairs, {m['masked_merged']:.1%} of {m['masked_pairs']} masked pairs")


if __name__ == "__main__":
    main()
