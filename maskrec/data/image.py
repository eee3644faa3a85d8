"""The one preprocessing: upright 8-bit RGB -> network input, and what a checkpoint records of it.

Pixels come from the one image reader, ``maskrec.core.imaging.open_rgb`` (re-exported here and from
``maskrec.data``: EXIF applied, bombs refused, BadImage with a reason). ``to_input`` then squashes
an image to the net's input, the same for training, evaluation and the webcam, and
``preprocessing_info`` is what a checkpoint records of it.

    img = open_rgb(path)                      # PIL RGB image, upright
    x = to_input(img, 32)                     # (32, 32, 3) uint8
"""
from __future__ import annotations

import base64

import numpy as np
import torch
from PIL import Image

from maskrec.core.imaging import MIN_SIDE, PHOTO_MAX_PIXELS, as_rgb, open_rgb

__all__ = ["MIN_SIDE", "PHOTO_MAX_PIXELS", "PREPROCESSING_VERSION", "batch_to_float", "data_url",
           "network_views", "open_rgb", "preprocessing_info", "to_input"]

PREPROCESSING_VERSION = 1  # bump when to_input changes, so caches rebuild


def to_input(img: Image.Image, size: int) -> np.ndarray:
    """The one preprocessing: RGB image -> (size, size, 3) uint8, squashed with bilinear filtering.

    Training, evaluation and recognition all call this, so a face crop from the webcam reaches the
    network exactly as a training image did.
    """
    return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def network_views(paths, size: int, shown: int = 96) -> list[tuple[Image.Image, Image.Image]]:
    """(original, what the network sees) per file, for galleries: the second is ``to_input`` at
    ``size``, enlarged to ``shown`` px with nearest-neighbour so its pixels stay visible."""
    out = []
    for p in paths:
        img = open_rgb(p)
        out.append((img, Image.fromarray(to_input(img, size)).resize((shown, shown), Image.NEAREST)))
    return out


def data_url(rgb: np.ndarray, quality: int = 85) -> str:
    """A small (H, W, 3) uint8 RGB image as a ``data:image/jpeg;base64,...`` URL, for a page that
    redraws often (a media file would be deleted by the next rerun before the browser fetched it)."""
    import cv2  # deferred: its import is paid by the pages that draw, not by every data user
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(as_rgb(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return jpeg_data_url(buf.tobytes())


def jpeg_data_url(jpeg: bytes) -> str:
    """JPEG bytes as a ``data:image/jpeg;base64,...`` URL."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def preprocessing_info(size: int) -> dict:
    """What a checkpoint records so it can be used alone."""
    return {"version": PREPROCESSING_VERSION, "size": size, "resize": "squash, PIL bilinear",
            "color": "RGB", "scale": "uint8 / 255 -> [0, 1]", "layout": "NCHW"}


def batch_to_float(x: torch.Tensor) -> torch.Tensor:
    # (B, 3, S, S) uint8 -> float in [0, 1]
    return x.float().div_(255.0)
