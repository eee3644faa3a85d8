"""Datasets: find images in either layout, decode them once, keep them as uint8 tensors.

Layouts (a folder, or a ``.zip`` of one):

1. the report's: ``train/`` and ``test/`` holding ``<id>_<label>.<ext>`` (1 = covered, 0 = bare);
2. class folders (``with_mask``/``without_mask``, ``WithMask``/``WithoutMask``, ``mask``/``no_mask``,
   ``1``/``0``), at the top or inside ``train/`` and ``test/`` (``val``/``validation`` count as test).

Without a test split a stratified, seeded 25% is held out. Bad files are skipped and listed with a
reason, never raised. Use::

    ds = discover("path/to/data")           # Dataset: items, skipped, layout
    info = scan(ds)                          # header-only sizes/formats, cached
    X, y = load_split(ds, "train", size=32)  # (N, 3, 32, 32) uint8, (N,) int64; decoded once, cached
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import statistics
import struct
import warnings
import zipfile
from collections import Counter
from contextlib import nullcontext
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps, JpegImagePlugin

from .atomic import atomic_write, atomic_write_text
from .config import DataConfig, cache_dir

PREPROCESSING_VERSION = 1  # bump when to_input changes, so caches rebuild
MIN_SIDE = 8  # smaller images (e.g. 1x1 placeholders) carry no face
SPLIT_NAMES = {"train": "train", "training": "train", "test": "test", "testing": "test",
               "val": "test", "valid": "test", "validation": "test"}
CLASS_FOLDERS = {"withmask": 1, "withmasks": 1, "mask": 1, "masked": 1, "masks": 1, "covered": 1,
                 "1": 1, "maskweardincorrect": 1, "maskwearedincorrect": 1,
                 "withoutmask": 0, "withoutmasks": 0, "nomask": 0, "unmasked": 0, "bare": 0,
                 "nomasks": 0, "0": 0}
_NAME_RE = re.compile(r"^(?P<id>.+)_(?P<label>\d+)$")
_MAX_ZIP_BYTES = 4 << 30  # uncompressed total
_MAX_ZIP_RATIO = 200  # per-entry compression ratio above this smells of a zip bomb

Progress = Callable[[int, int], None]


class DataError(ValueError):
    """A dataset that cannot be used at all (no images, one class, a bad zip...)."""


class BadImage(Exception):
    """One file that cannot be used; the message is the reason shown to the user."""


class Item(NamedTuple):
    path: Path
    label: int
    split: str  # "train" | "test"


class Skipped(NamedTuple):
    path: str
    reason: str


@dataclass
class Dataset:
    root: Path
    layout: str  # "report" | "class-folders" | "mixed"
    items: list[Item]
    skipped: list[Skipped] = field(default_factory=list)
    held_out: bool = False  # True when the test split was drawn from a dataset without one

    def counts(self) -> dict[str, dict[int, int]]:
        out = {"train": {0: 0, 1: 0}, "test": {0: 0, 1: 0}}
        for it in self.items:
            out[it.split][it.label] += 1
        return out

    def fingerprint(self) -> str:
        """Changes when any file is added, removed, relabelled or modified."""
        h = hashlib.sha1()
        for it in self.items:
            st = it.path.stat()
            h.update(f"{it.path.relative_to(self.root)}|{it.label}|{it.split}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------- decoding (one definition)

# Pillow's own guard, Image.MAX_IMAGE_PIXELS (~89 M px, ~360 MB decoded), holds for dataset images and
# for anything decoded at full size. A photo to recognise (``open_rgb(..., draft=side)``) that is a
# baseline JPEG decoded reduced may have up to PHOTO_MAX_PIXELS: phone cameras write 108 MP
# (12000x9000) and 200 MP (16320x12240) JPEGs, and libjpeg decodes those straight to 1/2, 1/4 or 1/8
# size, so the full-size pixels never exist in memory. A progressive JPEG keeps Pillow's limit: its
# decoder holds every DCT coefficient of the full image (~3 bytes a pixel) whatever the output size.
PHOTO_MAX_PIXELS = 1 << 28  # 16384 x 16384


def open_rgb(src, draft: int | None = None) -> Image.Image:
    """Decode a file path, bytes or file object into an 8-bit RGB image, EXIF orientation applied.

    Grey, palette, alpha (composited on white), CMYK and 16-bit images all become RGB.
    Raises BadImage with a reason for anything unusable.

    ``draft``: read a photo to recognise, not a training image: a JPEG is decoded at the coarsest
    1/2, 1/4 or 1/8 scale that keeps its longest side >= ``draft`` px, and if baseline may have up
    to PHOTO_MAX_PIXELS. ``img.info["original_size"]`` is the file's (width, height) as shown (EXIF
    orientation applied), so boxes found on a reduced image can be scaled back to the file's pixels.
    """
    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    try:
        with warnings.catch_warnings():
            # _check_pixels below decides, per use; Pillow's warning would only repeat it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            file = _open(src, draft is not None)
        with file:  # closes a file opened by path here, also one refused unread
            # JPEG and MPO (a phone's JPEG with extra frames) can be decoded at 1/2 to 1/8 size
            reduce = (bool(draft) and isinstance(file, JpegImagePlugin.JpegImageFile)
                      and max(file.size) >= 2 * draft)
            _check_pixels(file, raised=reduce and not file.info.get("progressive"))
            shown = file.size
            if reduce:
                f = draft / max(file.size)
                # Pillow picks the coarsest scale whose sides are still >= the size asked for
                file.draft("RGB", (math.ceil(file.width * f), math.ceil(file.height * f)))
            if file.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # exif_transpose turns it 90 degrees
                shown = shown[::-1]
            file.load()
            img = ImageOps.exif_transpose(file)
    except Image.DecompressionBombError as e:
        raise BadImage(f"too many pixels (decompression bomb guard): {e}") from None
    except Image.UnidentifiedImageError:
        raise BadImage("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # "No such file or directory", as cat says it, rather than "[Errno 2] ...: 'the path'"
        msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
        if "truncated" in msg.lower():
            msg = "truncated file"
        raise BadImage(msg) from None
    if min(img.size) < MIN_SIDE:
        raise BadImage(f"too small ({img.width}x{img.height}, need at least {MIN_SIDE} px a side)")
    img = _to_rgb8(img)
    img.info["original_size"] = shown
    return img


def _open(src, photo: bool) -> Image.Image:
    """Image.open; for a photo, a JPEG over twice Pillow's limit too (Image.open refuses it before
    a reduced decode could be asked for; _check_pixels then applies PHOTO_MAX_PIXELS)."""
    try:
        return Image.open(src)
    except Image.DecompressionBombError as e:
        if not photo:
            raise
        refused = e
    if hasattr(src, "seek"):
        src.seek(0)
    try:
        return JpegImagePlugin.JpegImageFile(src)
    except (SyntaxError, OSError):  # not a JPEG: Pillow's refusal stands (PNG, TIFF... decode full size)
        raise refused from None


def _check_pixels(img: Image.Image, raised: bool) -> None:
    """The decompression-bomb guard, from the header alone (nothing is decoded yet). ``raised``:
    PHOTO_MAX_PIXELS for a baseline JPEG that is decoded reduced, else Pillow's limit."""
    limit = PHOTO_MAX_PIXELS if raised else Image.MAX_IMAGE_PIXELS  # None: Pillow's guard is off
    if limit is not None and img.width * img.height > limit:
        kind = "a baseline JPEG photo to recognise" if raised else "this image"
        raise BadImage(f"too many pixels ({img.width}x{img.height}; {kind} may have up to {limit:,}: "
                       f"decompression bomb guard)")


def _to_rgb8(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(img).astype(np.float32)
        hi = 65535.0 if mode.startswith("I;16") else max(float(a.max()), 1.0)
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def to_input(img: Image.Image, size: int) -> np.ndarray:
    """The one preprocessing: RGB image -> (size, size, 3) uint8, squashed with bilinear filtering.

    Training, evaluation and recognition all call this, so a face crop from the webcam reaches the
    network exactly as a training image did.
    """
    return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def network_views(paths, size: int, shown: int = 96) -> list[tuple[Image.Image, Image.Image]]:
    """(original, what the network sees) per file, for galleries: the second is ``to_input`` at
    ``size``, enlarged to ``shown`` px with nearest-neighbour so its pixels stay visible."""
    out = []
    for p in paths:
        img = open_rgb(p)
        out.append((img, Image.fromarray(to_input(img, size)).resize((shown, shown), Image.NEAREST)))
    return out


def preprocessing_info(size: int) -> dict:
    """What a checkpoint records so it can be used alone."""
    return {"version": PREPROCESSING_VERSION, "size": size, "resize": "squash, PIL bilinear",
            "color": "RGB", "scale": "uint8 / 255 -> [0, 1]", "layout": "NCHW"}


def batch_to_float(x: torch.Tensor) -> torch.Tensor:
    # (B, 3, S, S) uint8 -> float in [0, 1]
    return x.float().div_(255.0)


# ---------------------------------------------------------------- discovery

def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def resolve_source(path: str | os.PathLike) -> Path:
    """A folder as is; a .zip extracted (safely, once) into the cache. Raises DataError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"no such folder or file: {p}")
    if p.is_file():
        if p.suffix.lower() != ".zip":
            raise DataError(f"{p} is a file; give a folder or a .zip of one")
        return extract_zip(p)
    return p


def extract_zip(zpath: Path, dest_root: Path | None = None) -> Path:
    """Extract a dataset zip into the cache, refusing entries that escape it and zip bombs."""
    st = zpath.stat()
    key = hashlib.sha1(f"{zpath.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    dest = (dest_root or cache_dir() / "zips") / key
    if (dest / ".complete").exists():
        return dest
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{zpath.name} is not a readable zip file ({e})") from None
    with zf:
        total = 0
        for info in zf.infolist():
            name = info.filename
            parts = Path(name).parts
            if name.startswith(("/", "\\")) or (parts and (":" in parts[0])) or ".." in parts:
                raise DataError(f"zip entry {name!r} would land outside the target folder; refused")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise DataError(f"zip entry {name!r} is a symbolic link; refused")
            total += info.file_size
            if total > _MAX_ZIP_BYTES:
                raise DataError(f"zip expands to more than {_MAX_ZIP_BYTES >> 30} GiB; refused")
            if info.compress_size and info.file_size / info.compress_size > _MAX_ZIP_RATIO and info.file_size > 1 << 20:
                raise DataError(f"zip entry {name!r} compresses {info.file_size // info.compress_size}:1 (zip bomb?); refused")
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            for info in zf.infolist():
                target = tmp / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    # Count real bytes too: the header's file_size can lie.
                    copied = 0
                    while chunk := src.read(1 << 20):
                        copied += len(chunk)
                        if copied > info.file_size + (1 << 20):
                            raise DataError(f"zip entry {info.filename!r} is larger than it claims; refused")
                        out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"{zpath.name} could not be extracted ({e})") from None
        except DataError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        (tmp / ".complete").touch()
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    return dest


def _walk(folder: Path, skipped: list[Skipped]):
    """Yield regular files below folder (sorted, deterministic); never follows folder links."""
    def onerror(err: OSError):
        skipped.append(Skipped(str(err.filename), f"cannot read folder ({err.strerror})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror, followlinks=False):
        dirnames.sort()
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                skipped.append(Skipped(os.path.join(dirpath, d), "linked folder not followed"))
        for f in sorted(filenames):
            yield Path(dirpath) / f


def _classify_file(path: Path, folder_label: int | None, exts, skipped: list[Skipped],
                   is_link: bool | None = None) -> int | None:
    """Label of one file, or None (and a Skipped entry) when it cannot be used. ``is_link`` from a
    directory entry saves a stat per file."""
    if path.name.startswith("."):
        skipped.append(Skipped(str(path), "hidden file"))
        return None
    if path.suffix.lower() not in exts:
        skipped.append(Skipped(str(path), f"not an image file ({path.suffix or 'no extension'})"))
        return None
    if (path.is_symlink() if is_link is None else is_link) and not path.exists():
        skipped.append(Skipped(str(path), "broken link"))
        return None
    if folder_label is not None:
        return folder_label
    m = _NAME_RE.match(path.stem)
    if not m or m["label"] not in ("0", "1"):
        skipped.append(Skipped(str(path), "name does not end in _0 or _1 (label unknown)"))
        return None
    return int(m["label"])


def _collect(folder: Path, split: str, exts, skipped, items, layouts: set):
    """Files directly in folder are named <id>_<label>; class sub-folders give their label."""
    readable = os.access(folder, os.R_OK | os.X_OK)
    # scandir entries know file type and link-ness from the directory itself: no stat per file,
    # which is most of a scan's time on a folder of 24,000 images
    with os.scandir(folder) if readable else nullcontext(()) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            label = CLASS_FOLDERS.get(_norm(entry.name))
            if label is None:
                skipped.append(Skipped(str(path), "folder is not a class name (e.g. with_mask / without_mask)"))
                continue
            layouts.add("class-folders")
            for f in _walk(path, skipped):
                lab = _classify_file(f, label, exts, skipped)
                if lab is not None:
                    items.append(Item(f, lab, split))
        elif entry.is_symlink() and _points_to_dir(entry):
            skipped.append(Skipped(str(path), "linked folder not followed"))
        else:
            lab = _classify_file(path, None, exts, skipped, is_link=entry.is_symlink())
            if lab is not None:
                layouts.add("report")
                items.append(Item(path, lab, split))
    if not readable:
        skipped.append(Skipped(str(folder), "cannot read folder (permission denied)"))


def _points_to_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop (ELOOP) is no folder; the file check reports it
        return False


def _unwrap(root: Path) -> Path:
    """Descend through single wrapper folders (e.g. a zip holding dataset/with_mask/...)."""
    for _ in range(4):
        try:
            entries = [e for e in root.iterdir() if not e.name.startswith((".", "__MACOSX"))]
        except OSError:
            return root
        dirs = [e for e in entries if e.is_dir()]
        known = any(_norm(d.name) in SPLIT_NAMES or _norm(d.name) in CLASS_FOLDERS for d in dirs)
        if known or len(dirs) != 1 or any(e.is_file() for e in entries):
            return root
        root = dirs[0]
    return root


def discover(path: str | os.PathLike, cfg: DataConfig = DataConfig(), hold_out: bool = True) -> Dataset:
    """Find every usable image under path in either layout. Raises DataError if none/one class.

    hold_out=False leaves a dataset without a test split all in "train" (for evaluating on it all).
    """
    sources = [s for s in str(path).split(os.pathsep) if s] if isinstance(path, str) else [path]
    if len(sources) > 1:
        return _combine([discover(s, cfg, hold_out) for s in sources])
    root = _unwrap(resolve_source(path))
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    from . import scenes
    voc = scenes.is_voc(root)
    if voc:  # annotated photos: their face crops, cut once into the cache, are the dataset
        root = scenes.crops(root)
    exts = tuple(cfg.exts)
    items: list[Item] = []
    skipped: list[Skipped] = []
    layouts: set[str] = set()
    split_dirs = [(SPLIT_NAMES[_norm(d.name)], d) for d in sorted(root.iterdir())
                  if d.is_dir() and _norm(d.name) in SPLIT_NAMES]
    if split_dirs:
        for split, d in split_dirs:
            _collect(d, split, exts, skipped, items, layouts)
    else:
        _collect(root, "train", exts, skipped, items, layouts)
    if not items:
        raise DataError(f"no usable images found in {root} "
                        f"(expected train/ and test/ with <id>_<label>.jpg, or with_mask/ and without_mask/ folders)")
    labels = {it.label for it in items}
    if len(labels) < 2:
        only = "covered (1)" if labels == {1} else "bare (0)"
        raise DataError(f"{root} holds only {only} faces; training needs both classes")
    held_out = hold_out and not any(it.split == "test" for it in items)
    if held_out:
        items = _hold_out(items, cfg.test_fraction, cfg.split_seed)
    layout = "voc-scenes" if voc else layouts.pop() if len(layouts) == 1 else "mixed"
    return Dataset(root=root, layout=layout, items=items, skipped=skipped, held_out=held_out)


def _combine(parts: list[Dataset]) -> Dataset:
    """Several datasets as one (``"a:b"``, os.pathsep-separated, like PATH): each keeps its own split,
    so facemask-dev's test images stay test images beside a scene folder's held-out crops."""
    root = Path(os.path.commonpath([str(d.root.resolve()) for d in parts]))
    return Dataset(root=root, layout="+".join(d.layout for d in parts), items=[it for d in parts for it in d.items],
                   skipped=[s for d in parts for s in d.skipped], held_out=any(d.held_out for d in parts))


def _hold_out(items: list[Item], fraction: float, seed: int) -> list[Item]:
    """Stratified: the same share of each label goes to test; seeded, so reruns agree."""
    rng = random.Random(seed)
    out = []
    for label in (0, 1):
        group = [it for it in items if it.label == label]
        order = list(range(len(group)))
        rng.shuffle(order)
        n_test = round(len(group) * fraction)
        test_idx = set(order[:n_test])
        out += [it._replace(split="test" if i in test_idx else "train") for i, it in enumerate(group)]
    out.sort(key=lambda it: str(it.path))
    return out


# ---------------------------------------------------------------- header scan (fast, cached)

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
                orientation = img.getexif().get(0x0112, 1) if fmt in ("JPEG", "PNG", "WEBP", "TIFF") else 1
    except BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise BadImage("not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise BadImage(f"too many pixels (decompression bomb guard): {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(str(e) or type(e).__name__) from None
    if w * h > Image.MAX_IMAGE_PIXELS:
        raise BadImage(f"too many pixels ({w}x{h}; decompression bomb guard)")
    if min(w, h) < MIN_SIDE:
        raise BadImage(f"too small ({w}x{h}, need at least {MIN_SIDE} px a side)")
    marker = _TAIL_MARKERS.get(fmt)
    if marker and marker not in tail:
        raise BadImage("truncated file (no end-of-image marker)")
    if orientation in (5, 6, 7, 8):  # EXIF says rotated 90 degrees: report the size as shown
        w, h = h, w
    return w, h, fmt


def scan(ds: Dataset, progress: Progress | None = None, use_cache: bool = True) -> dict:
    """Per-image header facts plus a summary. Cached per file (path, size, mtime), so a rescan of
    an unchanged folder reads no image. Files that fail the probe move to ``ds.skipped``."""
    cache_file = cache_dir() / "scan" / (hashlib.sha1(str(ds.root.resolve()).encode()).hexdigest()[:16] + ".json")
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
    if bad:
        bad_paths = {b.path for b in bad}
        ds.items = [it for it in ds.items if str(it.path) not in bad_paths]
        ds.skipped = ds.skipped + bad
    return {"images": rows, "summary": summarize(ds, rows)}


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
        "formats": dict(Counter(r["format"] for r in rows)),
        "width": stats(ws), "height": stats(hs),
        "share_shorter_side_ge_32": round(sum(s >= 32 for s in short) / n, 3),
        "share_shorter_side_lt_128": round(sum(s < 128 for s in short) / n, 3),
        "skipped": [{"path": s.path, "reason": s.reason} for s in ds.skipped],
    }


# ---------------------------------------------------------------- decoded-tensor cache

def _decode_one(path: Path, size: int) -> np.ndarray | str:
    try:
        return to_input(open_rgb(path), size).transpose(2, 0, 1)  # (3, S, S)
    except BadImage as e:
        return str(e)
    except OSError as e:
        return f"cannot read ({e.strerror or e})"


def decode_all(ds: Dataset, size: int, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All items as (N, 3, size, size) uint8 plus a keep-mask; cached on disk by dataset fingerprint.

    Files that fail to decode are appended to ``ds.skipped`` and masked out. The cache is an .npy
    (memory-mapped on load), so no epoch and no later run decodes a JPEG again while files are unchanged.
    """
    arr_path = _cache_path(ds, size)
    meta_path = arr_path.with_suffix(".json")
    if meta_path.exists() and arr_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            X = np.load(arr_path, mmap_mode="r")
            if X.shape == (len(ds.items), 3, size, size):
                _note_bad(ds, meta["bad"])
                keep = np.ones(len(ds.items), bool)
                keep[[i for i, _ in meta["bad"]]] = False
                if progress:
                    progress(len(ds.items), len(ds.items))
                return X, keep
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    n = len(ds.items)
    X = np.zeros((n, 3, size, size), np.uint8)
    bad: list[tuple[int, str]] = []
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:  # PIL releases the GIL while decoding and resizing
        for i, out in enumerate(pool.map(lambda it: _decode_one(it.path, size), ds.items, chunksize=16)):
            if isinstance(out, str):
                bad.append((i, out))
            else:
                X[i] = out
            if progress and (i % 100 == 0 or i == n - 1):
                progress(i + 1, n)
    atomic_write(arr_path, lambda f: np.save(f, X))
    atomic_write_text(meta_path, json.dumps({"root": str(ds.root), "size": size, "n": n, "bad": bad}))
    _note_bad(ds, bad)
    keep = np.ones(n, bool)
    keep[[i for i, _ in bad]] = False
    return X, keep


def _cache_path(ds: Dataset, size: int) -> Path:
    key = hashlib.sha1(f"{ds.root.resolve()}|{ds.fingerprint()}|{size}|v{PREPROCESSING_VERSION}".encode()).hexdigest()[:20]
    return cache_dir() / "decoded" / f"{key}.npy"


def _note_bad(ds: Dataset, bad) -> None:
    known = {s.path for s in ds.skipped}
    for i, reason in bad:
        p = str(ds.items[i].path)
        if p not in known:
            ds.skipped.append(Skipped(p, reason))


def load_split(ds: Dataset, split: str, size: int, progress: Progress | None = None):
    """(X, y, paths) for one split: X (N, 3, size, size) uint8 tensor, y (N,) int64 tensor.

    X is memory-mapped (copy-on-write) from the split's own .npy in the cache, written once from the
    decoded cache: processes that load the same split, such as the ranks of a torchrun job on one
    machine, share one copy in the page cache instead of holding one each."""
    X, keep = decode_all(ds, size, progress)
    idx = [i for i, it in enumerate(ds.items) if it.split == split and keep[i]]
    y = torch.tensor([ds.items[i].label for i in idx], dtype=torch.int64)
    paths = [str(ds.items[i].path) for i in idx]
    if not idx:
        return torch.zeros((0, 3, size, size), dtype=torch.uint8), y, paths
    whole = _cache_path(ds, size)
    part_path = whole.with_name(f"{whole.stem}-{split}.npy")
    try:
        part = np.load(part_path, mmap_mode="c")
        ok = part.shape == (len(idx), 3, size, size)
    except (OSError, ValueError):
        ok = False
    if not ok:
        atomic_write(part_path, lambda f: np.save(f, np.ascontiguousarray(X[idx])))
        part = np.load(part_path, mmap_mode="c")
    return torch.from_numpy(part), y, paths
