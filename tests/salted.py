"""The salted dataset: good images with every kind of bad file mixed in, for test_data and test_faults.

A pytest plugin (listed in conftest's ``pytest_plugins``), so ``salted`` is a fixture of every test
module; ``report_layout`` is the plain good dataset it starts from.
"""
from __future__ import annotations

import builtins
import errno
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_image


def report_layout(root: Path, test_labels=(0, 1, 0, 1)) -> Path:
    """8 train JPEGs (labels 0, 1, 0, 1...) and one test JPEG per label given, in the report's layout."""
    for i in range(8):
        save_image(root / "train" / f"{i:06d}_{i % 2}.jpg")
    for i, lab in enumerate(test_labels):
        save_image(root / "test" / f"{100 + i:06d}_{lab}.jpg")
    return root


def png_bomb(path: Path, side: int = 20_000) -> Path:
    """A 1-bit PNG of side x side pixels (400 M, over twice Pillow's limit) in ~50 KB: the pixels
    are all zero, so they compress ~1000:1. Written by hand so the test never holds them."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    z = zlib.compressobj(9)
    row = b"\0" * (1 + side // 8)  # filter byte + packed bits
    idat = b"".join(z.compress(row * 1000) for _ in range(side // 1000)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


ENCRYPTED = 0x1  # general-purpose flag bit 0: what `zip -P` sets on every entry
DEFLATE64 = 9  # the compression method Windows' "Compressed folder" uses for large files


def zip_python_cannot_read(path: Path, folder: Path, flag: int = 0, method: int | None = None) -> Path:
    """A zip of folder whose entries say they are encrypted (``flag=ENCRYPTED``) or compressed with
    another method (``method=DEFLATE64``). Python's zipfile cannot write either, so a plain stored zip
    is written and those two header fields patched, in each entry's local header and its central
    directory record alike (as a real one has them): zipfile then reads the directory, and refuses
    the entries when asked for their bytes."""
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(folder.rglob("*.jpg")):
            z.write(f, f.relative_to(folder.parent))
    with zipfile.ZipFile(path) as z:
        local, central = [i.header_offset for i in z.infolist()], z.start_dir
    data = bytearray(path.read_bytes())

    def patch(at: int, flag_at: int, method_at: int) -> None:
        struct.pack_into("<H", data, at + flag_at, struct.unpack_from("<H", data, at + flag_at)[0] | flag)
        if method is not None:
            struct.pack_into("<H", data, at + method_at, method)
    for at in local:
        assert data[at:at + 4] == b"PK\x03\x04"
        patch(at, 6, 8)
    at = central
    while data[at:at + 4] == b"PK\x01\x02":
        patch(at, 8, 10)
        name, extra, comment = struct.unpack_from("<HHH", data, at + 28)
        at += 46 + name + extra + comment
    path.write_bytes(data)
    return path


def unreadable(monkeypatch, path: Path) -> None:
    """Reading ``path`` fails with EACCES. The tests run as root, for whom chmod 000 stops no read,
    so the fault is injected where the OS would raise it: at open() (Pillow opens files through
    builtins.open, maskrec.data's header probe through os.open); stat() still works, as it does on a
    chmod-000 file."""
    real_open, real_os_open = builtins.open, os.open

    def denied(file) -> bool:
        return isinstance(file, (str, os.PathLike)) and os.path.abspath(file) == str(path)

    def guarded(file, *a, **kw):
        if denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    def guarded_os(file, *a, **kw):
        if denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_os_open(file, *a, **kw)
    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(os, "open", guarded_os)


class Salted(NamedTuple):
    root: Path
    kept: set[str]  # the train files that scan, decode and train
    odd: set[str]  # of those, the odd-but-valid formats (CMYK, palette, alpha, 16-bit)
    bad: dict[str, str]  # every other entry of train/ -> a word its skip reason must hold


@pytest.fixture
def salted(tmp_path, monkeypatch) -> Salted:
    """``report_layout`` with the odd-but-valid formats and every kind of bad file mixed into
    train/: empty, truncated, not an image, a wrong label, too small, a decompression bomb,
    unreadable (for the test's duration, see ``unreadable``), a file link loop, a folder link loop,
    a text file, Thumbs.db and a hidden file."""
    root = report_layout(tmp_path / "salted")
    tr = root / "train"
    save_image(tr / "000060_0.jpg", mode="CMYK", fmt="JPEG")
    save_image(tr / "000061_1.png", mode="P")
    save_image(tr / "000062_0.png", mode="RGBA")
    Image.fromarray((np.arange(48 * 40).reshape(40, 48) * 30).astype(np.uint16)).save(tr / "000063_1.png")
    (tr / "000050_1.jpg").write_bytes(b"")
    good = (tr / "000000_0.jpg").read_bytes()
    (tr / "000051_0.jpg").write_bytes(good[: len(good) // 2])
    (tr / "000052_1.jpg").write_text("not an image at all")
    save_image(tr / "000053_7.jpg")
    save_image(tr / "000054_1.png", size=(1, 1))
    png_bomb(tr / "000055_0.png")
    save_image(tr / "000056_1.jpg")
    unreadable(monkeypatch, tr / "000056_1.jpg")
    os.symlink(tr / "000057_1.jpg", tr / "000058_1.jpg")  # a file link loop: 57 -> 58 -> 57
    os.symlink(tr / "000058_1.jpg", tr / "000057_1.jpg")
    os.symlink(tr, tr / "loop")  # a folder link loop
    (tr / "notes.txt").write_text("hello")
    (tr / "Thumbs.db").write_bytes(b"\0" * 64)
    (tr / ".DS_Store").write_bytes(b"\0" * 64)
    odd = {"000060_0.jpg", "000061_1.png", "000062_0.png", "000063_1.png"}
    kept = {f"{i:06d}_{i % 2}.jpg" for i in range(8)} | odd
    bad = {"000050_1.jpg": "empty", "000051_0.jpg": "truncated", "000052_1.jpg": "not an image",
           "000053_7.jpg": "_0 or _1", "000054_1.png": "too small", "000055_0.png": "decompression bomb",
           "000056_1.jpg": "Permission denied", "000057_1.jpg": "broken link", "000058_1.jpg": "broken link",
           "loop": "linked folder not followed", "notes.txt": "not an image file", "Thumbs.db": "not an image file",
           ".DS_Store": "hidden file"}
    return Salted(root, kept, odd, bad)
