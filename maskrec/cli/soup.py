"""``soup CHECKPOINT|RUN ... --out FILE``: one checkpoint whose weights are the mean of several
fine-tunes of one net (``maskrec.train.soup``), its BatchNorm statistics measured again on the training
faces. Prints the soup's validation figures at threshold 0.5 (the test split's are in the file, for
after a choice); pick its threshold with ``threshold FILE --data DATA --split val``."""
from __future__ import annotations

import json
from pathlib import Path

from maskrec.models.checkpoint import save
from maskrec.train.soup import make_soup
from maskrec.cli.common import UserError, fmt, progress_bar


def add_arguments(s):
    s.add_argument("ingredients", nargs="+", metavar="CHECKPOINT",
                   help="checkpoints of one net, or run folders (their last.pt); at least two")
    s.add_argument("--out", required=True, help="the soup's checkpoint file")
    s.add_argument("--data", help="where the ingredients' data lies (default: what their config says)")
    s.add_argument("--seed", type=int, default=0, help="seeds the dropout draws while BatchNorm is measured")
    s.add_argument("--json", action="store_true", help="one JSON object")


def run(a):
    out = Path(a.out)
    if out.exists():
        raise UserError(f"{out} exists; a soup does not overwrite a checkpoint, name another --out")
    bar = progress_bar("soup")
    ck = make_soup(a.ingredients, a.data, a.seed, lambda p: bar(p.batch, p.batches, p.phase))
    save(out, ck)
    m = ck["metrics"]
    val = {k[4:]: v for k, v in m.items() if k.startswith("val_")}
    if a.json:
        print(json.dumps({"out": str(out), "net": ck["net"], "ingredients": len(ck["soup"]["ingredients"]),
                          "bn_images": ck["soup"]["bn_images"], "val": val}))
        return
    print(f"{ck['net']} soup of {len(ck['soup']['ingredients'])} -> {out} "
          f"(BatchNorm measured on {ck['soup']['bn_images']} training faces)")
    if val:
        print(f"validation at 0.5: F1 {val['f1']:.4f}  AUC {fmt(val['auc'])}  loss {val['loss']:.4f}")
    else:
        print("no validation split (the ingredients trained without --val-fraction)")
