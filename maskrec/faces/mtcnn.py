"""facenet-pytorch's MTCNN, the classic three-stage cascade: measured, kept for comparison."""
from __future__ import annotations

import numpy as np

from maskrec.core.imaging import as_rgb
from maskrec.faces.boxes import Box
from maskrec.faces.common import needs_modules, to_boxes

why_not = needs_modules("facenet_pytorch=facenet-pytorch==2.6.0", "tqdm=tqdm", "requests=requests")


class MTCNN:
    """facenet-pytorch's MTCNN (P-, R- and O-Net weights ship in its wheel; MIT), for comparison:
    below RetinaFace and BlazeFace-tiles in recall, slower than both. min_face: smallest face
    searched for, px; thresholds: the three stages' score floors. It runs in torch's threads."""

    def __init__(self, name: str = "mtcnn", min_face: int = 12,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)):
        # an optional package, loaded when built (it imports torch, requests and tqdm)
        from facenet_pytorch import MTCNN as _Net
        self.name = name
        self.net = _Net(keep_all=True, min_face_size=min_face, thresholds=list(thresholds),
                        device="cpu")

    def detect(self, rgb: np.ndarray) -> list[Box]:
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        if min(h, w) < 12:  # P-Net's 12 px window does not fit
            return []
        boxes, probs = self.net.detect(rgb)
        if boxes is None:
            return []
        return to_boxes(np.asarray(boxes, np.float32), np.asarray(probs, np.float32), h, w)

