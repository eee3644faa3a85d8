"""The whole bench: every section in order, each figure next to a baseline measured in the same run.

    run(["step"]) -> {"machine": ..., "data": ..., "quick": ..., "rows": [{"what", "ours", "baseline", "ratio", ...}]}

The machine may be shared, so read ratios rather than seconds: each pair is measured back to back,
the faster of repeated rounds is kept for the short sections (the round least disturbed by others).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from maskrec.config import DEV_DATA, REPO_ROOT
from maskrec.data.synth import ensure_demo_data

from bench.common import machine
from bench.sections.frame import bench_busy, bench_frame
from bench.sections.infer import bench_infer
from bench.sections.scan import bench_scan
from bench.sections.startup import bench_startup
from bench.sections.step import bench_step
from bench.sections.train import bench_train
from bench.sections.tta import bench_tta
from bench.sections.video import bench_video

SECTIONS = ("startup", "train", "step", "infer", "tta", "frame", "busy", "scan", "video")


def shipped_checkpoints() -> dict[str, Path]:
    """net -> checkpoints/<net>.pt for the shipped ones present; the sections that need one skip without."""
    ckpts = {n: REPO_ROOT / "checkpoints" / f"{n}.pt" for n in ("net1", "net2")}
    return {n: p for n, p in ckpts.items() if p.exists()}


def run(sections=SECTIONS, data: str | None = None, quick: bool = False, work: Path | None = None,
        progress=lambda msg: None) -> dict:
    data = data or (str(DEV_DATA) if (DEV_DATA / "train").is_dir() else str(ensure_demo_data()))
    ckpts = shipped_checkpoints()
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="maskrec-bench-")) if own else work
    rows = []
    try:
        for s in sections:
            progress(f"bench {s} ...")
            if s == "startup":
                rows += bench_startup(quick)
            elif s == "train":
                rows += bench_train(data, quick, work)
            elif s == "step":
                rows += bench_step(quick)
            elif s == "infer" and ckpts:
                rows += bench_infer(quick, ckpts)
            elif s == "tta" and ckpts:
                rows += bench_tta(quick, ckpts)
            elif s == "frame" and "net1" in ckpts:
                rows += bench_frame(quick, ckpts["net1"])
            elif s == "busy" and "net1" in ckpts:
                rows += bench_busy(quick, ckpts)
            elif s == "scan":
                rows += bench_scan(2400 if quick else 24_000, work)
            elif s == "video" and "net1" in ckpts:
                rows += bench_video(quick, ckpts["net1"], work)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return {"machine": machine(), "data": data, "quick": quick, "rows": rows}
