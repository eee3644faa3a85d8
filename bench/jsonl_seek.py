"""``GET /v1/states?since=`` after weeks of cameras: the last hour read from about then on, against a whole read.

    python bench/jsonl_seek.py [--days 14] [--cameras 4] [--repeat 5]

Writes a states.jsonl as a camera server writes it (a line per camera every 5 s, times a few seconds out of
order) for ``--days`` days of ``--cameras`` cameras into a temporary folder, then times what the endpoint does
for the last hour and the last day: every line parsed then filtered (the baseline, as before), and
``maskrec.core.jsonl.read`` (bisect to SLACK_S before the hour, parse from there), the same filter after;
checks both return the same rows and prints the medians, the ratio and the CPU.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from maskrec.core import jsonl  # noqa: E402
from maskrec.infer.probe import cpu_name  # noqa: E402
from maskrec.serve.events_api import select  # noqa: E402


def write_states(path: Path, days: float, cameras: int) -> float:
    rng, t0 = random.Random(0), time.time() - days * 86400
    n = int(days * 86400 / 5)
    with open(path, "w") as fh:
        for i in range(n):
            for c in range(cameras):
                people = rng.randint(0, 6)
                masked = rng.randint(0, people)
                fh.write(json.dumps({"t": t0 + i * 5 + rng.uniform(-3, 3), "camera": f"cam{c}", "people": people,
                                     "masked": masked, "bare": people - masked, "unsure": 0,
                                     "masked_share": masked / people if people else None, "frames": i * 25,
                                     "fps": 5.0, "model": "net2.pt@street"}) + "\n")
    return t0 + n * 5


def whole(path: Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def timed(fn, repeat: int) -> tuple[float, object]:
    times, got = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), got


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "states.jsonl"
        end = write_states(path, a.days, a.cameras)
        mb = path.stat().st_size / 1e6
        print(f"{cpu_name()}; states.jsonl of {a.days:g} days x {a.cameras} cameras: {mb:.0f} MB")
        for label, span in (("last hour", 3600), ("last day", 86400)):
            since = end - span
            base_s, base = timed(lambda: select(whole(path), "cam0", None, since, None), a.repeat)
            seek_s, got = timed(lambda: select(jsonl.read(path, since), "cam0", None, since, None), a.repeat)
            assert got == base, "the two reads disagree"
            print(f"  {label:<9} ({len(got):>6} rows of cam0): whole read {1000 * base_s:8.1f} ms, "
                  f"from the offset {1000 * seek_s:7.1f} ms: {base_s / seek_s:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
