"""A validation split carved out of the training data, the split recipes are judged on.

The test split only reports; choosing a recipe, an epoch or a threshold on it would make its figures
optimistic. ``carve(paths, labels, fraction)`` holds out a seeded, stratified share of the training
images, **by group**: images of one group all land on the same side, so a near-duplicate of a
validation image is never trained on. The groups:

- a face crop of an annotated scene (``maskrec.scenes``: ``<scene>-<k>[jN]_<label>.jpg``) belongs to its
  scene, so no face or background of a validation scene is trained on;
- a dataset folder with a ``manifest.csv`` holding ``file`` and ``group`` columns (facemask-dev's
  near-duplicate / identity groups) gives its files those groups;
- any other image is a group of its own.

The carve depends only on the files, labels, fraction and seed, so the trainer, the sweep and
``python -m maskrec threshold --split val`` all draw the same validation split from the same data::

    tr, va = carve(paths, labels, 0.15)   # index arrays into paths
"""
from __future__ import annotations

import csv
import os
import random
from functools import lru_cache
from pathlib import Path

import numpy as np

SPLIT_SEED = 0  # one validation split per dataset, whatever a trial's training seed


@lru_cache(maxsize=32)
def _manifest_groups(folder: str) -> dict[str, str]:
    """{absolute file path: group} from folder/manifest.csv, {} when there is none or it has no groups."""
    f = Path(folder) / "manifest.csv"
    if not f.is_file():
        return {}
    try:
        with f.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    if not rows or "file" not in rows[0] or "group" not in rows[0]:
        return {}
    return {os.path.normpath(os.path.join(folder, r["file"])): f"{folder}#{r['group']}" for r in rows}


def group_of(path: str | os.PathLike) -> str:
    """The group an image belongs to (see the module docstring)."""
    p = Path(path)
    parts = p.parts
    if "scene-crops" in parts and "-" in p.stem:
        return f"scene:{p.parent.parent}/{p.stem.rsplit('-', 1)[0]}"
    for folder in (p.parent.parent, p.parent):  # <root>/train/x.jpg or <root>/x.jpg
        g = _manifest_groups(str(folder)).get(os.path.normpath(str(p)))
        if g is not None:
            return g
    return str(p)


def carve(paths: list[str], labels: np.ndarray, fraction: float,
          seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): per label, whole groups shuffled by seed go to validation
    until it holds ``fraction`` of that label's images. A group is filed under its first image's label
    (groups of facemask-dev and of one scene face never mix labels; a scene's faces may, and its
    faces then all follow that label's draw). fraction 0 gives no validation split."""
    labels = np.asarray(labels)
    idx = np.arange(len(paths))
    if fraction <= 0 or len(paths) == 0:
        return idx, idx[:0]
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(group_of(p), []).append(i)
    rng = random.Random(seed)
    val: list[int] = []
    for label in (0, 1):
        mine = sorted((g for g, members in groups.items() if labels[members[0]] == label))
        rng.shuffle(mine)
        want = round(fraction * int((labels == label).sum()))
        got = 0
        for g in mine:
            if got >= want:
                break
            val += groups[g]
            got += sum(1 for i in groups[g] if labels[i] == label)
    is_val = np.zeros(len(paths), bool)
    is_val[val] = True
    return idx[~is_val], idx[is_val]
