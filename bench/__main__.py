"""python -m bench [--json] [--quick] [--data DIR] [--only SECTION,...]: the speed benchmark
(``python -m maskrec bench`` runs this, with the same flags and output). Exit status 0, or 2 with
one ``error:`` line for an unknown section or a dataset that cannot be used; 130 on Ctrl-C.

    python -m bench _load    the busy section's training load (frame.train_load), until killed
"""
from __future__ import annotations

import argparse
import json
import sys

from bench.common import table
from bench.sections.frame import train_load
from bench.suite import SECTIONS, run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="speed against baselines measured in "
                                "the same run (see docs/guide.md, Performance)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--data", help="dataset for the train section (default: facemask-dev beside the repo "
                                  "if present, else the demo data)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    p.add_argument("--only", metavar="SECTION,...",
                   help=f"sections, comma-separated, of {','.join(SECTIONS)} (default: all)")
    return p


def report(res: dict, quick: bool) -> str:
    m = res["machine"]
    return "\n".join([f"{m['cpu']} ({m['cpus']} CPUs; {' '.join(m['flags'])})",
                      f"torch {m['torch']}, {m['threads']} threads, {m['cpu_capability']}, bf16 {m['bf16']}; "
                      f"data {res['data']}{' (quick)' if quick else ''}",
                      table(res["rows"])])


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    sections = [s for s in a.only.split(",") if s] if a.only else list(SECTIONS)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        print(f"error: unknown bench section {', '.join(unknown)} (choose from {', '.join(SECTIONS)})",
              file=sys.stderr)
        return 2
    try:
        res = run(sections, a.data, a.quick, progress=lambda m: print(m, file=sys.stderr, flush=True))
    except (FileNotFoundError, ValueError) as e:  # an unusable --data (DataError), said as maskrec says it
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(res) if a.json else report(res, a.quick))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["_load"]:
        train_load()
    sys.exit(main())
