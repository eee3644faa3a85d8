"""The report's networks as layer tables and a registry, without torch.

Each net is a list of :class:`Conv` rows read straight off the report's architecture tables
(out channels, filter, padding, batch-norm, max-pool, dropout after the block) plus its input size.
``maskrec.models.build`` turns a table into an ``nn.Sequential``; this module stays torch-free so
that what only reads the tables (``python -m maskrec models``, config validation) starts at once.
A third net is one more table in ``REGISTRY``, or a row naming a torchvision architecture
(``torchvision="resnet18"``: built with random weights, no download), whose weight count is pinned
here since counting it would need torch (a test checks the pin against the built net).
"""
from __future__ import annotations

from dataclasses import dataclass

N_CLASSES = 2  # [no_mask, mask]
IN_CHANNELS = 3  # RGB


@dataclass(frozen=True)
class Conv:
    out: int
    k: int
    pad: int
    bn: bool = False
    pool: bool = False  # 2x2 max-pool after the activation
    dropout: bool = False  # dropout after the block (rate comes from the config)


@dataclass(frozen=True)
class NetSpec:
    name: str
    input_size: int
    convs: tuple[Conv, ...]
    default_dropout: float = 0.0
    note: str = ""
    # A torchvision.models builder name instead of a table (convs empty): random init, N_CLASSES outputs.
    torchvision: str = ""
    cam_layer: str = ""  # torchvision rows: the body's child whose output Grad-CAM weights (the last conv stage)
    pinned_weights: int = 0  # torchvision rows: their trainable parameters, pinned (a test builds and counts)

    @property
    def has_dropout(self) -> bool:
        return any(c.dropout for c in self.convs)

    @property
    def feature_size(self) -> int:
        """A table's side after its pools (the FC layer's input is out * side**2)."""
        pools = sum(c.pool for c in self.convs)
        return self.input_size // 2**pools

    @property
    def weights(self) -> int:
        """The trainable parameters ``models.build`` gives this row: for a table each conv's kernel
        and bias, a batch-norm's scale and shift (its running statistics are buffers, not weights),
        and the final linear layer; for a torchvision row its pinned count. A test pins it to
        ``count_weights(build(name))``."""
        if self.torchvision:
            return self.pinned_weights
        n, c_in = 0, IN_CHANNELS
        for row in self.convs:
            n += c_in * row.out * row.k**2 + row.out + (2 * row.out if row.bn else 0)
            c_in = row.out
        return n + c_in * self.feature_size**2 * N_CLASSES + N_CLASSES


# Report section 2b: 6 conv + 1 FC, 32x32 input, FC 4*4*256 -> 2.
NET1 = NetSpec(
    name="net1",
    input_size=32,
    convs=(
        Conv(8, 5, 2),
        Conv(16, 3, 1),
        Conv(32, 3, 1),
        Conv(64, 3, 1, bn=True, pool=True),
        Conv(128, 3, 1, pool=True),
        Conv(256, 3, 1, bn=True, pool=True),
    ),
    note="report Net #1: 6 conv + 1 FC, weight decay only",
)

# Report section 3b: 7 conv + 1 FC, 64x64 input, dropout after conv 3 and after conv 7, FC 8*8*512 -> 2.
# The table's activation cell for conv 7 is blank (a lost cell in the report's table; every other
# conv has ReLU); we read it as ReLU. The weight count does not depend on it.
NET2 = NetSpec(
    name="net2",
    input_size=64,
    convs=(
        Conv(8, 5, 2),
        Conv(16, 5, 2),
        Conv(32, 5, 2, dropout=True),
        Conv(64, 5, 2, bn=True, pool=True),
        Conv(128, 5, 2),
        Conv(256, 3, 1, pool=True),
        Conv(512, 3, 1, bn=True, pool=True, dropout=True),
    ),
    default_dropout=0.2,
    note="report Net #2: 7 conv + 1 FC, weight decay + two dropouts (0.2)",
)

# Not in the report (issue 34): a small modern CNN for comparison, torchvision's ResNet-18 unchanged
# (its 7x7 stride-2 stem and max-pool take 64 px to 16; layer4's maps are 2x2), trained from scratch.
RESNET18 = NetSpec(
    name="resnet18",
    input_size=64,
    convs=(),
    torchvision="resnet18",
    cam_layer="layer4",
    pinned_weights=11_177_538,
    note="torchvision ResNet-18, random init, 64x64 input; not in the report",
)

REGISTRY: dict[str, NetSpec] = {s.name: s for s in (NET1, NET2, RESNET18)}


def spec(name: str) -> NetSpec:
    try:
        return REGISTRY[name.lower()]
    except KeyError:
        raise ValueError(f"unknown net {name!r} (choose from {', '.join(REGISTRY)})") from None
