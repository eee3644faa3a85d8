"""What every detector family shares: the contract, OpenCV on demand, and frame <-> box helpers.

The contract (``Detector``): built once (construction loads the model), then ``detect(rgb)`` per
frame, (H, W, 3) uint8 RGB in, a list of ``Box`` out, sorted by score, clipped to the frame,
in the frame's own pixels. A detector keeps buffers between calls, so give each thread its own.
"""
from __future__ import annotations

import importlib.util
from typing import Callable, Protocol

import numpy as np

from maskrec.faces.boxes import INSIDE, Box, drop_inside


class Detector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Box]: ...


def opencv():
    # deferred: cv2 costs a noticeable share of start-up; the registry, box maths and VOC reading
    # do without it, so it loads when a detector is checked or built
    import cv2
    return cv2


def needs_modules(*pins: str) -> Callable[[], str]:
    """A row's ``why_not`` for detectors that need pip packages: pins are "module=package==version"
    that must be importable; the reason names the packages to install."""
    def why() -> str:
        missing = [pin.split("=", 1)[1] for pin in pins
                   if importlib.util.find_spec(pin.split("=", 1)[0]) is None]
        return (f"not installed: {', '.join(missing)} (pip install --no-deps {' '.join(missing)}; "
                f"see requirements-extra.txt)") if missing else ""
    return why


def to_boxes(boxes: np.ndarray, scores: np.ndarray, h: int, w: int,
             inside: float | None = INSIDE) -> list[Box]:
    """(N, 4) float pixel boxes and their scores -> the contract's ``Box`` list: rounded, clipped
    to an h x w frame, empty ones dropped and those lying ``inside`` or more inside a bigger one
    (a face part boxed as a face: ``drop_inside``; None keeps them), best score first."""
    out = []
    for (x0, y0, x1, y1), s in zip(boxes, scores):
        b = Box(int(max(0, round(x0))), int(max(0, round(y0))),
                int(min(w, round(x1))), int(min(h, round(y1))), float(s))
        if b.x1 > b.x0 and b.y1 > b.y0:
            out.append(b)
    if inside is not None:
        out = [out[i] for i in drop_inside(out, inside)]
    out.sort(key=lambda b: -b.score)
    return out


def scaled(rgb: np.ndarray, upscale: float, max_side: int) -> tuple[np.ndarray, float]:
    """The frame enlarged by ``upscale`` (small faces grow into the detector's range), its longer
    side capped at ``max_side``, and the factor applied (1.0: the frame itself, no copy)."""
    cv2 = opencv()
    h, w = rgb.shape[:2]
    f = min(upscale, max_side / max(h, w))
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    if (nw, nh) == (w, h):
        return rgb, f
    return cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR), f

