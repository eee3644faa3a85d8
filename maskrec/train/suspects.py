"""Likely label errors in a dataset: out-of-sample P(mask) for every image, ranked by confident learning.

Every image, train and test, gets a P(mask) from a model that never saw it: ``folds``-fold
cross-validated predictions of a quick Net1 (``epochs`` a fold, the trainer's own pieces:
``train.new_state``, ``train_one_epoch``, ``evaluate``, so bf16 where torch supports it), or a chosen
checkpoint's predictions. A checkpoint has seen its own train split: when its training data (its
config's ``data``) holds the reviewed folder, that folder's train images are in sample, and each
reason says whether the image was seen in training (``seen_in_training``). ``cleanlab`` ranks them (``filter.find_label_issues`` picks the issues,
``rank.get_label_quality_scores`` orders them: low quality = likely wrong); images whose P(mask)
favours the other label but fall short of cleanlab's per-class threshold, and pairs of exact or
near duplicates with different labels (``health.duplicates``), join them. Results are cached on
disk per dataset fingerprint and model (checkpoint, or folds/epochs/seed), so a reload shows them
again.

Run it on the folder's own labels (``discover(path, overrides=False)``): the review judges those.

    found = find(discover(path, overrides=False), folds=5, epochs=6)  # [Suspect], most likely wrong first
    job = SuspectJob(ds).start(); job.progress(); job.result()          # the same, in the background
    cached(ds)                                                          # what was found before, or None
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from maskrec.models import checkpoint as checkpoint_file
from maskrec.core.atomic import atomic_write_text
from maskrec.config import cache_dir, demo_dir, sized_recipe
from maskrec.data import Dataset, decode_all
from maskrec.data.health import duplicates
from maskrec.infer.predictor import Predictor
from maskrec.jobs.background import BackgroundJob
from maskrec.models.build import spec
from maskrec.core.presentation import data_mismatch
from maskrec.train.loop import evaluate, new_state, pick_device, train_one_epoch

NET = "net1"  # quick: 32x32 input, a few seconds an epoch on a few thousand images
# 2% flipped labels planted in facemask-dev's train split (tests/test_suspects.py), share of them in
# the first 3x as many suspects, 5 folds, 2 shared AMD EPYC cores: 3 epochs 76% (53 s), 6 epochs 88%
# (115 s), 10 epochs 93% (172 s). 6: most of the gain for two thirds of the time.
FOLDS, EPOCHS = 5, 6
_VERSION = 2  # of the cached result's content (2: a checkpoint's reasons say whether it saw the image)
OUT_OF_SAMPLE = "out-of-sample"  # the quick Net1's P(mask); a checkpoint's is "checkpoint's"
CONFIDENT_LEARNING_AS = "confident learning: the {} P(mask) disagrees with the label"
CONFIDENT_LEARNING = CONFIDENT_LEARNING_AS.format(OUT_OF_SAMPLE)
# cleanlab's threshold is per class (the mean P of the class's own images), so a bare face at
# P(mask) 0.75 is not "confidently" covered where covered faces average 0.85; it is still a suspect
OTHER_SIDE_AS = "the {} P(mask) favours the other label"
OTHER_SIDE = OTHER_SIDE_AS.format(OUT_OF_SAMPLE)


class Suspect(NamedTuple):
    file: str  # the image's path, as the dataset lists it
    label: int  # the label the dataset gives it
    p_mask: float  # the model's P(mask): out-of-sample, or the chosen checkpoint's
    quality: float  # cleanlab's label quality in [0, 1]: low = likely wrong
    reason: str


class SuspectProgress(NamedTuple):
    """Handed from the job's thread to the page (immutable, so safe to share)."""
    phase: str  # "decode" | "fold" | "duplicates" | "rank"
    fold: int  # 1-based while phase == "fold", else 0
    folds: int
    done: int
    total: int


Report = Callable[[SuspectProgress], None]


def out_of_fold(X: torch.Tensor, y: np.ndarray, folds: int = FOLDS, epochs: int = EPOCHS, seed: int = 0,
                device: str = "auto", should_stop: Callable[[], bool] = lambda: False,
                progress: Report = lambda p: None) -> np.ndarray | None:
    """P(mask) of each row of X (N, 3, 32, 32) uint8 from a Net1 trained on the other folds; None if stopped."""
    from sklearn.model_selection import StratifiedKFold  # heavy; only this function needs it

    dev = pick_device(device)
    p = np.full(len(y), np.nan, np.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    for k, (tr, te) in enumerate(splits, start=1):
        cfg = replace(sized_recipe(NET, len(tr))[0], epochs=epochs, seed=seed + k, device=str(dev))
        s = new_state(cfg, dev)
        tr_t, te_t = torch.from_numpy(tr), torch.from_numpy(te)
        Xtr, ytr = X[tr_t], yt[tr_t]  # an index copy of the memory-mapped cache, once a fold
        for epoch in range(1, epochs + 1):
            on_batch = lambda done, total, e=epoch: progress(
                SuspectProgress("fold", k, folds, (e - 1) * total + done, epochs * total))
            if train_one_epoch(s, Xtr, ytr, cfg, epoch, should_stop, on_batch) is None:
                return None
        _, p[te] = evaluate(s.eval_model, X[te_t], yt[te_t], dev, batch_size=cfg.eval_batch_size,
                            channels_last=s.channels_last, precision=s.precision)
    return p


def seen_in_training(checkpoint: str | os.PathLike | None, ds: Dataset) -> set[str]:
    """The files of ``ds`` (as its items name them) that ``checkpoint`` was trained on: the train split,
    when its training data holds ds's folder (by real path, then by name: a checkpoint trained on
    another machine; ``presentation.data_mismatch``), else none. A validation share of that split
    was held out from the weights, but which images is not recorded in the checkpoint."""
    if not checkpoint:
        return set()
    trained = checkpoint_file.load(checkpoint).get("config", {}).get("data")
    if data_mismatch(trained, str(ds.root), demo=str(demo_dir())) is not None:
        return set()
    return {str(it.path) for it in ds.items if it.split == "train"}


def checkpoint_scores(X: torch.Tensor, checkpoint: str | os.PathLike, batch: int = 512) -> np.ndarray:
    pred = Predictor.load(checkpoint, exact=True)  # fp32: the checkpoint's own probabilities
    return np.concatenate([pred.predict_tensor(X[i:i + batch]) for i in range(0, len(X), batch)])


def rank(files: list[str], y: np.ndarray, p: np.ndarray, conflicts: dict[str, str] | None = None,
         model: str = OUT_OF_SAMPLE, seen: set[str] | None = None) -> list[Suspect]:
    """The issues confident learning finds, the images whose P(mask) is on the other label's side
    of 0.5, and the files in ``conflicts`` ({file: why}), lowest label quality first (ties: by file).
    model: whose P(mask) the reasons name; seen: a checkpoint's files it trained on (None: out of sample)."""
    from cleanlab.filter import find_label_issues  # heavy (pandas, scikit-learn); only the ranking needs it
    from cleanlab.rank import get_label_quality_scores

    eps = 1e-6  # cleanlab needs rows that sum to 1 with no exact 0/1
    pp = np.clip(p.astype(np.float64), eps, 1 - eps)
    probs = np.stack([1 - pp, pp], axis=1)
    labels = np.asarray(y, dtype=np.int64)
    quality = get_label_quality_scores(labels, probs)
    # n_jobs=1: cleanlab's default forks a multiprocessing pool, and a fork of a process with threads (the
    # Streamlit server, a job's thread, a pytest-xdist worker) can deadlock in the child (seen: the job hung)
    issues = find_label_issues(labels, probs, n_jobs=1)  # (N,) bool
    conflicts = conflicts or {}
    out = []
    for i, f in enumerate(files):
        said = "" if seen is None else " (seen in training)" if f in seen else " (not seen in training)"
        by = [CONFIDENT_LEARNING_AS.format(model) + said] if issues[i] else \
            [OTHER_SIDE_AS.format(model) + said] if quality[i] < 0.5 else []
        why = by + ([conflicts[f]] if f in conflicts else [])
        if why:
            out.append(Suspect(f, int(labels[i]), float(p[i]), float(quality[i]), "; ".join(why)))
    return sorted(out, key=lambda s: (s.quality, s.file))


def label_conflicts(ds: Dataset, progress=None) -> dict[str, str]:
    """{file: why} for each file with an exact or near duplicate of the other label (data health)."""
    out: dict[str, str] = {}
    for pair in duplicates(ds, progress)["label_conflicts"]:
        for me, other in (("a", "b"), ("b", "a")):
            rel = os.path.relpath(pair[other], ds.root)
            why = f"label conflict with {'an exact' if pair['kind'] == 'exact' else 'a near'} duplicate: {rel}"
            out[pair[me]] = f"{out[pair[me]]}, {rel}" if pair[me] in out else why
    return out


def _cache_file(ds: Dataset, checkpoint, folds: int, epochs: int, seed: int) -> Path:
    if checkpoint:
        st = Path(checkpoint).stat()
        model = f"ckpt:{Path(checkpoint).resolve()}|{st.st_size}|{st.st_mtime_ns}"
    else:
        model = f"{NET}|folds{folds}|epochs{epochs}|seed{seed}"
    key = hashlib.sha1(f"{Path(ds.root).resolve()}|{ds.fingerprint()}|{model}|v{_VERSION}".encode()).hexdigest()[:20]
    return cache_dir() / "suspects" / f"{key}.json"


def cached(ds: Dataset, checkpoint: str | os.PathLike | None = None, folds: int = FOLDS, epochs: int = EPOCHS,
           seed: int = 0) -> list[Suspect] | None:
    """What ``find`` found before with these settings, from the disk (a page after a reload), or None."""
    path = _cache_file(ds, checkpoint, folds, epochs, seed)
    try:
        return [Suspect(**s) for s in json.loads(path.read_text())["suspects"]]
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or damaged: find computes it again
        return None


def find(ds: Dataset, checkpoint: str | os.PathLike | None = None, folds: int = FOLDS, epochs: int = EPOCHS,
         seed: int = 0, device: str = "auto", should_stop: Callable[[], bool] = lambda: False,
         progress: Report = lambda p: None) -> list[Suspect] | None:
    """Suspects of ``ds`` (its labels as given), most likely wrong first; None when stopped.
    ValueError for a dataset too small for ``folds`` folds."""
    if checkpoint is None and not 2 <= folds <= 20:
        raise ValueError(f"folds must be 2..20, got {folds}")
    if not 1 <= epochs <= 100:
        raise ValueError(f"epochs must be 1..100, got {epochs}")
    done = cached(ds, checkpoint, folds, epochs, seed)
    if done is not None:
        return done
    size = Predictor.load(checkpoint).input_size if checkpoint else spec(NET).input_size
    dec = decode_all(ds, size, lambda done, total: progress(SuspectProgress("decode", 0, folds, done, total)))
    items = dec.items  # one per row of dec.X: the files that decoded
    y = np.array([it.label for it in items], np.int64)
    if checkpoint is None and min(np.bincount(y, minlength=2)) < folds:
        raise ValueError(f"{folds} folds need at least {folds} images of each label; this dataset has "
                         f"{int((y == 0).sum())} bare and {int((y == 1).sum())} covered")
    X = torch.from_numpy(np.asarray(dec.X))
    if checkpoint:
        progress(SuspectProgress("fold", 0, 0, 0, 1))
        p = checkpoint_scores(X, checkpoint)
    else:
        p = out_of_fold(X, y, folds, epochs, seed, device, should_stop, progress)
        if p is None:
            return None
    conflicts = label_conflicts(dec.dataset, lambda done, total: progress(
        SuspectProgress("duplicates", 0, folds, done, total)))
    progress(SuspectProgress("rank", 0, folds, 0, 1))
    found = rank([str(it.path) for it in items], y, p, conflicts, *(
        ("checkpoint's", seen_in_training(checkpoint, ds)) if checkpoint else ()))
    atomic_write_text(_cache_file(ds, checkpoint, folds, epochs, seed), json.dumps({"root": str(ds.root), "n": len(items),
                                          "suspects": [s._asdict() for s in found]}))
    return found


class SuspectJob(BackgroundJob):
    """``find`` on a daemon thread, with progress (SuspectProgress) and Stop, like a training."""

    def __init__(self, ds: Dataset, checkpoint: str | os.PathLike | None = None, folds: int = FOLDS,
                 epochs: int = EPOCHS, seed: int = 0, device: str = "auto", slots: threading.Semaphore | None = None):
        super().__init__("suspects", slots)
        self.ds, self.checkpoint, self.folds, self.epochs, self.seed, self.device = (
            ds, checkpoint, folds, epochs, seed, device)
        self._result: list[Suspect] | None = None

    def result(self) -> list[Suspect] | None:
        """The suspects once done (a list the job no longer touches), else None."""
        with self._lock:
            return self._result

    def _work(self) -> None:
        found = find(self.ds, self.checkpoint, self.folds, self.epochs, self.seed, self.device,
                     should_stop=self._stop.is_set, progress=self._set_progress)
        if found is None:
            self._set("stopped")
            return
        with self._lock:
            self._result = found
        self._set("done")
