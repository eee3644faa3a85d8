"""Distillation: trained nets' P(mask) as a soft target beside each label (``train --distill``).

The loss stays the report's NLL on the student's LogSoftmax outputs; only its target changes, as
label smoothing changes it: ``(1 - w) * NLL(label) + w * NLL(q)`` with ``NLL(q) = -sum_c q_c log p_c``
and ``q`` the teachers' mean class probabilities (Hinton et al., 2015, at temperature 1). A net
taught by nets of its own kind is "born again" (Furlanello et al., 2018): several teachers from
different random starts pass on what their average knows, in one net of the student's size.

The teachers see the very batch the student sees, after augmentation and mixup ("consistent
teaching", Beyer et al., 2022), shrunk or enlarged to their own input size, under the training's
autocast; they never train (eval mode: no dropout, BatchNorm's running statistics)::

    t = Teacher(["checkpoints/net2.pt", "runs/b/last.pt"], torch.device("cpu"))
    q = t.probs(xb)                                    # (B, 2), rows sum to 1
    loss = (1 - w) * nll(out, yb) + w * soft_nll(out, q)
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from maskrec.models import checkpoint


def soft_nll(out: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The NLL of LogSoftmax outputs ``out`` (B, C) against target distributions ``q`` (B, C): the
    batch mean of -sum_c q_c out_c; equal to ``F.nll_loss`` when every row of q is one-hot."""
    return -(q * out).sum(dim=1).mean()


class Teacher:
    """One or more trained checkpoints whose mean class probabilities teach a training run."""

    def __init__(self, paths: Sequence[str | Path], device: torch.device, channels_last: bool = False):
        if not paths:
            raise ValueError("distillation needs at least one teacher checkpoint")
        self.nets, self.sizes = [], []
        for p in paths:
            ck = checkpoint.load(p)
            net = checkpoint.model(ck, Path(p).name).to(device)
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
            self.nets.append(net)
            self.sizes.append(int(ck["input_size"]))

    @torch.no_grad()  # not inference_mode: q is saved for the loss's backward, which refuses inference tensors
    def probs(self, x: torch.Tensor, autocast=contextlib.nullcontext) -> torch.Tensor:
        """The teachers' mean P(class) (B, 2) in fp32 for a float batch x (B, 3, S, S) in [0, 1]."""
        total = None
        for net, size in zip(self.nets, self.sizes):
            xi = x
            if x.shape[-1] != size:  # a teacher of another input size sees the batch at its own
                mode = "area" if size < x.shape[-1] else "bilinear"
                xi = F.interpolate(x, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))
            with autocast():
                p = net(xi).float().exp()
            total = p if total is None else total + p
        return total / len(self.nets)
