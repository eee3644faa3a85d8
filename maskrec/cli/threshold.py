"""``threshold CHECKPOINT --data VAL``: pick the checkpoint's decision threshold on a dataset (its
test split, or all of it) and save it into the checkpoint, as the Evaluate page's picker does.
Pick it on data the net did not train on and that you will not report on (a validation folder),
so the figures you report stay honest."""
from __future__ import annotations

import json

from ..engines import ENGINES
from ..evaluate import score
from ..inference import Predictor, set_threshold
from ..metrics import at_threshold, best_f1_threshold, threshold_for_fpr
from .common import add_engine_argument, add_split_argument, progress_bar


def add_arguments(s):
    s.add_argument("checkpoint")
    s.add_argument("--data", required=True, help="dataset to pick it on (its test split, or all of it)")
    how = s.add_mutually_exclusive_group()
    how.add_argument("--max-fpr", type=float, help="lowest threshold whose rate of bare faces called mask stays <= this")
    how.add_argument("--best-f1", action="store_true", help="the threshold of best F1 (the default)")
    s.add_argument("--dry-run", action="store_true", help="print, do not save")
    add_split_argument(s)
    s.add_argument("--json", action="store_true")
    add_engine_argument(s, ENGINES)


def run(a):
    pred = Predictor.load(a.checkpoint, engine=a.engine, exact=True)  # the checkpoint's own scores
    res = score(pred, a.data, progress_bar("decoding"), split=a.split)
    on = f"{a.data}{' (its validation split, ' + str(len(res.y)) + ' images)' if res.split == 'val' else ''}"
    if a.max_fpr is not None:
        t, how = threshold_for_fpr(res.y, res.p, a.max_fpr), f"false-positive rate <= {a.max_fpr} on {on}"
    else:
        t, how = best_f1_threshold(res.y, res.p), f"best F1 on {on}"
    m = at_threshold(res.y, res.p, t)
    if not a.dry_run:
        set_threshold(a.checkpoint, t, how)
    out = {"threshold": t, "how": how, "saved": not a.dry_run, **m}
    print(json.dumps(out) if a.json else
          f"threshold {t:.4f} ({how}){'' if a.dry_run else ', saved into ' + str(a.checkpoint)}; there: "
          f"F1 {m['f1']:.4f}, bare faces called mask {m['fp']}/{m['fp'] + m['tn']}, masks found {m['tp']}/{m['tp'] + m['fn']}")
