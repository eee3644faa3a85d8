"""Checkpoints that carry their own config, loaded only with ``weights_only=True``.

A checkpoint is a dict: ``format``, ``net``, ``input_size``, ``preprocessing``, ``classes``,
``threshold``, ``metrics`` (of its epoch), ``epoch``, ``config``, ``model`` (state dict) and, for
resuming, ``optimizer`` and ``rng``. ``load`` refuses pickles that would run code and explains
corrupted files or files that are not MaskRec checkpoints; ``model`` rebuilds its net (for the
Predictor and the exporter alike) and ``weights_digest`` names its weights for caches.

    ck = load("checkpoints/net1.pt")
    net = model(ck, "net1.pt")      # fp32 nn.Module, eval mode, on the CPU
"""
from __future__ import annotations

import hashlib
import io
import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from maskrec.core.atomic import atomic_write
from maskrec.models.build import REGISTRY, build

FORMAT = "maskrec-checkpoint/1"


class CheckpointError(ValueError):
    pass


def save(path: Path, ckpt: dict) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **ckpt}, buf)
    atomic_write(path, lambda f: f.write(buf.getbuffer()))


def load(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged or foreign
        raise CheckpointError(f"{path.name} is not a readable checkpoint (corrupted, truncated, or not a PyTorch file)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses any global it does not know, i.e. anything that could run code.
        # torch's message advises weights_only=False, never to be followed for a file from outside.
        raise CheckpointError(f"{path.name} was refused and not loaded: it holds code or objects a checkpoint "
                              f"does not{_refused_global(str(e))}; only plain weights are loaded") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path.name} is not a readable checkpoint (corrupted or truncated?): "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a MaskRec checkpoint (no '{FORMAT}' format tag)")
    if ckpt.get("net") not in REGISTRY:
        raise CheckpointError(f"{path.name} is for an unknown net {ckpt.get('net')!r}")
    return ckpt


def _refused_global(torch_message: str) -> str:
    """ " (fractions.Fraction)": what torch's refusal names, without its advice; "" when it names nothing."""
    m = re.search(r"\bGLOBAL ([\w.]+)", torch_message)  # "Unsupported global: GLOBAL x", "unsupported GLOBAL x"
    return f" ({m.group(1)})" if m else ""


def model(ckpt: dict, name: str = "the checkpoint") -> nn.Module:
    """The checkpoint's net with its weights: fp32, eval mode, on the CPU. ``name`` (a file name)
    is for the error when the weights do not fit the net the checkpoint names."""
    net = build(ckpt["net"], dropout=dict(ckpt.get("config", {})).get("dropout"))
    try:
        net.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"the weights in {name} do not fit {ckpt['net']}: {str(e).splitlines()[0]}") from None
    return net.eval()


def load_weights(net: nn.Module, path: str | Path, name: str) -> None:
    """Load the weights of the checkpoint at ``path``, which must be of net ``name``, into ``net``:
    a fine-tuning run's start (``train --init``). Its "model": the averaged weights where it trained
    with EMA, as training saves and the app ships them."""
    try:
        ck = load(path)
        if ck["net"] != name:
            raise CheckpointError(f"that checkpoint is a {ck['net']}, not a {name}")
        net.load_state_dict(model(ck, Path(path).name).state_dict())
    except CheckpointError as e:
        raise CheckpointError(f"cannot start {name} from {path}: {e}") from None


def weights_digest(net: nn.Module) -> str:
    """20 hex digits naming a net's weights (names and values): a cache key that a new threshold
    or metrics written into the file leave alone, and that retraining changes."""
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]
