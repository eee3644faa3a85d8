"""OpenCV's Haar frontal-face cascade: the classic baseline, trained on bare faces, which a mask
hides (recall 0.28 of masked faces on the dev scenes). Kept to compare against."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from maskrec.core.imaging import as_rgb
from maskrec.faces.boxes import Box
from maskrec.faces.common import opencv, to_boxes

CASCADE = "haarcascade_frontalface_default.xml"


class Haar:
    """OpenCV's Haar frontal-face cascade. Scores are the cascade's level weights (not in [0,1])."""

    def __init__(self, name: str = "haar", scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 20, cascade: str = CASCADE):
        cv2 = opencv()
        self.name = name
        path = Path(cv2.data.haarcascades) / cascade
        self.cc = cv2.CascadeClassifier(str(path))
        if self.cc.empty():
            raise FileNotFoundError(f"cannot load the Haar cascade {path}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def detect(self, rgb: np.ndarray) -> list[Box]:
        cv2 = opencv()
        rgb = as_rgb(rgb)
        h, w = rgb.shape[:2]
        if min(h, w) < self.min_size:
            return []
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        rects, _, weights = self.cc.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size), outputRejectLevels=True)
        if len(rects) == 0:
            return []
        r = np.asarray(rects, np.float32)
        boxes = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:4]], 1)
        return to_boxes(boxes, np.asarray(weights, np.float32).reshape(-1), h, w)


def why_not() -> str:
    """The registry's availability check: "" when OpenCV ships the cascade, else why not."""
    cv2 = opencv()
    data = getattr(cv2, "data", None)
    if data is None or not (Path(data.haarcascades) / CASCADE).is_file():
        return f"OpenCV {cv2.__version__} ships no Haar cascades"
    return ""
