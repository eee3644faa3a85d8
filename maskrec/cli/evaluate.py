"""``evaluate CHECKPOINT --data DATA``: F1, AUC, accuracy and the confusion of a checkpoint at its
default operating point's threshold (or ``--operating-point NAME``'s), on the test split (or all
images of a dataset without one), and the operating points it carries."""
from __future__ import annotations

import json

from maskrec.infer.engines import ENGINES
from maskrec.infer.evaluate import score
from maskrec.infer.predictor import Predictor
from maskrec.core.metrics import at_threshold
from maskrec.infer.operating import rates
from maskrec.cli.common import add_engine_argument, add_split_argument, fmt, progress_bar


def add_arguments(s):
    s.add_argument("checkpoint")
    s.add_argument("--data", required=True)
    s.add_argument("--json", action="store_true", help="last line: one JSON object")
    add_engine_argument(s, ENGINES)
    add_split_argument(s)
    s.add_argument("--operating-point", metavar="NAME", help="judge at this operating point of the checkpoint "
                   "(default: its default); every point's rates are printed too")


def run(a):
    pred = Predictor.load(a.checkpoint, engine=a.engine, exact=True,  # the checkpoint's own scores
                          operating_point=a.operating_point)
    res = score(pred, a.data, progress_bar("decoding"), split=a.split)
    m = at_threshold(res.y, res.p, pred.threshold)
    points = {n: rates(res.y, res.p, o.threshold, o.band) for n, o in pred.operating_points.items()}
    m.update({"split": res.split, "net": pred.net, "checkpoint": str(a.checkpoint), "operating_point": pred.op.name,
              "operating_points": points})
    if a.json:
        print(json.dumps(m))
        return
    print(f"{pred.net} on {a.data} ({m['split']}, n={m['n']}, operating point {pred.op.name}, "
          f"threshold {pred.threshold:.3f})")
    print(f"F1 {m['f1']:.4f}  AUC {fmt(m['auc'])}  accuracy {m['accuracy']:.4f}  "
          f"precision {m['precision']:.4f}  recall {m['recall']:.4f}")
    print(f"confusion: TP {m['tp']}  FP {m['fp']}  TN {m['tn']}  FN {m['fn']}")
    for name, r in points.items():
        words = [f"{k.replace('_', ' ')} {v['k']}/{v['n']} = {v['rate']:.3f} ({v['ci95'][0]:.3f}-{v['ci95'][1]:.3f})"
                 for k, v in r.items()]
        print(f"{name}: " + ", ".join(words))
