"""Score a checkpoint on a dataset split, for the CLI's ``evaluate`` and the Evaluate page.

    res = score(Predictor.load(path), "data/folder")   # Scores(y, p, paths, split)
    at_threshold(res.y, res.p, 0.5)                      # metrics at a threshold
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .data import DataError, discover, load_split
from .inference import Predictor


class Scores(NamedTuple):
    y: np.ndarray  # (N,) 0/1
    p: np.ndarray  # (N,) P(mask)
    paths: list[str]
    split: str  # "test", or "all" for a dataset without a test split


def score(pred: Predictor, data: str, progress=None, batch: int = 512) -> Scores:
    """On the test split when the dataset has one, else on all its images."""
    ds = discover(data, hold_out=False)
    split = "test" if any(it.split == "test" for it in ds.items) else "train"
    X, y, paths = load_split(ds, split, pred.input_size, progress)
    if len(X) == 0:
        raise DataError(f"no usable images in the {split} split of {data}")
    p = np.concatenate([pred.predict_tensor(X[i:i + batch]) for i in range(0, len(X), batch)])
    return Scores(y.numpy(), p, paths, split if split == "test" else "all")
