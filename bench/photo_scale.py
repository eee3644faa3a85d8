"""The photo detector at the sizes photos come in (issue 34): the declared scene split
(``maskrec/data/scene_split.json``), each scene as it is and enlarged 2x and 3x (cv2 INTER_CUBIC, its
annotated boxes scaled: the same scene as a phone photo of 800-1,200 px would show it).

    python bench/photo_scale.py [--split test|val] [--enlarge 1,2,3] [--only NAME,...] [--before]
                                [--threads 1] [--json-out docs/photo_scale.json]

One row per (detector, enlargement), at IoU 0.4 (rules in evaluation/detection.py): recall of faces
whose shorter side is >= 32 px (at 2x and 3x that takes in faces of 16-32 and 11-16 px in the
scene as it was), of 16-32 px faces, precision, boxes lying inside a bigger annotated face (0.65
of their area or more, unmatched: a face part boxed as a face) and mean ms per scene. ``--before``
adds the photo row as it was before issue 34, measured in the same run: one pass on the photo
enlarged 2.25x up to 2,048 px, no box dropped for lying inside a bigger one. Tune on ``val``,
report on ``test``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.detectors import settings  # noqa: E402
from evaluation.detection import match, summarize  # noqa: E402
from maskrec import faces
from maskrec.data import scenes
from maskrec.config import DEV_SCENES, MORE_SCENES  # noqa: E402
from maskrec.infer.probe import cpu_name  # noqa: E402

# The "retinaface" row before issue 34: every photo enlarged 2.25x up to 2,048 px, one pass.
BEFORE = {"upscale": 2.25, "max_side": faces.PHOTO_SIDE, "detail_side": 0, "inside": None}
KEYS = ("recall", "recall_small", "precision", "inside", "tp", "fp", "n", "n_small")


def split_pairs(split: str, folders=(DEV_SCENES, MORE_SCENES)) -> list:
    """(image, annotation) pairs of the folders' scenes that the declared split puts in ``split``."""
    declared = scenes.declared()
    return [p for folder in folders if folder.is_dir() for p in faces.scenes(folder)
            if declared.get(p[0].stem) == split]


def enlarged(rgb, truths, k: int):
    """The scene k times larger (cubic, as a sharper camera would see it) and its boxes scaled."""
    if k == 1:
        return rgb, truths
    big = cv2.resize(rgb, (rgb.shape[1] * k, rgb.shape[0] * k), interpolation=cv2.INTER_CUBIC)
    return big, [t._replace(x0=t.x0 * k, y0=t.y0 * k, x1=t.x1 * k, y1=t.y1 * k) for t in truths]


def measure(detectors: dict, pairs: list, enlarge: list[int], iou: float, min_size: int) -> list[dict]:
    """One row per (detector, enlargement): ``summarize``'s figures and ms per scene."""
    found = {(name, k): [] for name in detectors for k in enlarge}
    scene = {key: [] for key in found}  # the same boxes, sizes counted in the scene as it was
    secs = dict.fromkeys(found, 0.0)
    for img, xml in pairs:
        rgb0, truths0 = faces.read_rgb(img), faces.load_voc(xml)
        for k in enlarge:
            rgb, truths = enlarged(rgb0, truths0, k)
            for name, det in detectors.items():
                t = time.perf_counter()
                boxes = det.detect(rgb)
                secs[name, k] += time.perf_counter() - t
                found[name, k].append(match(boxes, truths, iou, min_size))
                scene[name, k].append(match(boxes, truths, iou, min_size * k))
    rows = []
    for (name, k), results in found.items():
        r, was = summarize(results), summarize(scene[name, k])
        rows.append({"detector": name, "enlarge": k, **{key: r[key] for key in KEYS},
                     **{f"{key}_as_was": was[key] for key in ("recall", "precision", "tp", "fp", "n")},
                     "ms": 1000 * secs[name, k] / max(1, len(pairs))})
    return rows


def table(rows: list[dict], args, n_scenes: int) -> str:
    lines = [f"{args.split} split: {n_scenes} scenes; IoU {args.iou}; threads {args.threads}", "",
             f"| detector | enlarged | faces >= {args.min_size} px | recall >= {args.min_size} px "
             f"| recall {args.min_size // 2}-{args.min_size} px | precision | inside a bigger face "
             "| recall, precision: sizes as the scene was | ms / scene |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['detector']} | {r['enlarge']}x | {r['n']} | {r['recall']:.3f} "
                     f"| {r['recall_small']:.3f} | {r['precision']:.3f} | {r['inside']} "
                     f"| {r['recall_as_was']:.3f}, {r['precision_as_was']:.3f} | {r['ms']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("test", "val"), default="test")
    ap.add_argument("--enlarge", default="1,2,3", help="comma-separated whole factors (default 1,2,3)")
    ap.add_argument("--only", default=f"{faces.PHOTO_DEFAULT},{faces.LIVE_DEFAULT}",
                    help="comma-separated detector names (default: the photo and the live one)")
    ap.add_argument("--before", action="store_true",
                    help=f"add the {faces.PHOTO_DEFAULT!r} row as it was before issue 34")
    ap.add_argument("--kw", default="", metavar="KEY=VALUE,...",
                    help="settings for every detector measured, to tune one: --kw max_side=1024")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of OpenCV, onnxruntime and torch (default 1: comparable numbers)")
    ap.add_argument("--iou", type=float, default=0.4)
    ap.add_argument("--min-size", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="first N scenes only")
    ap.add_argument("--json-out", type=Path, help="also write the rows as JSON here (e.g. docs/)")
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch  # box maths; its pool set before first use
    torch.set_num_threads(args.threads)
    pairs = split_pairs(args.split)[:args.limit or None]
    if not pairs:
        print(f"no {args.split} scenes under {DEV_SCENES} or {MORE_SCENES}", file=sys.stderr)
        return 1
    why = faces.available()
    chosen = {f"{n} {args.kw}".strip(): (n, settings(args.kw))
              for n in filter(None, args.only.split(","))}
    if args.before:
        chosen[f"{faces.PHOTO_DEFAULT} (before)"] = (faces.PHOTO_DEFAULT, BEFORE)
    detectors, used = {}, {}
    for label, (name, kw) in chosen.items():
        reason = why.get(name, f"not in the registry ({', '.join(faces.DETECTORS)})")
        if reason:
            print(f"{name}: {reason}", file=sys.stderr)
            continue
        detectors[label] = faces.make_detector(name, threads=args.threads, **kw)
        used[label] = {**faces.DETECTORS[name].defaults, **kw}
    enlarge = [int(k) for k in args.enlarge.split(",") if k]
    for det in detectors.values():  # the first call allocates buffers (onnxruntime: ~1 s)
        det.detect(faces.read_rgb(pairs[0][0]))
    rows = measure(detectors, pairs, enlarge, args.iou, args.min_size)
    print(table(rows, args, len(pairs)))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(
            {"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M"), "split": args.split, "n_scenes": len(pairs), "enlarge": enlarge, "iou": args.iou,
             "min_size": args.min_size, "inside_share": faces.INSIDE, "threads": args.threads,
             "settings": used, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
