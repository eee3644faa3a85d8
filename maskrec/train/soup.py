"""Model soups: one net whose weights are the plain mean of several fine-tunes of one checkpoint.

Fine-tunes that start from the same trained weights and differ only in their seed (data order,
augmentation, dropout) stay in one basin of the loss, and the mean of their weights is usually
better than each of them (Wortsman et al., 2022, "Model soups"): an average across trajectories, as
an EMA is one along a trajectory. The result is an ordinary checkpoint of the same net, so the app,
the engines and ``threshold`` take it as they take any other.

BatchNorm's running statistics belong to the weights they were measured under, not to their mean,
so a soup's are measured again on the training faces of its ingredients' own data (the validation
share carved out as they carved it) with ``torch.optim.swa_utils.update_bn``::

    ck = make_soup(["runs/a/last.pt", "runs/b/last.pt"])   # a checkpoint dict, metrics of its val split
    checkpoint.save(Path("soup.pt"), ck)
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.optim.swa_utils import update_bn

from maskrec.models import checkpoint
from maskrec.train import distributed
from maskrec.config import TrainConfig
from maskrec.data import batch_to_float
from maskrec.core.metrics import epoch_metrics
from maskrec.models.build import build
from maskrec.train.loop import FP32, BatchProgress, evaluate, load_data

BN_BATCH = 256


def ingredient_path(p: str | Path) -> Path:
    """A checkpoint file, or a run folder (its last.pt: the epoch a run ends with)."""
    p = Path(p)
    return p / "last.pt" if p.is_dir() else p


def average(states: Sequence[dict]) -> dict:
    """The element-wise mean of state dicts of one net; integer entries (BatchNorm's batch counts)
    are taken from the first. Raises CheckpointError when the dicts do not hold the same tensors."""
    first = states[0]
    for i, s in enumerate(states[1:], 2):
        if s.keys() != first.keys() or any(s[k].shape != v.shape for k, v in first.items()):
            raise checkpoint.CheckpointError(f"ingredient {i} does not hold the same weights as ingredient 1")
    return {k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point()
            else v.clone() for k, v in first.items()}


def make_soup(paths: Sequence[str | Path], data: str | None = None, seed: int = 0,
              on_progress: Callable[[BatchProgress], None] = lambda p: None) -> dict:
    """A checkpoint dict: the mean of the ingredients' weights (their saved "model", the EMA average
    where they trained with one), BatchNorm statistics measured again on the training faces, the
    validation and test figures at threshold 0.5 as "metrics" and the ingredients under "soup".
    ``data`` overrides where the data lies (else the first ingredient's config says)."""
    if len(paths) < 2:
        raise ValueError("a soup needs at least two ingredients")
    files = [ingredient_path(p) for p in paths]
    cks = [checkpoint.load(f) for f in files]
    net = cks[0]["net"]
    for f, ck in zip(files, cks):
        if ck["net"] != net:
            raise checkpoint.CheckpointError(f"{f} is a {ck['net']}, the first ingredient a {net}: a soup is of one net")
    cfg = TrainConfig.from_dict(cks[0].get("config", {}))
    if data is not None:
        cfg = replace(cfg, data=data)
    model = build(net, dropout=cfg.dropout)
    model.load_state_dict(average([ck["model"] for ck in cks]))
    d = load_data(cfg, None, distributed.SINGLE, on_progress)
    t0 = time.time()
    n = len(d.Xtr)
    batches = [batch_to_float(d.Xtr[i:i + BN_BATCH]) for i in range(0, n, BN_BATCH)]  # the plain crops
    torch.manual_seed(seed)  # update_bn runs the net in train mode: Net2's dropout draws, as in training
    update_bn(_counted(batches, lambda k: on_progress(BatchProgress(0, k, len(batches), "train", t0))), model)
    cpu = torch.device("cpu")

    def judged(X, y):
        loss, p = evaluate(model, X, y, cpu, precision=FP32)
        return epoch_metrics(y.numpy(), p, loss)
    metrics = {f"test_{k}": v for k, v in judged(d.Xte, d.yte).items()}
    if d.Xva is not None:
        metrics = {**{f"val_{k}": v for k, v in judged(d.Xva, d.yva).items()}, **metrics}
    about = {k: v for k, v in cks[0].items()
             if k in ("net", "input_size", "preprocessing", "classes", "precision", "channels_last", "data")}
    return {**about, "threshold": 0.5, "config": cfg.to_dict(), "epoch": 0, "metrics": metrics,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "soup": {"ingredients": [{"path": str(f), "seed": dict(ck.get("config", {})).get("seed"),
                                      "epoch": ck.get("epoch")} for f, ck in zip(files, cks)],
                     "bn_images": n}}


def _counted(batches, tick):
    for k, b in enumerate(batches, 1):
        yield b
        tick(k)
