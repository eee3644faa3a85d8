"""``scan DATA``: counts, image sizes, formats and skipped files of a dataset."""
from __future__ import annotations

import json

from maskrec.data import discover, scan
from maskrec.cli.common import progress_bar


def add_arguments(s):
    s.add_argument("data", help="dataset folder or .zip")
    s.add_argument("--json", action="store_true", help="print one JSON object")


def run(a):
    ds = discover(a.data)
    info = scan(ds, progress=progress_bar("scanning"))
    s = info["summary"]
    if a.json:
        print(json.dumps(s))
        return
    c = s["counts"]
    print(f"{s['root']}  layout: {s['layout']}" + ("  (no test split: 25% held out, stratified, seed 0)" if s["held_out"] else ""))
    print(f"{'split':<6} {'covered(1)':>10} {'bare(0)':>8} {'total':>6}")
    for split in ("train", "test"):
        print(f"{split:<6} {c[split][1]:>10} {c[split][0]:>8} {c[split][0] + c[split][1]:>6}")
    w, h = s["width"], s["height"]
    print(f"width  min/median/max {w.get('min')}/{w.get('median')}/{w.get('max')}   "
          f"height {h.get('min')}/{h.get('median')}/{h.get('max')}")
    print(f"shorter side >= 32 px: {s['share_shorter_side_ge_32']:.1%}   < 128 px: {s['share_shorter_side_lt_128']:.1%}"
          f"   formats: {s['formats']}")
    print(f"skipped: {len(s['skipped'])}")
    for sk in s["skipped"]:
        print(f"  {sk['path']}: {sk['reason']}")
