"""The whole pipeline on annotated scenes the nets never trained on: detect, crop, classify.

    python bench/pipeline.py [--scenes DIR] [--detector NAME] [--json] CHECKPOINT...

For each checkpoint, on the held-out scenes of the folder (its ImageSets test list, else the seeded
quarter maskrec.data.scenes holds out, the same scenes its crop dataset tests on):
- detection: recall and precision of faces >= 32 px at IoU 0.4 (evaluation.detection.match);
- labels on the faces found >= 32 px: accuracy, bare faces called "mask", masked faces called "mask";
- on the held-out crops (annotated boxes, the Recognizer's margin): the same two rates at the
  checkpoint's saved threshold, and ROC AUC.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evaluation.scenes import evaluate_scenes  # noqa: E402
from maskrec import faces
from maskrec.data import scenes
from maskrec.config import DEV_SCENES as SCENES  # noqa: E402
from maskrec.data import discover, load_split  # noqa: E402
from maskrec.infer.predictor import Predictor  # noqa: E402
from maskrec.core.metrics import at_threshold  # noqa: E402
from maskrec.live.recognize import Recognizer  # noqa: E402


def held_out_pairs(folder: Path):
    names = set(scenes.held_out_scenes(folder))
    return [p for p in faces.scenes(folder) if p[0].stem in names]


def crop_rates(pred: Predictor, folder: Path) -> dict:
    ds = discover(folder)
    X, y, _ = load_split(ds, "test", pred.input_size)
    p = pred.predict_tensor(X)
    m = at_threshold(y.numpy(), p, pred.threshold)
    return {"crops": m["n"], "crop_bare_called_mask": m["fp"] / max(1, m["fp"] + m["tn"]),
            "crop_mask_found": m["tp"] / max(1, m["tp"] + m["fn"]), "crop_auc": m["auc"], "crop_f1": m["f1"]}


def pipeline(ckpt: Path, folder: Path, detector: str) -> dict:
    rec = Recognizer.load(ckpt, detector)
    r = evaluate_scenes(rec, held_out_pairs(folder))
    by = r["accuracy_by_label"]
    bare_acc, bare_n = by.get("without_mask", (float("nan"), 0))
    masked = [(a * n, n) for k, (a, n) in by.items() if k != "without_mask"]
    mask_n = sum(n for _, n in masked)
    out = {"checkpoint": str(ckpt), "detector": detector, "threshold": rec.threshold,
           "scenes": len(held_out_pairs(folder)), "recall": r["recall"], "precision": r["precision"],
           "label_accuracy": r["label_accuracy"], "labelled": r["labelled"],
           "bare_called_mask": 1 - bare_acc, "bare_faces": bare_n,
           "mask_found": sum(a for a, _ in masked) / max(1, mask_n), "masked_faces": mask_n}
    out.update(crop_rates(rec.predictor, folder))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--scenes", default=str(SCENES))
    ap.add_argument("--detector", default=faces.DEFAULT, choices=list(faces.DETECTORS))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    for ck in a.checkpoints:
        r = pipeline(Path(ck), Path(a.scenes), a.detector)
        if a.json:
            print(json.dumps(r))
            continue
        print(f"{Path(ck).name} + {a.detector} on {r['scenes']} held-out scenes (threshold {r['threshold']:.3f}):\n"
              f"  faces >= 32 px: recall {r['recall']:.3f}, precision {r['precision']:.3f}; "
              f"label accuracy {r['label_accuracy']:.3f} on {r['labelled']} found\n"
              f"  found faces: bare called mask {r['bare_called_mask']:.3f} (of {r['bare_faces']}), "
              f"masked called mask {r['mask_found']:.3f} (of {r['masked_faces']})\n"
              f"  {r['crops']} annotated crops: bare called mask {r['crop_bare_called_mask']:.3f}, "
              f"masked called mask {r['crop_mask_found']:.3f}, AUC {r['crop_auc']:.3f}, F1 {r['crop_f1']:.3f}")


if __name__ == "__main__":
    main()
