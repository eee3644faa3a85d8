"""The networks as torch modules: one builder over the rows of ``maskrec.models.nets``.

``build("net2", dropout=0.2)`` turns a table into an ``nn.Sequential`` that ends in LogSoftmax;
``build("resnet18")`` wraps a torchvision architecture (random weights) so it ends in LogSoftmax too.
``cam_parts(model)`` splits either kind where Grad-CAM looks. The tables, the registry and ``spec``
live in the torch-free :mod:`maskrec.models.nets` and are re-exported here, so
``from maskrec.models.build import REGISTRY, build, spec`` keeps working.
"""
from __future__ import annotations

import torch
from torch import nn

from maskrec.models.nets import IN_CHANNELS, N_CLASSES, NET1, NET2, REGISTRY, RESNET18, Conv, NetSpec, spec

__all__ = ["Conv", "NetSpec", "NET1", "NET2", "RESNET18", "REGISTRY", "spec", "build", "count_weights",
           "TorchvisionNet", "cam_parts"]


class TorchvisionNet(nn.Module):
    """A torchvision classifier with N_CLASSES outputs, then LogSoftmax: the tables' contract.

    ``cam_layer`` names the child of ``body`` whose output Grad-CAM weights (see ``cam_parts``)."""

    def __init__(self, body: nn.Module, cam_layer: str):
        super().__init__()
        self.body, self.cam_layer = body, cam_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.body(x), dim=1)


def build(name: str, dropout: float | None = None) -> nn.Module:
    """(B, 3, S, S) float in [0, 1] -> (B, 2) log-probabilities [no_mask, mask]. ``dropout``: the
    rate of a table's dropout layers (a torchvision row has none)."""
    s = spec(name)
    if s.torchvision:
        # deferred: torchvision.models costs seconds to import, and only this row needs it
        import torchvision.models

        body = getattr(torchvision.models, s.torchvision)(weights=None, num_classes=N_CLASSES)
        return TorchvisionNet(body, s.cam_layer)
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


def cam_parts(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(features, scores) with ``model(x) == log_softmax(scores(features(x)))``: features end at the
    last conv stage (a table's last Conv2d, a torchvision row's ``cam_layer``), scores are the class
    scores before LogSoftmax. Both share the model's modules (no copies). Grad-CAM's split."""
    if isinstance(model, TorchvisionNet):
        children = list(model.body.named_children())
        cut = [n for n, _ in children].index(model.cam_layer) + 1
        rest = [m for _, m in children[cut:]]
        # torchvision's classifiers flatten the pooled maps right before their last child (fc / classifier)
        return nn.Sequential(*[m for _, m in children[:cut]]), nn.Sequential(*rest[:-1], nn.Flatten(), rest[-1])
    layers = list(model)
    last = max(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d))
    head = layers[:-1] if isinstance(layers[-1], nn.LogSoftmax) else layers
    return nn.Sequential(*layers[:last + 1]), nn.Sequential(*head[last + 1:])


def count_weights(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
