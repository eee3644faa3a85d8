"""What a training recipe changes in a step, as plain functions of tensors and the run's generator:
augmentation, the loss (label smoothing), mixup, the EMA of the weights and the learning-rate
schedule. ``train.train_one_epoch`` calls them; every random draw comes from the run's generator,
so a resumed run and every torchrun rank draw the same numbers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from maskrec.config import TrainConfig


def augment_batch(x: torch.Tensor, gen: torch.Generator, n: int | None = None,
                  keep: slice = slice(None), strength: float = 1.0) -> torch.Tensor:
    """Flip, small crop/scale and colour jitter on a float batch (B, 3, S, S) in [0, 1]; ``strength``
    scales the ranges (1: scale 0.9-1.1, shift +-8%, brightness and contrast 0.8-1.2).

    The random numbers are drawn for n images (default B) and rows ``keep`` of them used: under
    torchrun every rank draws for the whole global batch and keeps its share, so the ranks'
    generators stay in step (they also draw the next epoch's order)."""
    n = x.shape[0] if n is None else n
    flip = (torch.rand(n, generator=gen) < 0.5)[keep]
    x = torch.where(flip[:, None, None, None].to(x.device), x.flip(3), x)
    k = strength
    scale = (1 + k * (0.2 * torch.rand(n, generator=gen) - 0.1))[keep]
    shift = ((torch.rand(n, 2, generator=gen) - 0.5) * 0.16 * k)[keep]
    b = x.shape[0]
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    bright = (1 + k * (0.4 * torch.rand(n, 1, 1, 1, generator=gen) - 0.2)).clamp(min=0.05)[keep].to(x.device)
    contrast = (1 + k * (0.4 * torch.rand(n, 1, 1, 1, generator=gen) - 0.2)).clamp(min=0.05)[keep].to(x.device)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean * bright).clamp_(0, 1)


def low_res(x: torch.Tensor, gen: torch.Generator, share: float, n: int | None = None,
            keep: slice = slice(None)) -> torch.Tensor:
    """A share of a float batch (B, 3, S, S) shown at a lower resolution: shrunk (area average) to a
    side drawn per batch from S/4 to 3S/4 and enlarged back (bilinear) to S, as a small or distant
    face reaches the net. Net2 sees its 64 px input with detail Net1's 32 px never has; this teaches
    it the coarse cues too. Draws for n images and keeps rows ``keep`` (see augment_batch)."""
    n = x.shape[0] if n is None else n
    size = x.shape[-1]
    side = int(size // 4 + torch.randint(size // 2 + 1, (1,), generator=gen).item())
    rows = (torch.rand(n, generator=gen) < share)[keep].nonzero().squeeze(1).to(x.device)
    if len(rows) == 0:
        return x
    small = F.interpolate(x[rows], size=(side, side), mode="area")  # only the rows shown at low resolution
    x = x.clone()
    x[rows] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    return x


def nll(out: torch.Tensor, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """The report's NLL loss on LogSoftmax outputs (B, 2), its target smoothed towards uniform by
    ``smoothing``: (1 - e) * NLL + e * mean over classes of -log p."""
    loss = F.nll_loss(out, y)
    if smoothing:
        loss = (1 - smoothing) * loss + smoothing * (-out.mean(dim=1)).mean()
    return loss


def mixup_draw(alpha: float, gen: torch.Generator, n: int, keep: slice = slice(None)) -> tuple[float, torch.Tensor]:
    """(lambda, partner of each row) for mixup of a batch of this process's rows ``keep`` of n. Drawn
    from the run's generator (lambda ~ Beta(alpha, alpha) by the inverse CDF of a uniform draw), so
    a resumed run and every torchrun rank draw the same numbers; partners are within a rank's rows."""
    from scipy.special import betaincinv  # heavy (scipy, with scikit-learn), and needed only with mixup
    lam = float(betaincinv(alpha, alpha, torch.rand(1, generator=gen).item()))
    order = torch.rand(n, generator=gen)[keep].argsort()
    return max(lam, 1 - lam), order  # the kept image dominates, so its label stays the one counted


def ema_avg(decay: float):
    """torch.optim.swa_utils' per-parameter update for an exponential moving average whose decay
    warms up as (1 + n) / (10 + n) towards ``decay`` after n updates (TensorFlow's
    ExponentialMovingAverage rule): with a fixed 0.995 the average would still hold 29% of the random
    initial weights after 250 steps, and the early epochs' charts would judge that mixture."""
    def avg(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1 + float(n)) / (10 + float(n)))
        return averaged * d + current * (1 - d)
    return avg


def lr_at(cfg: TrainConfig, t: float) -> float:
    """Learning rate at training time t, counted in epochs from 0 (a pure function, so resume
    needs no scheduler state). "cosine": linear warm-up over the first epoch (the first tenth of
    a run shorter than 10 epochs), then cosine decay to 0 at the end of the last epoch."""
    if cfg.schedule == "constant":
        return cfg.lr
    warm = min(1.0, cfg.epochs / 10)
    if t < warm:
        return cfg.lr * max(t / warm, 0.01)
    frac = (t - warm) / max(cfg.epochs - warm, 1e-9)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
