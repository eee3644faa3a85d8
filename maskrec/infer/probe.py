"""Which engine is fastest for one checkpoint on this machine: a short probe, run once per CPU and
checkpoint, its result kept in the cache.

    got = pick(model, 32, calibration=cal)       # Picked: name, engine (built, when it probed), ms_per_face
    got = pick(model, 32, cal, exact=True)       # the fastest fp32 engine, from the same measurements

The probe builds every default-eligible engine that runs here (``engines.eligible``; the int8 one
calibrated on ``calibration``, the checkpoint's own faces), calls each on ``PROBE_BATCH`` faces with
one thread (what a frame's few faces get, see ``engines.threads_for``): one warm-up, then up to
``PROBE_CALLS`` timed calls within ``PROBE_BUDGET_S``; it keeps the median ms per face and picks
the fastest with ``engines.choose``. Measuring beats a fixed order: the same engines ranked
differently on an AVX-512 EPYC and on an AMX Xeon with other work on its cores.

The result is written to ``cache/engines/probe-<cpu>-<weights>.json``. The CPU key hashes what
changes the ranking: the CPU model name, the instruction set torch dispatches to
(``ATEN_CPU_CAPABILITY``), whether oneDNN has bf16 kernels (``ONEDNN_MAX_CPU_ISA``), the core count
and the torch and onnxruntime versions; the checkpoint key is its weights' digest (a new threshold
saved into the file keeps it). A later Predictor of the same checkpoint here reads the file and
builds only the winner.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from maskrec.infer import engines
from maskrec.core.atomic import atomic_write_text
from maskrec.infer.calibration import Calibration
from maskrec.models.checkpoint import weights_digest
from maskrec.config import cache_dir

PROBE_BATCH = 4  # faces a call: a frame's few faces
PROBE_CALLS = 5  # timed calls an engine, after one warm-up
# Seconds of timed calls an engine at most (at least 3 calls): Net2 in fp32 on 2 busy cores takes
# ~0.1 s a call, and the probe should stay a small part of loading a checkpoint.
PROBE_BUDGET_S = 0.3


@dataclass(frozen=True, eq=False)
class Picked:
    name: str
    ms_per_face: dict[str, float]  # every engine the probe timed
    probed: bool  # True: measured just now; False: read from the cache
    engine: engines.Engine | None = None  # the winner, already built, when it probed
    failed: dict[str, str] = field(default_factory=dict)  # engines that would not build here, and why


def measure(eng: engines.Engine, size: int, batch: int = PROBE_BATCH, calls: int = PROBE_CALLS,
            budget_s: float = PROBE_BUDGET_S) -> float:
    """Median ms per face of ``eng`` on ``batch`` noise faces, one thread."""
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    eng(x, threads=1)  # warm-up: sessions, oneDNN primitives and caches are made on the first call
    times: list[float] = []
    end = time.perf_counter() + budget_s
    while len(times) < calls and (len(times) < 3 or time.perf_counter() < end):
        t = time.perf_counter()
        eng(x, threads=1)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000 / batch


def cpu_key() -> dict:
    """What makes engines rank differently on another machine (see the module docstring)."""
    try:
        import onnxruntime as ort  # optional: its version matters only where it is installed
        ort_version = ort.__version__
    except ImportError:
        ort_version = None
    return {"cpu": cpu_name(), "capability": torch.backends.cpu.get_cpu_capability(),
            "bf16": engines.bf16_supported(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "onnxruntime": ort_version}


def cache_path(model: nn.Module, input_size: int) -> Path:
    cpu = hashlib.sha256(json.dumps(cpu_key(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "engines" / f"probe-{cpu}-{weights_digest(model)}-{input_size}.json"


def pick(model: nn.Module, input_size: int, calibration: Calibration | None = None, exact: bool = False,
         timer: Callable[[engines.Engine, int], float] = measure) -> Picked:
    """The fastest default-eligible engine (``exact``: fp32 only) for ``model`` here: measured by
    ``timer`` (engine, input size) -> ms per face the first time, then read from the cache."""
    names = engines.eligible()
    path = cache_path(model, input_size)
    known = _read(path)
    if known is not None and set(names) <= set(known["ms_per_face"]) | set(known["failed"]):
        timings = {n: t for n, t in known["ms_per_face"].items() if n in names}
        return Picked(engines.choose(timings=timings, runs_here=names, exact=exact), timings, False,
                      failed=known["failed"])
    built: dict[str, engines.Engine] = {}
    timings, failed = {}, {}
    start = time.perf_counter()
    for name in sorted(names, key=lambda n: n != "onnx"):  # "onnx" first: int8 quantises its export
        try:
            fp32 = built.get("onnx")
            built[name] = engines.make(name, model, input_size, calibration=calibration,
                                       onnx_graph=getattr(fp32, "graph", None))
            timings[name] = round(timer(built[name], input_size), 4)
        except Exception as e:  # an engine that cannot build here is left out, and the file says why
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            built.pop(name, None)
    atomic_write_text(path, json.dumps({
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": cpu_key(),
        "batch": PROBE_BATCH, "threads": 1, "ms_per_face": timings, "failed": failed,
        # builds included: an int8 calibration is most of it (Net1 ~2.7 s in all on 2 busy cores)
        "seconds": round(time.perf_counter() - start, 2)}, indent=1))
    name = engines.choose(timings=timings, runs_here=list(timings), exact=exact)
    return Picked(name, timings, True, built.get(name), failed)


def _read(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text())
        return {"ms_per_face": dict(d["ms_per_face"]), "failed": dict(d.get("failed", {}))}
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not probed yet on this machine, or a damaged file: probe again


def cpu_name() -> str:
    # lscpu's "Model name", from /proc/cpuinfo (Linux); elsewhere what platform knows
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
