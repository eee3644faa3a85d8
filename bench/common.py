"""What every bench section shares: a table row (ours, baseline, their ratio), the timing helpers,
and the name of the machine a figure was measured on."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from maskrec.infer.probe import cpu_name
from maskrec.infer.engines import cpu_flags

# python -m bench / -m evaluation.baselines in a child process need the repo's top on their path
REPO = Path(__file__).resolve().parent.parent


def row(section: str, what: str, ours: float, base: float, unit: str, higher_is_better: bool,
        goal: float | None = None, note: str = "") -> dict:
    """One line of the table; ratio > 1 means ours is better whichever way the unit runs."""
    ratio = (ours / base if higher_is_better else base / ours) if ours and base else None
    met = None if goal is None or ratio is None else bool(ratio >= goal)
    return {"section": section, "what": what, "ours": ours, "baseline": base, "unit": unit,
            "ratio": ratio, "goal": goal, "met": met, "note": note}


def table(rows: list[dict]) -> str:
    lines = [f"{'section':7} {'what':58} {'ours':>9} {'baseline':>9} {'unit':8} {'ratio':>7} {'goal':>6}  note",
             "-" * 120]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        goal = f">={r['goal']:g}x" if r["goal"] else ""
        if r["met"] is not None:
            goal += " ok" if r["met"] else " MISS"
        lines.append(f"{r['section']:7} {r['what'][:58]:58} {r['ours']:9.3f} {r['baseline']:9.3f} "
                     f"{r['unit']:8} {ratio:>7} {goal:>6}  {r['note']}")
    return "\n".join(lines)


# ---------------------------------------------------------------- timing

def median_ms(fn, n: int) -> float:
    """Median ms of n calls of fn, after one untimed call (which builds kernels and engines)."""
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts))


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """(wall seconds, stdout) of a child process that must succeed."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, p.stdout


def child_env(**extra: str) -> dict:
    """os.environ for a child that imports bench or evaluation: the repo's top first on PYTHONPATH."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def faces_for(size: int, n: int) -> list[np.ndarray]:
    """n random (H, W, 3) uint8 'faces' of 40..160 px a side, the same every run."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (rng.integers(40, 160), rng.integers(40, 160), 3), dtype=np.uint8)
            for _ in range(n)]


# ---------------------------------------------------------------- the machine

# the CPU flags that decide the kernels torch can use (as lscpu spells them)
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


def cpu_model() -> tuple[str, list[str]]:
    """The CPU's model name and its SIMD flags among SIMD_FLAGS, for naming the machine a figure
    was measured on (what the code runs is decided by torch's own capability check, not by these)."""
    flags = cpu_flags()
    return cpu_name(), [f for f in SIMD_FLAGS if f in flags]


def machine() -> dict:
    name, flags = cpu_model()
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "cpu": name, "flags": flags, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}
