"""A validation split carved out of the training data, the split recipes are judged on.

The test split only reports; choosing a recipe, an epoch or a threshold on it would make its figures
optimistic. ``carve(paths, labels, fraction)`` holds out a seeded, stratified share of the training
images, **by group**: images of one group all land on the same side, so a near-duplicate of a
validation image is never trained on. The groups:

- a face crop of an annotated scene (``maskrec.data.scenes``: ``<scene>-<k>[jN]_<label>.jpg``) belongs to its
  scene, so no face or background of a validation scene is trained on;
- a dataset folder with a ``manifest.csv`` holding ``file`` and ``group`` columns (facemask-dev's
  near-duplicate / identity groups) gives its files those groups;
- any other image is a group of its own.

A scene folder with a declared validation split (``maskrec.data.scenes``: the crops of its declared
validation scenes, listed under ``"val_scenes"`` in the crop folder's ``crops.json``) is not drawn
from: whenever a validation split is carved (fraction > 0), its validation scenes' faces are all of
it and its other scenes' faces all train; the fraction is drawn from the rest of the data.

The carve depends only on the files, labels, fraction and seed, so the trainer, the sweep and
``python -m maskrec threshold --split val`` all draw the same validation split from the same data::

    tr, va = carve(paths, labels, 0.15)   # index arrays into paths
"""
from __future__ import annotations

import csv
import json
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


@lru_cache(maxsize=32)
def _val_scenes(crop_root: str) -> frozenset[str] | None:
    """The declared validation scenes of a scene crop folder (crops.json's val_scenes, perhaps none),
    or None when its split is not the declared one (its faces are then drawn like any others)."""
    try:
        with open(os.path.join(crop_root, "crops.json")) as fh:
            names = json.load(fh).get("val_scenes")
    except (OSError, ValueError):
        return None
    return None if names is None else frozenset(names)


def declared_side(path: str | os.PathLike) -> bool | None:
    """True: a face of a declared validation scene; False: a face of a scene folder that declares
    validation scenes, this one not among them; None: not declared (drawn by ``carve``)."""
    p = Path(path)
    if "scene-crops" not in p.parts or "-" not in p.stem:
        return None
    names = _val_scenes(str(p.parent.parent))
    if names is None:
        return None
    return p.stem.rsplit("-", 1)[0] in names


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
    """(train indices, validation indices): the declared validation scenes' faces (see the module
    docstring), then per label whole groups shuffled by seed go to validation until it holds
    ``fraction`` of that label's undeclared images. A group is filed under its first image's label
    (groups of facemask-dev and of one scene face never mix labels; a scene's faces may, and its
    faces then all follow that label's draw). fraction 0 gives no validation split."""
    labels = np.asarray(labels)
    idx = np.arange(len(paths))
    if fraction <= 0 or len(paths) == 0:
        return idx, idx[:0]
    groups: dict[str, list[int]] = {}
    val: list[int] = []
    free = np.ones(len(paths), bool)  # not placed by a declared split
    for i, p in enumerate(paths):
        side = declared_side(p)
        if side is None:
            groups.setdefault(group_of(p), []).append(i)
        else:
            free[i] = False
            if side:
                val.append(i)
    rng = random.Random(seed)
    for label in (0, 1):
        mine = sorted((g for g, members in groups.items() if labels[members[0]] == label))
        rng.shuffle(mine)
        want = round(fraction * int(((labels == label) & free).sum()))
        got = 0
        for g in mine:
            if got >= want:
                break
            val += groups[g]
            got += sum(1 for i in groups[g] if labels[i] == label)
    is_val = np.zeros(len(paths), bool)
    is_val[val] = True
    return idx[~is_val], idx[is_val]
