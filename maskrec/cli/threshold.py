"""``threshold CHECKPOINT --data VAL``: pick an operating point of the checkpoint on a dataset and save
it into the checkpoint (``maskrec.infer.operating``), as the Evaluate page's picker does. Pick it on data the
net did not train on and that you will not report on (``--split val-scenes``: the declared validation
scenes' faces), so the figures you report stay honest.

    threshold net1.pt --data DEV:SCENES --split val-scenes --max-bare-mask 0.03 --unsure 0.05 --name street
"""
from __future__ import annotations

import json
from dataclasses import replace

from maskrec.infer.engines import ENGINES
from maskrec.infer.evaluate import score
from maskrec.infer.predictor import Predictor, set_operating_point
from maskrec.core.metrics import at_threshold, best_f1_threshold
from maskrec.infer.operating import OperatingPoint, by_cost, capped, rates, unsure_band
from maskrec.cli.common import UserError, add_engine_argument, add_split_argument, progress_bar


def add_arguments(s):
    s.add_argument("checkpoint")
    s.add_argument("--data", required=True, help="dataset to pick it on (its test split, or all of it)")
    how = s.add_mutually_exclusive_group()
    how.add_argument("--max-bare-mask", "--max-fpr", dest="max_bare_mask", type=float, metavar="RATE",
                     help="the lowest threshold that calls at most this share of bare faces mask, e.g. 0.03")
    how.add_argument("--cost", metavar="BARE_AS_MASK,MASKED_MISSED",
                     help="least total cost: the cost of a bare face called mask and of a masked face missed, e.g. 10,1")
    how.add_argument("--best-f1", action="store_true", help="the threshold of best F1 (the default)")
    s.add_argument("--unsure", type=float, default=0.0, metavar="SHARE",
                   help="an unsure band around the threshold holding at most this share of the faces (default 0: none)")
    s.add_argument("--name", default=None, help="the operating point's name (default: street with "
                   "--split val-scenes, crops with val-crops, else saved)")
    s.add_argument("--not-default", action="store_true", help="save it beside the default, not as the default")
    s.add_argument("--dry-run", action="store_true", help="print, do not save")
    add_split_argument(s)
    s.add_argument("--json", action="store_true")
    add_engine_argument(s, ENGINES)


def _rate(r: dict) -> str:
    lo, hi = r["ci95"]
    return f"{r['k']}/{r['n']} = {r['rate']:.3f} (95% CI {lo:.3f}-{hi:.3f})"


def run(a):
    if not 0 <= a.unsure < 0.5:
        raise UserError(f"--unsure must be in [0, 0.5), got {a.unsure}")
    name = a.name or {"val-scenes": "street", "val-crops": "crops"}.get(a.split, "saved")
    pred = Predictor.load(a.checkpoint, engine=a.engine, exact=True)  # the checkpoint's own scores
    res = score(pred, a.data, progress_bar("decoding"), split=a.split)
    on = f"{a.data} ({res.split} split, {len(res.y)} faces)"
    try:
        if a.max_bare_mask is not None:
            op = capped(res.y, res.p, a.max_bare_mask, name, on)
        elif a.cost:
            try:
                c_bare, c_missed = (float(v) for v in a.cost.split(","))
            except ValueError:
                raise UserError(f"--cost takes two numbers, e.g. 10,1; got {a.cost!r}") from None
            op = by_cost(res.y, res.p, c_bare, c_missed, name, on)
        else:
            t = best_f1_threshold(res.y, res.p)
            op = OperatingPoint(name, t, None, f"best F1 on {on}", rates(res.y, res.p, t))
    except ValueError as e:
        raise UserError(str(e)) from None
    if a.unsure:
        op = op.with_band(unsure_band(res.p, op.threshold, a.unsure))
        op = replace(op, how=op.how + f"; unsure band holding <= {a.unsure:g} of the faces",
                     picked_on=rates(res.y, res.p, op.threshold, op.band))
    m = at_threshold(res.y, res.p, op.threshold)
    if not a.dry_run:
        set_operating_point(a.checkpoint, op, default=not a.not_default)
    out = {"operating_point": op.name, "threshold": op.threshold, "band": op.band, "how": op.how,
           "saved": not a.dry_run, "default": not a.not_default, **op.picked_on, **m}
    if a.json:
        print(json.dumps(out))
        return 0
    r = op.picked_on
    band = f", unsure {op.band[0]:.4f}-{op.band[1]:.4f}" if op.band else ""
    print(f"operating point {op.name}: threshold {op.threshold:.4f}{band} ({op.how})"
          f"{'' if a.dry_run else ', saved into ' + str(a.checkpoint)}\n"
          f"  bare faces called mask {_rate(r['bare_as_mask'])}\n"
          f"  masked faces missed    {_rate(r['masked_missed'])}\n"
          f"  unsure                 {_rate(r['unsure'])}\n"
          f"  F1 {m['f1']:.4f} (without the band)")
    return 0
