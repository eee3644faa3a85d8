"""Measure the face detectors of maskrec.faces's registry on annotated scenes (PASCAL VOC).

    python bench/detectors.py [--scenes DIR] [--json] [--only NAME,...] [--threads N]

Per detector, at IoU 0.4 (rules in evaluation/detection.py): recall of faces whose shorter side is
>= 32 px and of faces of 16-32 px; precision, COCO-style (a box under 32 px is ignored unless it
matches a face >= 32 px); recall of masked faces >= 32 px; faces found on maksssksksss158 (a crowd
of 14 masked faces of 8-24 px); mean ms per scene; ms on a 640x480 frame (median and best of
several calls: the best is the one least disturbed by other work on the machine). Defaults to
../shared/datasets/facemask-scenes-dev beside the repo.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evaluation.detection import evaluate, letterbox, match  # noqa: E402
from maskrec import faces  # noqa: E402
from maskrec.config import DEV_SCENES as SCENES  # noqa: E402
CROWD = "maksssksksss158"  # 14 masked faces of 8-24 px: the crowd test


def frame_640x480(images: list[np.ndarray]) -> np.ndarray:
    """The largest scene letterboxed to 640x480 (noise when there are no scenes)."""
    if not images:
        return np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    return letterbox(max(images, key=lambda a: a.shape[0] * a.shape[1]))


def latency(det, frame: np.ndarray, n: int = 15) -> tuple[float, float]:
    det.detect(frame)
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        det.detect(frame)
        ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts)), 1000 * float(np.min(ts))


def settings(text: str) -> dict:
    """"tile=128,score=0.4" -> {"tile": 128, "score": 0.4}"""
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key.strip()] = ast.literal_eval(value.strip())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=Path, default=SCENES)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--only", default="", help="comma-separated detector names (default: all)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of OpenCV, onnxruntime, torch and OpenMP (default 1: comparable "
                         "numbers on a busy machine)")
    ap.add_argument("--iou", type=float, default=0.4)
    ap.add_argument("--min-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="first N scenes only")
    ap.add_argument("--kw", default="", metavar="KEY=VALUE,...",
                    help="settings for every detector measured, to tune one: "
                         "--only retinaface --kw upscale=2,score=0.6")
    args = ap.parse_args(argv)

    pairs = faces.scenes(args.scenes) if args.scenes.is_dir() else []
    if args.limit:
        pairs = pairs[:args.limit]
    if not pairs:
        print(f"no scenes at {args.scenes}: latency only", file=sys.stderr)
    images = [faces.read_rgb(p) for p, _ in pairs]
    frame = frame_640x480(images)
    names = [n for n in args.only.split(",") if n] or list(faces.DETECTORS)
    # the comparison rows' own thread pools: torch (MTCNN) and OpenMP (YuNet), set before they load
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    torch.set_num_threads(args.threads)
    why = faces.available()
    crowd = next(((i, p) for i, p in enumerate(pairs) if p[0].stem == CROWD), None)

    rows = []
    for name in names:
        if why.get(name):
            rows.append({"detector": name, "unavailable": why[name]})
            continue
        det = faces.make_detector(name, threads=args.threads, **settings(args.kw))
        row = {"detector": f"{name} {args.kw}".strip()}
        det.detect(frame)  # the first call allocates buffers (onnxruntime: ~1 s), not per scene
        if pairs:
            r = evaluate(det, pairs, args.iou, args.min_size, images=images)
            row.update({k: r[k] for k in ("recall", "recall_small", "precision", "recall_all", "ms",
                                          "tp", "fp", "ignored", "inside", "n", "n_small", "n_all")})
            row["recall_by_label"] = r["recall_by_label"]
        if crowd:
            m = match(det.detect(images[crowd[0]]), faces.load_voc(crowd[1][1]), args.iou,
                            args.min_size)
            row["crowd_found"], row["crowd_n"] = m["found_all"], m["n_all"]
        row["ms_640x480"], row["ms_640x480_best"] = latency(det, frame)
        rows.append(row)

    if args.json:
        print(json.dumps({"scenes": str(args.scenes), "n_scenes": len(pairs), "iou": args.iou,
                          "min_size": args.min_size, "threads": args.threads, "rows": rows},
                         indent=2))
        return 0
    print(table(rows, len(pairs), args))
    return 0


def table(rows: list[dict], n_scenes: int, args) -> str:
    """The rows as a Markdown table (docs/guide.md, Measured results, holds the same one)."""
    first = next((r for r in rows if "n" in r), {})
    crowd_n = next((r["crowd_n"] for r in rows if "crowd_n" in r), 0)
    lines = [f"{n_scenes} scenes: {first.get('n', 0)} faces >= {args.min_size} px (shorter side), "
             f"{first.get('n_small', 0)} of {args.min_size // 2}-{args.min_size} px, "
             f"{first.get('n_all', 0)} in all; IoU {args.iou}; threads {args.threads}", "",
             f"| detector | recall >= {args.min_size} px | recall {args.min_size // 2}-{args.min_size}"
             f" px | precision | recall, masked | {CROWD} (of {crowd_n}) | ms / scene "
             "| ms / 640x480 frame (best) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = r["detector"]
        if "unavailable" in r:
            lines.append(f"| {name} | unavailable: {r['unavailable']} |" + " |" * 6)
            continue
        lat = f"{r['ms_640x480']:.1f} ({r['ms_640x480_best']:.1f})"
        if "recall" not in r:
            lines.append(f"| {name} |" + " |" * 6 + f" {lat} |")
            continue
        mask = r["recall_by_label"].get("with_mask", (float("nan"), 0))[0]
        lines.append(f"| {name} | {r['recall']:.3f} | {r['recall_small']:.3f} | {r['precision']:.3f}"
                     f" | {mask:.3f} | {r.get('crowd_found', '-')} | {r['ms']:.1f} | {lat} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
