"""The header scan: each image's size and format from its first bytes, and the dataset summary.

What the Dataset page and ``python -m maskrec scan`` show: counts per split and label, width and
height statistics, formats, and every skipped file with its reason. Only the dataset's items are
counted, one per image (for annotated scenes one per face): a scene face's jittered framings are
augmentation (``Dataset.views``), reported as a number beside the counts and never scanned. Nothing is decoded: a JPEG's
size comes from walking its segment markers (``_jpeg_header``), other formats from Pillow's
header parse, and a cut-off file from its missing end marker. Sizes are as shown (an EXIF turn of
90 degrees swaps them), as ``imaging.open_rgb`` will decode them. Results are cached per file (path,
size, mtime), so a rescan of an unchanged folder reads no image.

    info = scan(discover(path))   # {"images": rows, "summary": {...}, "dataset": ds less bad files}
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import struct
from collections import Counter
from pathlib import Path
from typing import Callable

from PIL import Image

from maskrec.core.atomic import atomic_write_text
from maskrec.config import cache_dir
from maskrec.core.errors import BadImage
from maskrec.core.imaging import MIN_SIDE, bomb_refusal, too_many_pixels
from maskrec.data.layouts import Dataset, Skipped

Progress = Callable[[int, int], None]

_TAIL_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _exif_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of IFD0 in a TIFF block (the body of a JPEG's Exif segment); 1 when absent."""
    if tiff[:2] not in (b"II", b"MM"):
        return 1
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(e + "I", tiff, 4)
    (n,) = struct.unpack_from(e + "H", tiff, ifd)
    for k in range(n):
        tag, typ, _, value = struct.unpack_from(e + "HHI4s", tiff, ifd + 2 + 12 * k)
        if tag == 0x0112:
            return struct.unpack_from(e + "H", value)[0] if typ == 3 else 1
    return 1


def _jpeg_header(head: bytes) -> tuple[int, int, int] | None:
    """(width, height, EXIF orientation) from a JPEG's first bytes, walking its segment markers;
    None when they do not read as a plain JPEG header (the caller then asks Pillow).

    Pillow's JpegImagePlugin parses every table on open; this reads two length fields per
    segment, which makes a scan of 24,000 files several times faster."""
    if head[:2] != b"\xff\xd8":
        return None
    i, orientation = 2, 1
    try:
        while i + 4 <= len(head):
            if head[i] != 0xFF:
                return None
            marker = head[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            (seg,) = struct.unpack_from(">H", head, i + 2)
            if marker == 0xE1 and head[i + 4:i + 10] == b"Exif\x00\x00":
                orientation = _exif_orientation(head[i + 10:i + 2 + seg])
            elif marker in _SOF:
                h, w = struct.unpack_from(">HH", head, i + 5)
                return (w, h, orientation) if w and h else None
            elif marker == 0xDA:  # scan data before any frame header: not a JPEG we can read
                return None
            i += 2 + seg
    except struct.error:
        return None
    return None


def _check_pixels(w: int, h: int) -> None:
    if Image.MAX_IMAGE_PIXELS is not None and w * h > Image.MAX_IMAGE_PIXELS:
        raise too_many_pixels(f"{w}x{h}", Image.MAX_IMAGE_PIXELS)


def probe(path: Path, size: int | None = None) -> tuple[int, int, str]:
    """(width, height, format) from the header alone; raises BadImage. Also catches cut-off files.
    ``size``: the file's size in bytes when the caller has already stat'ed it."""
    try:
        size = path.stat().st_size if size is None else size
        if size == 0:
            raise BadImage("empty file")
        fd = os.open(path, os.O_RDONLY)  # two preads, no buffered file object: cheap per file
        try:
            head = os.pread(fd, 65536, 0)
            tail = os.pread(fd, 64, max(0, size - 64))
        finally:
            os.close(fd)
        fast = _jpeg_header(head)
        if fast:
            w, h, orientation = fast
            fmt = "JPEG"
        else:
            with Image.open(path) as img:
                w, h, fmt = img.width, img.height, img.format or "?"
                _check_pixels(w, h)  # before getexif, which decodes a whole PNG
                orientation = img.getexif().get(0x0112, 1) if fmt in ("JPEG", "PNG", "WEBP", "TIFF") else 1
    except BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise BadImage("not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise bomb_refusal(e) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(str(e) or type(e).__name__) from None
    _check_pixels(w, h)
    if min(w, h) < MIN_SIDE:
        raise BadImage(f"too small ({w}x{h}, need at least {MIN_SIDE} px a side)")
    marker = _TAIL_MARKERS.get(fmt)
    if marker and marker not in tail:
        raise BadImage("truncated file (no end-of-image marker)")
    if orientation in (5, 6, 7, 8):  # EXIF says rotated 90 degrees: report the size as shown
        w, h = h, w
    return w, h, fmt


def scan(ds: Dataset, progress: Progress | None = None, use_cache: bool = True,
         cache: Path | None = None) -> dict:
    """Per-image header facts plus a summary. Cached per file (path, size, mtime) under ``cache``
    (default ``config.cache_dir()``), so a rescan of an unchanged folder reads no image.

    ``ds`` is left as it is; ``"dataset"`` is it less the files that failed the probe (moved to its
    ``skipped``), and the summary describes that one."""
    cache_file = (cache or cache_dir()) / "scan" / (hashlib.sha1(str(ds.root.resolve()).encode()).hexdigest()[:16] + ".json")
    old: dict = {}
    if use_cache and cache_file.exists():
        try:
            old = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            old = {}
    rows, new, bad = [], {}, []
    total = len(ds.items)
    for i, it in enumerate(ds.items):
        st = it.path.stat()
        key = f"{it.path}|{st.st_size}|{st.st_mtime_ns}"
        rec = old.get(key)
        if rec is None:
            try:
                w, h, fmt = probe(it.path, st.st_size)
                rec = [w, h, fmt, st.st_size, None]
            except BadImage as e:
                rec = [0, 0, "", st.st_size, str(e)]
        new[key] = rec
        if rec[4]:
            bad.append(Skipped(str(it.path), rec[4]))
        else:
            rows.append({"path": str(it.path), "split": it.split, "label": it.label,
                         "width": rec[0], "height": rec[1], "format": rec[2], "bytes": rec[3]})
        if progress and (i % 200 == 0 or i == total - 1):
            progress(i + 1, total)
    if new != old:
        atomic_write_text(cache_file, json.dumps(new))
    scanned = ds.without(bad)
    return {"images": rows, "summary": summarize(scanned, rows), "dataset": scanned}


def summarize(ds: Dataset, rows: list[dict]) -> dict:
    def stats(vals):
        if not vals:
            return {}
        return {"min": min(vals), "median": statistics.median(vals), "max": max(vals),
                "mean": round(statistics.fmean(vals), 1)}

    ws = [r["width"] for r in rows]
    hs = [r["height"] for r in rows]
    short = [min(w, h) for w, h in zip(ws, hs)]
    n = max(len(rows), 1)
    return {
        "root": str(ds.root), "layout": ds.layout, "held_out": ds.held_out,
        "counts": ds.counts(), "total": len(ds.items),
        "training_views": sum(len(vs) for _, vs in ds.views),  # jittered framings: augmentation, not counted
        "formats": dict(Counter(r["format"] for r in rows)),
        "width": stats(ws), "height": stats(hs),
        "share_shorter_side_ge_32": round(sum(s >= 32 for s in short) / n, 3),
        "share_shorter_side_lt_128": round(sum(s < 128 for s in short) / n, 3),
        "skipped": [{"path": s.path, "reason": s.reason} for s in ds.skipped],
    }
