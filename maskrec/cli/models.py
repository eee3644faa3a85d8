"""``models``: the networks and their weight counts, read off the layer tables (no torch)."""
from __future__ import annotations

from maskrec.models.nets import REGISTRY


def add_arguments(s):
    pass  # no options


def run(a):
    for name, sp in REGISTRY.items():
        print(f"{name}  input {sp.input_size}x{sp.input_size}  weights {sp.weights:,}  ({sp.note})")
