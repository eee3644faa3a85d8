"""startup: wall time of ``python -m maskrec --help`` and ``python -m maskrec models`` (each a
fresh process, median of 5 runs; 3 with --quick) against ``python -c "import torch"`` measured in
the same run: a CLI that imports torch, scikit-learn or onnxruntime before it knows the command
pays at least that. The bare interpreter (``python -c pass``) is in the note: what no start-up
can go under. The issue's goal: --help under 1 s on a quiet machine."""
from __future__ import annotations

import sys

import numpy as np

from bench.common import child_env, row, timed

COMMANDS = (("python -m maskrec --help", ["-m", "maskrec", "--help"]),
            ("python -m maskrec models", ["-m", "maskrec", "models"]))
IMPORT_TORCH = ["-c", "import torch"]
BARE = ["-c", "pass"]


def bench_startup(quick: bool) -> list[dict]:
    runs, env = (3 if quick else 5), child_env()
    times = {}
    for _ in range(runs):  # interleaved rounds: a burst of load elsewhere falls on every command alike
        for name, args in (("bare", BARE), ("torch", IMPORT_TORCH)) + COMMANDS:
            times.setdefault(name, []).append(timed([sys.executable, *args], env)[0])
    med = {k: float(np.median(v)) for k, v in times.items()}
    rows = []
    for name, _ in COMMANDS:
        s = med[name]
        goal = f"; goal < 1 s: {'met' if s < 1.0 else 'missed'}" if "--help" in name else ""
        rows.append(row("startup", f"{name}, fresh process (median of {runs})", s, med["torch"], "s", False,
                        None, f"baseline: python -c 'import torch'; bare python {med['bare']:.3f} s, "
                              f"{s - med['bare']:+.3f} s over it{goal}"))
    return rows
