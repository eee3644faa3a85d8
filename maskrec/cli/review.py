"""``review DATA [--checkpoint CKPT] [--folds K] [--epochs E] [--json]``: the images whose labels
look wrong, most likely wrong first (``maskrec.train.suspects``), judged on the folder's own labels.

Without --checkpoint every image gets an out-of-sample P(mask) from K-fold cross-validation of a
quick Net1; the result is cached per dataset, so a second call prints at once. --json: one JSON
object a line, {"file", "label", "p_mask", "quality", "reason"}. Record what you decide with
``relabel``."""
from __future__ import annotations

import json

from maskrec.data import discover
from maskrec.train.suspects import EPOCHS, FOLDS, find
from maskrec.cli.common import UserError, progress_bar, stop_on_signals


def add_arguments(s):
    s.add_argument("data", help="dataset folder or .zip")
    s.add_argument("--checkpoint", help="score with this checkpoint instead of cross-validating a quick Net1")
    s.add_argument("--folds", type=int, default=FOLDS, help=f"cross-validation folds (default {FOLDS})")
    s.add_argument("--epochs", type=int, default=EPOCHS, help=f"Net1 epochs a fold (default {EPOCHS})")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    s.add_argument("--limit", type=int, default=0, help="print only the first N suspects (0: all)")
    s.add_argument("--json", action="store_true", help="one JSON object a line")


def run(a):
    ds = discover(a.data, overrides=False)  # the labels the files carry: what the review judges
    bar = progress_bar("decoding")
    shown = {"decode": "decoding", "fold": "cross-validating", "duplicates": "near duplicates", "rank": "ranking"}
    with stop_on_signals() as stop:
        found = find(ds, a.checkpoint, a.folds, a.epochs, a.seed, a.device, should_stop=stop.is_set,
                     progress=lambda p: bar(p.done, p.total, shown[p.phase] + (f" fold {p.fold}/{p.folds}"
                                                                             if p.fold else "")))
    if found is None:
        raise UserError("stopped before the suspects were found")
    if a.limit > 0:
        found = found[:a.limit]
    for s in found:
        if a.json:
            print(json.dumps(s._asdict()))
        else:
            print(f"{s.quality:.3f}  P(mask) {s.p_mask:.3f}  label {s.label}  {s.file}  ({s.reason})")
    if not a.json:
        print(f"{len(found)} suspect(s) in {len(ds.items)} images")
