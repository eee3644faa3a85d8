"""Score a checkpoint on a dataset split, for the CLI's ``evaluate`` and the Evaluate page.

    res = score(Predictor.load(path), "data/folder")   # Scores(y, p, paths, split)
    at_threshold(res.y, res.p, 0.5)                      # metrics at a threshold
    score(pred, "data/folder", split="val")             # the validation split the checkpoint's run carved
    score(pred, "dev:scenes", split="val-scenes")        # ... its annotated scenes' faces only ("-crops": the rest)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from maskrec.data import DataError, discover, load_split
from maskrec.infer.predictor import Predictor
from maskrec.data.scenes import is_scene_face
from maskrec.data.validation import carve

# a split name may end in one of these: the faces of annotated scenes only, or everything else (web crops)
PARTS = {"scenes": True, "crops": False}
SPLITS = ("auto", "val", "val-scenes", "val-crops", "test-scenes", "test-crops")


class Scores(NamedTuple):
    y: np.ndarray  # (N,) 0/1
    p: np.ndarray  # (N,) P(mask)
    paths: list[str]
    split: str  # "test", or "all" for a dataset without a test split


def score(pred: Predictor, data: str, progress=None, batch: int = 512, split: str = "auto") -> Scores:
    """On the test split when the dataset has one, else on all its images; ``split="val"``: on the
    validation split that the checkpoint's training carved out of data's train split (its config's
    ``val_fraction``; the same files, as ``validation.carve`` is deterministic). A ``-scenes`` or
    ``-crops`` suffix keeps the annotated scenes' faces only, or the rest (``PARTS``)."""
    base, _, part = split.partition("-")
    if part:
        if part not in PARTS or base not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
        res = score(pred, data, progress, batch, "val" if base == "val" else "auto")
        keep = np.array([is_scene_face(p) == PARTS[part] for p in res.paths], bool)
        if not keep.any():
            raise DataError(f"the {base} split of {data} has no {'scene faces' if PARTS[part] else 'web crops'}")
        return Scores(res.y[keep], res.p[keep], [p for p, k in zip(res.paths, keep) if k], split)
    if split == "val":
        frac = float(pred.config.get("val_fraction") or 0)
        if not frac:
            raise DataError("this checkpoint was trained without a validation split (val_fraction 0)")
        ds = discover(data)  # as the trainer found it: a test split held out where the data has none
        X, y, paths = load_split(ds, "train", pred.input_size, progress)
        _, va = carve(paths, y.numpy(), frac)
        if len(va) == 0:
            raise DataError(f"the validation share {frac} of {data}'s train split is empty")
        X, y, paths = X[va], y[va], [paths[i] for i in va]
    else:
        ds = discover(data, hold_out=False)
        split = "test" if any(it.split == "test" for it in ds.items) else "train"
        X, y, paths = load_split(ds, split, pred.input_size, progress)
    if len(X) == 0:
        raise DataError(f"no usable images in the {split} split of {data}")
    p = np.concatenate([pred.predict_tensor(X[i:i + batch]) for i in range(0, len(X), batch)])
    return Scores(y.numpy(), p, paths, split if split in ("test", "val") else "all")
