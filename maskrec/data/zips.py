"""A dataset given as a ``.zip``: extracted once into the cache, with guards against hostile zips.

Refused: entries that would land outside the target folder (``../x``, ``/x``, ``C:x``), symbolic
links, more than 4 GiB uncompressed, an entry or the whole archive compressed over 200:1 (a zip
bomb), an entry that turns out larger than its header claims, and entries Python's ``zipfile``
cannot read: encrypted ones (a password-protected zip) and methods it lacks (Deflate64, which
Windows' "Compressed folder" writes for large files). A refusal is a DataError that says what to
do, and leaves nothing behind; an extraction is published (renamed into place) only once complete,
so a crash mid-way is redone. An uploaded zip is kept by :func:`keep_upload`, which removes it
again when it is refused.

    root = resolve_source("data.zip")   # a folder as is; a zip -> <cache>/zips/<key>/
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from maskrec.core.atomic import atomic_write_bytes, building, locked_dir
from maskrec.config import cache_dir
from maskrec.core.errors import DataError

_MAX_ZIP_BYTES = 4 << 30  # uncompressed total
_MAX_ZIP_RATIO = 200  # an entry's or the whole archive's compression ratio above this smells of a zip bomb
_RATIO_FLOOR = 64 << 20  # ...once the archive expands to more than this (a small one harms no one)
_READABLE = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}  # what zipfile decompresses
_METHODS = {9: "Deflate64", 10: "PKWARE DCL Implode", 12: "bzip2", 14: "LZMA", 93: "Zstandard", 95: "xz",
            98: "PPMd", 99: "WinZip AES encryption"}  # zip method numbers, for the message
_REZIP = ("extract it yourself, then zip the folder again with plain Deflate and no password "
          "(e.g. `zip -r data.zip data`), or give the extracted folder")


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
        _check_entries(zf, zpath)
        with locked_dir(dest):  # two uploads of one zip at once extract it once, not into one folder
            if (dest / ".complete").exists():
                return dest
            with building(dest) as tmp:
                try:
                    for info in zf.infolist():
                        _extract_entry(zf, info, tmp)
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    raise DataError(f"{zpath.name} could not be extracted ({e})") from None
                except (NotImplementedError, RuntimeError) as e:  # zipfile's words for a method or an
                    # encryption it cannot read, should one get past _check_entries
                    raise DataError(f"{zpath.name} could not be extracted ({e}): {_REZIP}") from None
                (tmp / ".complete").touch()
    return dest


def keep_upload(data: bytes) -> Path:
    """An uploaded zip kept in ``<cache>/uploads/`` (named by its content, so a second upload of it
    is the same file) and extracted: its path, ready for ``discover``. A zip that is refused
    (DataError) is removed again before the error is raised: refused uploads do not pile up."""
    target = cache_dir() / "uploads" / (hashlib.sha1(data).hexdigest()[:16] + ".zip")
    if not target.exists():
        atomic_write_bytes(target, data)
    try:
        extract_zip(target)
    except DataError:
        target.unlink(missing_ok=True)
        raise
    return target


def _check_entries(zf: zipfile.ZipFile, zpath: Path) -> None:
    """Every refusal that the central directory alone can decide, before a byte is written."""
    total = 0
    for info in zf.infolist():
        name = info.filename
        if info.flag_bits & 0x1:  # general purpose bit 0: the entry is encrypted
            raise DataError(f"{zpath.name} is password-protected (entry {name!r} is encrypted), which "
                            f"Python's zipfile cannot read: {_REZIP}")
        if info.compress_type not in _READABLE:
            method = _METHODS.get(info.compress_type, f"compression method {info.compress_type}")
            raise DataError(f"{zpath.name}: entry {name!r} is compressed with {method}, which Python's zipfile "
                            f"cannot read: {_REZIP}")
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
    # Many entries each just under the entry guard add up: 1,024 of 1 MiB of zeros are 1 GiB from
    # 1.3 MB. The file's own size bounds what is really compressed (headers can lie).
    packed = max(zpath.stat().st_size, 1)
    if total > _RATIO_FLOOR and total / packed > _MAX_ZIP_RATIO:
        raise DataError(f"{zpath.name} expands {total // packed}:1 as a whole ({total >> 20} MiB from "
                        f"{packed >> 10} KiB: a zip bomb?); refused")


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
