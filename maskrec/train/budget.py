"""How long a sweep takes here, before it starts: this machine's epoch time and the sweep that fits
a budget. The Train page shows the estimate beside the sweep form and fills the form with a sweep
that ends in about :data:`BUDGET_MINUTES`::

    t = epoch_time("net1", data, val_fraction=0.15)    # EpochTime(seconds=24.0, recorded=16)
    trials, epochs = fit_budget("net1", t.seconds)      # (6, 17): 6 trials of 8-17 epochs
    estimate_minutes(trials, epochs, t.seconds)         # every trial training all its epochs

The figure comes from the runs on disk when there are any of the net on that data (every metrics
line records how long its epoch took here); else from a few training steps timed now on random
images, which leaves out reading the images and is only rough (the page says which).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch

from maskrec.config import PRESETS, REPO_ROOT, demo_dir
from maskrec.data import discover
from maskrec.models.build import spec
from maskrec.train.runs import list_runs
from maskrec.train.sweep import DEFAULT_EPOCHS
from maskrec.train.loop import evaluate, new_state, pick_device, train_one_epoch

BUDGET_MINUTES = 30  # the page's default: a sweep that ends while one waits for it
MIN_TRIALS = 6  # the sampler's 4 random start-up trials and a couple it guides
MIN_EPOCHS = 2


class EpochTime(NamedTuple):
    """Seconds per epoch of a net on a dataset here, and where the figure comes from."""
    seconds: float
    recorded: int  # the epochs of runs on disk it is the median of; 0: timed steps just now (rough)


def _folders(data: str) -> set[str]:
    """A dataset spec as real paths ("" is the demo data), so that two spellings of it compare equal."""
    return {os.path.realpath(p) for p in (data or str(demo_dir())).split(os.pathsep) if p.strip()}


def recorded_epoch(net: str, data: str, root: Path | None = None) -> EpochTime | None:
    """The median epoch of net on data in the runs on disk, None before one has finished an epoch."""
    want = _folders(data)
    secs = [r["seconds"] for run in list_runs(root) if (c := run.config()).net == net and _folders(c.data) == want
            for r in run.metrics() if r.get("seconds")]
    return EpochTime(statistics.median(secs), len(secs)) if secs else None


def _time_steps(net: str, batch: int = 32, steps: int = 2) -> tuple[float, float]:
    """(seconds per trained image, per evaluated image) of net here, on random images with
    augmentation on: a small warm-up batch, then ``steps`` timed ones (a few seconds on 2 busy
    cores). :func:`timed_rates`'s child runs it."""
    cfg = replace(PRESETS[net], batch_size=batch, augment=True)
    s = new_state(cfg, pick_device(cfg.device))
    side = spec(net).input_size
    X = torch.randint(0, 256, (batch * steps, 3, side, side), dtype=torch.uint8)  # (B, 3, S, S) as decoded
    y = torch.randint(0, 2, (len(X),))
    train_one_epoch(s, X[:8], y[:8], replace(cfg, batch_size=8), 1)
    t0 = time.perf_counter()
    train_one_epoch(s, X, y, cfg, 1)
    t1 = time.perf_counter()
    evaluate(s.model, X, y, s.device, channels_last=s.channels_last, precision=s.precision)
    return (t1 - t0) / len(X), (time.perf_counter() - t1) / len(X)


def timed_rates(net: str) -> tuple[float, float]:
    """(seconds per trained image, per evaluated image) of net timed now by :func:`_time_steps`, in a
    child process: building a net draws from torch's global random stream, and a training thread
    of this process may be drawing its dropout masks from it."""
    code = f"from maskrec.train.budget import _time_steps; print(*_time_steps({net!r}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    return float(out[-2]), float(out[-1])


def split_sizes(data: str) -> tuple[int, int]:
    """(train, test) images of the dataset ("" is the demo data)."""
    n = discover(data or str(demo_dir())).counts()
    return sum(n["train"].values()), sum(n["test"].values())


def timed_epoch(rates: tuple[float, float], sizes: tuple[int, int], val_fraction: float) -> EpochTime:
    """A rough epoch of a trial from :func:`timed_rates`: ``val_fraction`` of the train images is
    judged with the test split instead of trained."""
    (per_train, per_eval), (n_train, n_test) = rates, sizes
    return EpochTime(per_train * n_train * (1 - val_fraction) + per_eval * (n_train * val_fraction + n_test), 0)


def epoch_time(net: str, data: str, val_fraction: float) -> EpochTime:
    """A trial's epoch of net on data: recorded when the runs on disk know it, else timed now."""
    return recorded_epoch(net, data) or timed_epoch(timed_rates(net), split_sizes(data), val_fraction)


def trial_epochs(epochs: int) -> float:
    """The mean epochs of a trial: ``sweep.space`` draws them evenly from [epochs // 2, epochs]."""
    return (max(1, epochs // 2) + epochs) / 2


def estimate_minutes(trials: int, epochs: int, epoch_seconds: float) -> float:
    """Minutes for trials that all train their epochs (a pruner only shortens it)."""
    return trials * trial_epochs(epochs) * epoch_seconds / 60


def fit_budget(net: str, epoch_seconds: float, minutes: float = BUDGET_MINUTES, trials: int = 20) -> tuple[int, int]:
    """(trials, most epochs per trial) that end in about ``minutes``: the net's default epochs while
    MIN_TRIALS trials of them fit, else fewer epochs (down to MIN_EPOCHS), then fewer trials (not
    under 2); at most ``trials``."""
    e = DEFAULT_EPOCHS.get(net, 20)
    while e > MIN_EPOCHS and estimate_minutes(MIN_TRIALS, e, epoch_seconds) > minutes:
        e -= 1
    fits = int(minutes * 60 // (trial_epochs(e) * max(epoch_seconds, 1e-6)))
    return max(2, min(trials, fits)), e
