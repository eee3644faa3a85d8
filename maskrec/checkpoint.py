"""Checkpoints that carry their own config, loaded only with ``weights_only=True``.

A checkpoint is a dict: ``format``, ``net``, ``input_size``, ``preprocessing``, ``classes``,
``threshold``, ``metrics`` (of its epoch), ``epoch``, ``config``, ``model`` (state dict) and, for
resuming, ``optimizer`` and ``rng``. ``load`` refuses pickles that would run code and explains
corrupted files or files that are not MaskRec checkpoints.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from .atomic import atomic_write
from .models import REGISTRY

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
        raise CheckpointError(f"{path.name} was refused: it is not a plain-weights checkpoint "
                              f"(it would need to run code to load; {str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path.name} is not a readable checkpoint (corrupted or truncated?): "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a MaskRec checkpoint (no '{FORMAT}' format tag)")
    if ckpt.get("net") not in REGISTRY:
        raise CheckpointError(f"{path.name} is for an unknown net {ckpt.get('net')!r}")
    return ckpt
