"""An event's pictures, as JPEG bytes: the frame with the person boxed (others blurred by option)
and the person's face crop. Made on the events writer's thread, never a camera's.

    jpg = evidence_jpeg(rgb, boxes, target=1, tag="#3 no mask 0.08", blur_others=True)
    face = thumbnail_jpeg(rgb, crop_box, side=112)
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from maskrec.live.recognize import RED

QUALITY = 85


def jpeg(rgb: np.ndarray, quality: int = QUALITY) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _clip(box, shape) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def blur(rgb: np.ndarray, box) -> None:
    """Blur ``box`` of ``rgb`` in place past recognition: pixelate to ~6 blocks a side, then smooth
    (a Gaussian alone of a small kernel leaves a face recognisable)."""
    import cv2  # deferred: only an event pays its import
    x0, y0, x1, y1 = _clip(box, rgb.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    part = rgb[y0:y1, x0:x1]
    small = cv2.resize(part, (6, 6), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(x1 - x0, y1 - y0) // 4) | 1)
    rgb[y0:y1, x0:x1] = cv2.GaussianBlur(big, (k, k), 0)


def evidence_jpeg(rgb: np.ndarray, boxes: list, target: int, tag: str, blur_others: bool = True) -> bytes:
    """The frame (copied; the camera's array is never written) with face ``target`` boxed in red and
    tagged, and with ``blur_others`` every other face blurred."""
    import cv2
    out = np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    if blur_others:
        for j, b in enumerate(boxes):
            if j != target:
                blur(out, b)
    h, w = out.shape[:2]
    x0, y0, x1, y1 = _clip(boxes[target], out.shape)
    thick = max(2, round(min(h, w) / 240))
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), RED, thick)
    scale = max(0.4, w / 1400)
    (tw, th), base = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    ty = y0 - 4 if y0 - th - base - 4 >= 0 else min(h - 1, y1 + th + 4)
    cv2.rectangle(out, (x0, ty - th - base), (min(w - 1, x0 + tw + 4), ty + base), RED, -1)
    cv2.putText(out, tag, (x0 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return jpeg(out)


def thumbnail_jpeg(rgb: np.ndarray, crop, side: int = 112) -> bytes:
    """The face as the classifier saw it (its crop box), its longer side ``side`` px at most."""
    x0, y0, x1, y1 = _clip(crop, rgb.shape)
    img = Image.fromarray(np.ascontiguousarray(rgb[y0:y1, x0:x1, :3]))
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()
