"""The whole pipeline on the declared scene split (issue 34's judge): detect, crop, classify, count.

    python bench/street.py checkpoints/net1.pt checkpoints/net2.pt [--part test] [--detector retinaface]
        [--operating-point NAME] [--engine app|exact|NAME] [--json-out docs/street-DATE.json] [--misses 20]

The scenes are the declared split's (``maskrec/data/scene_split.json``) of facemask-scenes-dev and
facemask-scenes-more. The detector runs once per scene; each checkpoint then labels the faces it
found at its operating point (default: its own default, ``street`` where it carries one). Per face
size: bare faces called mask, masked faces called mask, unsure share, label accuracy on the faces not
unsure (95% Wilson intervals), the AUC of the found faces' P(mask), and detection recall/precision of
faces >= 32 px. ``--part val`` is where operating points are picked; ``test`` only reports.
``--engine``: ``exact`` (the default: fp32, the scores the points were picked on), ``app`` (the engine
recognition picks here, e.g. onnx-int8) or an engine's name.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evaluation.street import declared_pairs, detect_all, judge  # noqa: E402
from maskrec import faces  # noqa: E402
from maskrec.infer.engines import cpu_flags  # noqa: E402
from maskrec.infer.probe import cpu_name  # noqa: E402
from maskrec.infer.predictor import Predictor  # noqa: E402
from maskrec.core.metrics import auc_or_none  # noqa: E402


def pct(r: dict) -> str:
    if not r["n"]:
        return "-"
    return f"{r['k']}/{r['n']} {100 * r['rate']:.1f}% ({100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--part", choices=["train", "val", "test"], default="test")
    ap.add_argument("--detector", default=faces.PHOTO_DEFAULT, choices=list(faces.DETECTORS))
    ap.add_argument("--operating-point", default=None)
    ap.add_argument("--engine", default="exact", help="exact (fp32, the default), app (recognition's own) or a name")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--misses", type=int, default=0, help="print this many misses per checkpoint, worst first")
    a = ap.parse_args(argv)
    pairs = declared_pairs(a.part)
    if not pairs:
        print("no scenes: the declared split's folders are not here", file=sys.stderr)
        return 2
    t = time.perf_counter()
    dets = detect_all(faces.make_detector(a.detector), pairs)
    detect_s = time.perf_counter() - t
    results = []
    for ck in a.checkpoints:
        how = {"exact": {"exact": True}, "app": {}}.get(a.engine, {"engine": a.engine})
        pred = Predictor.load(ck, operating_point=a.operating_point, **how)
        r = judge(pred, pairs, dets)
        r["auc"] = auc_or_none(r.pop("y"), r.pop("p"))
        r["checkpoint"], r["engine"] = ck, pred.engine_info["engine"]
        results.append(r)
        d = r["detection"]
        band = f", unsure {r['band'][0]:.3f}-{r['band'][1]:.3f}" if r["band"] else ""
        print(f"\n{ck} ({r['engine']}) + {a.detector} on {r['scenes']} {a.part} scenes; operating point {r['operating_point']} "
              f"(threshold {r['threshold']:.3f}{band}); detection >= 32 px: recall {d['recall']:.3f}, "
              f"precision {d['precision']:.3f}; AUC of found faces {r['auc']:.4f}")
        print(f"  {'size':<9} {'faces':>5}  {'bare called mask':<26} {'masked called mask':<28} "
              f"{'(of those not unsure)':<28} {'unsure':<24} accuracy (not unsure)")
        for size, s in r["by_size"].items():
            print(f"  {size:<9} {s['faces']:>5}  {pct(s['bare_as_mask']):<26} {pct(s['masked_as_mask']):<28} "
                  f"{pct(s['masked_as_mask_decided']):<28} {pct(s['unsure']):<24} {pct(s['accuracy'])}")
        for m in r["misses"][:a.misses]:
            print(f"    {m['scene']} {m['box']} {m['side']} px {m['label']} called {m['called']} P(mask) {m['p_mask']}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({
            "cpu": cpu_name(), "flags": sorted(cpu_flags()), "part": a.part, "detector": a.detector,
            "detect_seconds": detect_s, "date": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
