"""The decoded-image cache: every file decoded and squashed once, kept as one ``.npy`` on disk.

``decode_all(ds, size)`` runs ``open_rgb`` + ``to_input`` over the dataset on a thread pool (PIL
releases the GIL while decoding and resizing) and writes the result to ``<cache>/decoded/<key>.npy``,
keyed by the dataset's files (paths, splits, sizes, mtimes: its fingerprint without labels), the
input size and PREPROCESSING_VERSION. Labels are not part of the key: the pixels do not depend on
them and ``Decoded.split`` reads each row's label from the dataset, so a relabel in the review
(``maskrec.data.overrides``) trains with the new label at once and decodes nothing again. While the files are unchanged no
epoch and no later run decodes a JPEG.

One file per dataset and size, its rows the images that decoded, the train split first and then
the test split, so each split is a contiguous slice of it: ``load_split`` hands out a slice of the
memory-mapped (copy-on-write) file, which copies nothing, and processes that load the same split,
such as the ranks of a torchrun job on one machine, share one copy in the page cache. A ``.json``
beside it records the split ranges and the files that failed, with their reasons.

    dec = decode_all(ds, 32)          # Decoded: dataset (less failed files), X (M, 3, 32, 32) uint8
    X, y, paths = dec.split("train")  # tensors: (N, 3, 32, 32) uint8, (N,) int64
    X, y, paths = load_split(ds, "train", size=32)   # the same, in one call

Jitter is augmentation, not data: a scene face's jittered framings (``Dataset.views``) are not rows of
``X``, so nothing that reads ``X`` (data health, evaluation) sees them. The trainer asks for them::

    views = dec.train_views()         # TrainViews over the rows of dec.split("train"); decoded once, cached
    Xe = views.draw(gen)              # (N, 3, 32, 32) uint8: each face or one of its views, drawn per epoch
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from maskrec.core.atomic import atomic_write, atomic_write_text
from maskrec.config import cache_dir
from maskrec.core.errors import BadImage
from maskrec.core.imaging import open_rgb
from maskrec.data.image import PREPROCESSING_VERSION, to_input
from maskrec.data.layouts import Dataset, Item, Skipped

Progress = Callable[[int, int], None]

SPLITS = ("train", "test")  # the order of the rows in the cache
# 2: one file, good rows only, grouped by split (1 kept every row plus a copy of each split)
_CACHE_FORMAT = 2


@dataclass(frozen=True, eq=False)
class Decoded:
    """A dataset decoded at one input size. ``dataset`` is the one decoded less the files that
    failed (moved to its ``skipped``); ``X`` holds its items, grouped as ``SPLITS``."""
    dataset: Dataset
    X: np.ndarray  # (M, 3, S, S) uint8, memory-mapped copy-on-write
    ranges: tuple[tuple[str, int, int], ...]  # (split, first row, end row)

    @property
    def items(self) -> list[Item]:
        """The item of each row of X."""
        return [it for s in SPLITS for it in self.dataset.items if it.split == s]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """(X, y, paths) of one split: X (N, 3, S, S) uint8 tensor over the mapped file, y (N,) int64."""
        start, stop = next((a, b) for s, a, b in self.ranges if s == name)
        items = [it for it in self.dataset.items if it.split == name]
        y = torch.tensor([it.label for it in items], dtype=torch.int64)
        paths = [str(it.path) for it in items]
        if start == stop:
            return torch.zeros((0, *self.X.shape[1:]), dtype=torch.uint8), y, paths
        return torch.from_numpy(self.X[start:stop]), y, paths

    def train_views(self, progress: Progress | None = None) -> TrainViews:
        """The framings of each row of ``split("train")``: the face itself and its extra views
        (``Dataset.views``; test faces never have any), decoded once into their own cache file beside
        ``X``'s. A dataset without views gives one view per face, and ``draw`` returns the split."""
        faces = self.split("train")[0]
        size = self.X.shape[-1]
        views_of = self.dataset.views_of()
        owned = [(row, v) for row, it in enumerate(it for it in self.dataset.items if it.split == "train")
                 for v in views_of.get(it.path, ())]
        if not owned:
            return TrainViews(faces, torch.zeros((0, 3, size, size), dtype=torch.uint8),
                              torch.full((len(faces), 1), -1, dtype=torch.int64))
        paths = [v for _, v in owned]
        key = hashlib.sha1(f"{self.dataset.root.resolve()}|{_files_key(paths)}|{size}|v{PREPROCESSING_VERSION}"
                           f"|f{_CACHE_FORMAT}|views".encode()).hexdigest()[:20]
        extra, bad = _decode_cached(paths, list(range(len(paths))), size,
                                    cache_dir() / "decoded" / f"{key}-views.npy", progress)
        failed = {i for i, _ in bad}  # a view that does not decode is left out: its face still trains
        per_face: dict[int, list[int]] = {}  # train row -> rows of extra
        for k, row in enumerate(row for i, (row, _) in enumerate(owned) if i not in failed):
            per_face.setdefault(row, []).append(k)
        index = torch.full((len(faces), 1 + max(map(len, per_face.values()), default=0)), -1, dtype=torch.int64)
        for row, rows in per_face.items():
            index[row, 1:1 + len(rows)] = torch.tensor(rows)
        return TrainViews(faces, torch.from_numpy(extra), index)


class TrainViews(NamedTuple):
    """Every framing of each training face, for augmentation drawn at training time."""
    faces: torch.Tensor  # (N, 3, S, S) uint8: the train split, as Decoded.split("train") gives it
    extra: torch.Tensor  # (K, 3, S, S) uint8: the decoded extra views of all faces
    # (N, V) int64: view v of face i is extra[index[i, v]], the face itself where -1 (always column 0;
    # a face with fewer than V - 1 views has -1 in the rest, so it is drawn as itself more often)
    index: torch.Tensor

    @property
    def n_views(self) -> int:
        return self.index.shape[1]

    def take(self, rows: torch.Tensor) -> TrainViews:
        """The views of the faces ``rows`` (an index tensor into the split), e.g. what a validation
        carve leaves for training."""
        return TrainViews(self.faces[rows], self.extra, self.index[rows])

    def draw(self, gen: torch.Generator) -> torch.Tensor:
        """(N, 3, S, S) uint8: one framing per face, drawn uniformly from ``gen``; with one view per
        face the faces themselves, and no number is drawn (a dataset without views trains as before)."""
        n, v = self.index.shape
        if v == 1:
            return self.faces
        pick = self.index[torch.arange(n), torch.randint(v, (n,), generator=gen)]
        out = self.faces.clone()
        jittered = pick >= 0
        out[jittered] = self.extra[pick[jittered]]
        return out


def _decode_one(path: Path, size: int) -> np.ndarray | str:
    try:
        return to_input(open_rgb(path), size).transpose(2, 0, 1)  # (3, S, S)
    except BadImage as e:
        return str(e)
    except OSError as e:
        return f"cannot read ({e.strerror or e})"


def decode_all(ds: Dataset, size: int, progress: Progress | None = None) -> Decoded:
    """Every item of ``ds`` decoded at ``size`` (from the cache when it is there); ``ds`` itself is
    left as it is. Files that fail to decode are left out of ``X`` and listed in the returned
    dataset's ``skipped``."""
    order = [i for s in SPLITS for i, it in enumerate(ds.items) if it.split == s]  # cache row -> item
    X, bad = _decode_cached([ds.items[i].path for i in order], order, size, _cache_path(ds, size), progress,
                            meta={"root": str(ds.root)})
    dataset = ds.without(Skipped(str(ds.items[i].path), reason) for i, reason in bad)
    ranges, start = [], 0
    for s in SPLITS:
        stop = start + sum(it.split == s for it in dataset.items)
        ranges.append((s, start, stop))
        start = stop
    return Decoded(dataset, X, tuple(ranges))


def _decode_cached(paths: list[Path], ids: list[int], size: int, arr_path: Path, progress: Progress | None = None,
                   meta: dict | None = None) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """(X, bad): the files that decoded, in their order, (K, 3, S, S) uint8 mapped from ``arr_path``
    (written on the first call), and (id, reason) of those that did not, sorted by id (``ids[k]``
    names ``paths[k]``)."""
    meta_path = arr_path.with_suffix(".json")
    n = len(paths)
    cached = _load(arr_path, meta_path, n, size)
    if cached is not None:
        if progress:
            progress(n, n)
        return cached
    X = np.zeros((n, 3, size, size), np.uint8)
    bad = []
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:  # PIL releases the GIL while decoding and resizing
        decoded = pool.map(lambda path: _decode_one(path, size), paths, chunksize=16)
        for row, out in enumerate(decoded):
            if isinstance(out, str):
                bad.append((ids[row], out))
            else:
                X[row] = out
            if progress and (row % 100 == 0 or row == n - 1):
                progress(row + 1, n)
    bad.sort()  # by id: for decode_all, the dataset's order, as the files were listed before
    if bad:
        X = X[np.isin(ids, [i for i, _ in bad], invert=True)]
    atomic_write(arr_path, lambda f: np.save(f, X))
    atomic_write_text(meta_path, json.dumps({**(meta or {}), "size": size, "n": n, "bad": bad}))
    return _map(arr_path), bad


def _load(arr_path: Path, meta_path: Path, n: int, size: int) -> tuple[np.ndarray, list] | None:
    """(X, bad) from the cache, or None when it is missing or does not fit (a damaged cache is
    rebuilt)."""
    if not (meta_path.exists() and arr_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        bad = [(int(i), str(reason)) for i, reason in meta["bad"]]
        if meta["n"] != n:
            return None
        X = _map(arr_path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (X, bad) if X.shape == (n - len(bad), 3, size, size) else None


def _map(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="c")
    except ValueError:  # an array of no rows has no bytes to map
        return np.load(path)


def _files_key(paths: list[Path]) -> str:
    """Changes when any of the files is added, removed, moved or modified (as Dataset.fingerprint)."""
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _cache_path(ds: Dataset, size: int) -> Path:
    key = hashlib.sha1(f"{ds.root.resolve()}|{ds.fingerprint(labels=False)}|{size}|v{PREPROCESSING_VERSION}"
                       f"|f{_CACHE_FORMAT}".encode()).hexdigest()[:20]
    return cache_dir() / "decoded" / f"{key}.npy"


def load_split(ds: Dataset, split: str, size: int, progress: Progress | None = None):
    """(X, y, paths) for one split: X (N, 3, size, size) uint8 tensor, y (N,) int64 tensor.

    A slice of the one cache file (see the module docstring). The files that failed to decode are
    in ``decode_all(ds, size).dataset.skipped``, which reads the cache again and decodes nothing."""
    return decode_all(ds, size, progress).split(split)
