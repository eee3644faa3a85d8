"""scan: header scan of 24,000 generated images (cold and cached) against decoding every file."""
from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from maskrec.data import discover, open_rgb, scan

from bench.common import row


def make_scan_set(root: Path, n: int) -> None:
    """n JPEG files in the report layout, sizes 24..400 px (64 distinct encodings reused)."""
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(64):
        w, h = (int(v) for v in rng.integers(24, 400, 2))
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=85)
        blobs.append(buf.getvalue())
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        split = "test" if i % 4 == 3 else "train"
        (root / split / f"{i:06d}_{i % 2}.jpg").write_bytes(blobs[i % len(blobs)])


def bench_scan(n: int, work: Path) -> list[dict]:
    root = work / f"scan-{n}"
    if not (root / "test").is_dir():
        make_scan_set(root, n)
    cache = work / "scan-cache"
    shutil.rmtree(cache, ignore_errors=True)
    t0 = time.perf_counter()
    ds = discover(root)
    for it in ds.items:
        open_rgb(it.path)  # full decode, like any loader that opens every file
    decode_s = time.perf_counter() - t0
    times = []
    for _ in range(2):  # cold, then cached
        t0 = time.perf_counter()
        scan(discover(root), cache=cache)
        times.append(time.perf_counter() - t0)
    return [row("scan", f"scan {n:,} images (cold)", times[0], decode_s, "s", False, 10.0),
            row("scan", f"scan {n:,} images (cached)", times[1], decode_s, "s", False, None,
                f"goal < 5 s: {'met' if times[1] < 5 else 'missed'}")]
