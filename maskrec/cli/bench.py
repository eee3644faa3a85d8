"""``bench``: speed against baselines measured in the same run (README, Performance). A thin
command over the benchmark code, which owns the sections and the table."""
from __future__ import annotations

import json
import sys

from .. import bench
from .common import UserError


def add_arguments(s):
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--data", help="dataset for the train section (default: facemask-dev beside the repo "
                                  "if present, else the demo data)")
    s.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    s.add_argument("--only", metavar="SECTION,...",
                   help="sections of maskrec.bench.SECTIONS, comma-separated (default: all; an unknown "
                        "name lists them)")


def run(a):
    sections = [s for s in a.only.split(",") if s] if a.only else list(bench.SECTIONS)
    unknown = [s for s in sections if s not in bench.SECTIONS]
    if unknown:
        raise UserError(f"unknown bench section {', '.join(unknown)} (choose from {', '.join(bench.SECTIONS)})")
    res = bench.run(sections, a.data, a.quick, progress=lambda m: print(m, file=sys.stderr, flush=True))
    if a.json:
        print(json.dumps(res))
    else:
        m = res["machine"]
        print(f"{m['cpu']} ({m['cpus']} CPUs; {' '.join(m['flags'])})")
        print(f"torch {m['torch']}, {m['threads']} threads, {m['cpu_capability']}, bf16 {m['bf16']}; "
              f"data {res['data']}{' (quick)' if a.quick else ''}")
        print(bench.table(res["rows"]))
    return 0
