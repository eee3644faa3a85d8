"""Measure the face detectors of maskrec.faces on annotated scenes (PASCAL VOC).

    python bench/detectors.py [--scenes DIR] [--json] [--only NAME,...] [--threads N]

Per detector: recall and precision at IoU 0.4 on faces whose shorter side is >= 32 px (rules in
maskrec/faces.py), recall on all faces, recall by label, mean ms per scene and ms on a 640x480
frame (median and best of several calls: the best is the one least disturbed by other work on
the machine). Defaults to ../shared/datasets/facemask-scenes-dev beside the repo.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from maskrec import faces  # noqa: E402

SCENES = Path(os.environ.get("MASKREC_SCENES",
                             REPO.parent / "shared" / "datasets" / "facemask-scenes-dev"))
SHORT = {"with_mask": "mask", "without_mask": "bare", "mask_weared_incorrect": "incorrect"}


def frame_640x480(images: list[np.ndarray]) -> np.ndarray:
    """The largest scene letterboxed to 640x480 (noise when there are no scenes)."""
    if not images:
        return np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    return faces.letterbox(max(images, key=lambda a: a.shape[0] * a.shape[1]))


def latency(det, frame: np.ndarray, n: int = 15) -> tuple[float, float]:
    det.detect(frame)  # first call allocates OpenCV's buffers
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        det.detect(frame)
        ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts)), 1000 * float(np.min(ts))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=Path, default=SCENES)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--only", default="", help="comma-separated detector names (default: all)")
    ap.add_argument("--threads", type=int, default=1,
                    help="cv2.setNumThreads (default 1: comparable numbers on a busy machine)")
    ap.add_argument("--iou", type=float, default=0.4)
    ap.add_argument("--min-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="first N scenes only")
    args = ap.parse_args(argv)

    pairs = faces.scenes(args.scenes) if args.scenes.is_dir() else []
    if args.limit:
        pairs = pairs[:args.limit]
    if not pairs:
        print(f"no scenes at {args.scenes}: latency only", file=sys.stderr)
    images = [faces.read_rgb(p) for p, _ in pairs]
    frame = frame_640x480(images)
    names = [n for n in args.only.split(",") if n] or list(faces.DETECTORS)
    why = faces.available()

    rows = []
    for name in names:
        if why.get(name):
            rows.append({"detector": name, "unavailable": why[name]})
            continue
        det = faces.make_detector(name, threads=args.threads)
        row = {"detector": name}
        if pairs:
            r = faces.evaluate(det, pairs, args.iou, args.min_size, images=images)
            row.update({k: r[k] for k in ("recall", "precision", "recall_all", "ms", "tp", "fp",
                                          "ignored", "n", "n_all")})
            row["recall_by_label"] = r["recall_by_label"]
        row["ms_640x480"], row["ms_640x480_best"] = latency(det, frame)
        rows.append(row)

    if args.json:
        print(json.dumps({"scenes": str(args.scenes), "n_scenes": len(pairs), "iou": args.iou,
                          "min_size": args.min_size, "threads": args.threads, "rows": rows},
                         indent=2))
        return 0
    n = rows[0].get("n", 0) if rows else 0
    n_all = next((r["n_all"] for r in rows if "n_all" in r), 0)
    print(f"{len(pairs)} scenes, {n} faces >= {args.min_size} px (shorter side), {n_all} in all; "
          f"IoU {args.iou}; cv2 threads {args.threads}")
    head = (f"{'detector':16} {'recall':>6} {'prec':>6} {'R all':>6} "
            + " ".join(f"{SHORT.get(k, k)[:9]:>9}" for k in faces.LABELS)
            + f" {'fp':>4} {'ms/img':>7} {'640x480 ms (best)':>17}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "unavailable" in r:
            print(f"{r['detector']:16} unavailable: {r['unavailable']}")
            continue
        lat = f"{r['ms_640x480']:.1f} ({r['ms_640x480_best']:.1f})"
        if "recall" not in r:
            print(f"{r['detector']:16} {'':>6} {'':>6} {'':>6} {'':>29} {'':>4} {'':>7} {lat:>17}")
            continue
        by = r["recall_by_label"]
        labs = " ".join(f"{by[k][0]:>9.3f}" if k in by else f"{'-':>9}" for k in faces.LABELS)
        print(f"{r['detector']:16} {r['recall']:6.3f} {r['precision']:6.3f} {r['recall_all']:6.3f}"
              f" {labs} {r['fp']:4d} {r['ms']:7.1f} {lat:>17}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
