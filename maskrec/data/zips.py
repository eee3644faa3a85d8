"""A dataset given as a ``.zip``: extracted once into the cache, with guards against hostile zips.

Refused: entries that would land outside the target folder (``../x``, ``/x``, ``C:x``), symbolic
links, more than 4 GiB uncompressed, an entry compressed over 200:1 (a zip bomb), and an entry
that turns out larger than its header claims. A refusal is a DataError and leaves nothing behind;
an extraction is published (renamed into place) only once complete, so a crash mid-way is redone.

    root = resolve_source("data.zip")   # a folder as is; a zip -> <cache>/zips/<key>/
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from ..atomic import building, locked_dir
from ..config import cache_dir
from ..errors import DataError

_MAX_ZIP_BYTES = 4 << 30  # uncompressed total
_MAX_ZIP_RATIO = 200  # per-entry compression ratio above this smells of a zip bomb


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
        _check_entries(zf)
        with locked_dir(dest):  # two uploads of one zip at once extract it once, not into one folder
            if (dest / ".complete").exists():
                return dest
            with building(dest) as tmp:
                try:
                    for info in zf.infolist():
                        _extract_entry(zf, info, tmp)
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    raise DataError(f"{zpath.name} could not be extracted ({e})") from None
                (tmp / ".complete").touch()
    return dest


def _check_entries(zf: zipfile.ZipFile) -> None:
    """Every refusal that the central directory alone can decide, before a byte is written."""
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


def _extract_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, into: Path) -> None:
    target = into / info.filename
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(target, "wb") as out:
        # Count real bytes too: the header's file_size can lie.
        copied = 0
        while chunk := src.read(1 << 20):
            copied += len(chunk)
            if copied > info.file_size + (1 << 20):
                raise DataError(f"zip entry {info.filename!r} is larger than it claims; refused")
            out.write(chunk)
