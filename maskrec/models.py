"""The report's networks as torch modules: one builder over the layer tables of ``maskrec.nets``.

``build("net2", dropout=0.2)`` turns a table into an ``nn.Sequential`` that ends in LogSoftmax.
The tables, the registry and ``spec`` live in the torch-free :mod:`maskrec.nets` and are
re-exported here, so ``from maskrec.models import REGISTRY, build, spec`` keeps working.
"""
from __future__ import annotations

from torch import nn

from .nets import IN_CHANNELS, N_CLASSES, NET1, NET2, REGISTRY, Conv, NetSpec, spec

__all__ = ["Conv", "NetSpec", "NET1", "NET2", "REGISTRY", "spec", "build", "count_weights"]


def build(name: str, dropout: float | None = None) -> nn.Sequential:
    """(B, 3, S, S) float in [0, 1] -> (B, 2) log-probabilities [no_mask, mask]."""
    s = spec(name)
    rate = s.default_dropout if dropout is None else dropout
    layers: list[nn.Module] = []
    c_in = IN_CHANNELS
    for row in s.convs:
        layers.append(nn.Conv2d(c_in, row.out, row.k, padding=row.pad))
        if row.bn:
            layers.append(nn.BatchNorm2d(row.out))
        layers.append(nn.ReLU(inplace=True))
        if row.pool:
            layers.append(nn.MaxPool2d(2))
        if row.dropout:
            layers.append(nn.Dropout(rate))
        c_in = row.out
    layers += [nn.Flatten(), nn.Linear(c_in * s.feature_size**2, N_CLASSES), nn.LogSoftmax(dim=1)]
    return nn.Sequential(*layers)


def count_weights(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
