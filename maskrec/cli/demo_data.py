"""``demo-data OUT``: write the built-in demo dataset in the report's layout."""
from __future__ import annotations

from pathlib import Path

from maskrec.data.synth import generate
from maskrec.cli.common import progress_bar


def add_arguments(s):
    s.add_argument("out", help="folder to write train/ and test/ into")
    s.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    s.add_argument("--seed", type=int, default=0)


def run(a):
    out = generate(Path(a.out), n=a.n, seed=a.seed, progress=progress_bar("drawing"))
    c = out["train"], out["test"]
    print(f"wrote {a.n} demo images to {a.out}: train {c[0][1]} covered / {c[0][0]} bare, "
          f"test {c[1][1]} covered / {c[1][0]} bare")
