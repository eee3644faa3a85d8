"""``evaluate CHECKPOINT --data DATA``: F1, AUC, accuracy and the confusion of a checkpoint at its
saved threshold, on the test split (or all images of a dataset without one)."""
from __future__ import annotations

import json

from ..engines import ENGINES
from ..evaluate import score
from ..inference import Predictor
from ..metrics import at_threshold
from .common import add_engine_argument, add_split_argument, fmt, progress_bar


def add_arguments(s):
    s.add_argument("checkpoint")
    s.add_argument("--data", required=True)
    s.add_argument("--json", action="store_true", help="last line: one JSON object")
    add_engine_argument(s, ENGINES)
    add_split_argument(s)


def run(a):
    pred = Predictor.load(a.checkpoint, engine=a.engine, exact=True)  # the checkpoint's own scores
    res = score(pred, a.data, progress_bar("decoding"), split=a.split)
    m = at_threshold(res.y, res.p, pred.threshold)
    m.update({"split": res.split, "net": pred.net, "checkpoint": str(a.checkpoint)})
    if a.json:
        print(json.dumps(m))
        return
    print(f"{pred.net} on {a.data} ({m['split']}, n={m['n']}, threshold {pred.threshold:.3f})")
    print(f"F1 {m['f1']:.4f}  AUC {fmt(m['auc'])}  accuracy {m['accuracy']:.4f}  "
          f"precision {m['precision']:.4f}  recall {m['recall']:.4f}")
    print(f"confusion: TP {m['tp']}  FP {m['fp']}  TN {m['tn']}  FN {m['fn']}")
