"""The data a training run learns from: both splits decoded at the net's input size, the
validation split carved from train (``data.validation.carve``), masks drawn onto a share of the bare
train faces (``masks``), scene faces repeated (``with_scene_repeats``), and the progress record of
loading and training (``BatchProgress``).
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

import numpy as np
import torch

from maskrec.config import TrainConfig
from maskrec.data import DataError, Dataset, TrainViews, decode_all, discover
from maskrec.data.scenes import is_scene_face
from maskrec.data.synth import ensure_demo_data
from maskrec.data.validation import carve
from maskrec.models.build import spec
from maskrec.train import distributed, masks
from maskrec.train.runs import Run


class BatchProgress(NamedTuple):
    """Handed from the training thread to whoever draws a progress bar (immutable, so safe to share)."""
    epoch: int
    batch: int
    batches: int
    phase: str  # "load" | "train" | "test"
    epoch_started: float



def resolve_data(cfg: TrainConfig) -> Dataset:
    if cfg.data:
        return discover(cfg.data)
    return discover(ensure_demo_data())


class Splits(NamedTuple):
    ds: Dataset
    Xtr: torch.Tensor
    ytr: torch.Tensor
    Xte: torch.Tensor
    yte: torch.Tensor
    test_paths: list[str]
    Xva: torch.Tensor | None = None  # the validation split carved from train (cfg.val_fraction), else None
    yva: torch.Tensor | None = None
    val_paths: tuple[str, ...] = ()
    views: TrainViews | None = None  # every framing of each train face (scene crops' jitter), drawn per epoch


def load_data(cfg: TrainConfig, run: Run | None, ctx: distributed.Context,
              on_progress: Callable[[BatchProgress], None]) -> Splits:
    """Both splits decoded at the net's input size (from the cache when it holds them). One process
    per machine decodes and caches; the rest map its files. Every file left out, and why, goes to
    the run's skipped.json, also when a split turns out empty (it says what went wrong); no run, no files."""
    size = spec(cfg.net).input_size
    t_load = time.time()
    on_progress(BatchProgress(0, 0, 1, "load", t_load))
    load_cb = lambda done, total: on_progress(BatchProgress(0, done, total, "load", t_load))
    with distributed.local_first(ctx):
        decoded = decode_all(resolve_data(cfg), size, load_cb)  # both splits, one cache file
        views = decoded.train_views(load_cb)  # a scene face's jittered framings: augmentation, not data
    ds = decoded.dataset  # the dataset as decoded: the files that failed are in its skipped list
    Xtr, ytr, train_paths = decoded.split("train")
    Xte, yte, test_paths = decoded.split("test")
    if ctx.main and run is not None:
        run.write_json("skipped.json", [{"path": s.path, "reason": s.reason} for s in ds.skipped])
    if len(Xtr) == 0:
        raise DataError("the train split has no usable images")
    if len(Xte) == 0:
        raise DataError("the test split has no usable images")
    tr, va = carve(train_paths, ytr.numpy(), cfg.val_fraction)  # va empty when val_fraction is 0
    if cfg.val_fraction and (len(va) == 0 or len(np.unique(ytr.numpy()[va])) < 2 or len(tr) == 0):
        raise DataError(f"a validation share of {cfg.val_fraction} of {len(Xtr)} train images leaves "
                        f"no usable validation or train split (it needs both classes in each)")
    if ctx.main and cfg.val_fraction and run is not None:
        run.write_json("val.json", {"fraction": cfg.val_fraction, "n": len(va),
                                    "paths": [str(train_paths[i]) for i in va]})
    if len(va):  # validation: the plain crops; the rest trains (an index copy of the memory-mapped cache)
        tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
        d = Splits(ds, Xtr[tr_t], ytr[tr_t], Xte, yte, test_paths, Xtr[va_t], ytr[va_t],
                   tuple(str(train_paths[i]) for i in va), views.take(tr_t))
    else:  # no validation split: the train split as decoded, still memory-mapped
        d = Splits(ds, Xtr, ytr, Xte, yte, test_paths, views=views)
    kept = [str(train_paths[i]) for i in tr]  # the rows of d.Xtr, in order
    d = with_drawn_masks(d, cfg, kept, ctx, on_progress) if cfg.drawn_masks else d
    return with_scene_repeats(d, cfg.scene_repeats, kept)


def with_scene_repeats(d: Splits, repeats: int, train_paths: list[str]) -> Splits:
    """The train split with each face cut from an annotated scene ``repeats`` times (its framings still
    drawn afresh per copy each epoch), so scene faces fill more of every batch; web crops and drawn
    masks (appended after ``train_paths``' rows) once."""
    scene = [i for i, p in enumerate(train_paths) if is_scene_face(p)]
    if repeats <= 1 or not scene:
        return d
    rows = torch.cat([torch.arange(len(d.Xtr)), torch.tensor(scene * (repeats - 1), dtype=torch.int64)])
    views = d.views.take(rows) if d.views is not None else None
    return d._replace(Xtr=d.Xtr[rows], ytr=d.ytr[rows], views=views)


def with_drawn_masks(d: Splits, cfg: TrainConfig, train_paths: list[str], ctx: distributed.Context,
                     on_progress: Callable[[BatchProgress], None]) -> Splits:
    """The train split plus masked copies of a share of its bare faces (maskrec.train.masks), drawn only
    from what trains: validation and test stay real photos."""
    size = spec(cfg.net).input_size
    bare = [p for p, lab in zip(train_paths, d.ytr.tolist()) if lab == 0]
    t0 = time.time()
    with distributed.local_first(ctx):  # one process finds the landmarks and caches them
        X, y, _ = masks.synthesize(bare, size, cfg.drawn_masks, seed=cfg.seed,
                                   progress=lambda done, total: on_progress(BatchProgress(0, done, total, "load", t0)))
    if len(X) == 0:
        return d
    Xm, ym = torch.from_numpy(X), torch.from_numpy(y)
    v = d.views
    views = TrainViews(torch.cat([v.faces, Xm]), v.extra,
                       torch.cat([v.index, torch.full((len(Xm), v.index.shape[1]), -1, dtype=torch.int64)]))
    return d._replace(Xtr=torch.cat([d.Xtr, Xm]), ytr=torch.cat([d.ytr, ym]), views=views)
