"""The one image reader and the one preprocessing: file -> upright 8-bit RGB -> network input.

Every path that turns a file into pixels calls ``open_rgb``: dataset decoding, gallery thumbnails,
the Recognize page's uploads and snapshots, ``python -m maskrec predict`` and ``faces.read_rgb``
(scenes, benches). So an image is always the way it is shown: EXIF orientation applied; grey,
palette, alpha (composited on white), CMYK and 16-bit become RGB; unusable files raise BadImage
with a reason. ``to_input`` then squashes it to the net's input, the same for training,
evaluation and the webcam, and ``preprocessing_info`` is what a checkpoint records of it.

    img = open_rgb(path)                      # PIL RGB image, upright
    x = to_input(img, 32)                     # (32, 32, 3) uint8
    photo = open_rgb(upload_bytes, draft=2048)  # a big JPEG decoded at 1/2-1/8 size
"""
from __future__ import annotations

import io
import math
import os
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, JpegImagePlugin

from .errors import BadImage

PREPROCESSING_VERSION = 1  # bump when to_input changes, so caches rebuild
MIN_SIDE = 8  # smaller images (e.g. 1x1 placeholders) carry no face

# Pillow's own guard, Image.MAX_IMAGE_PIXELS (~89 M px, ~360 MB decoded), holds for dataset images and
# for anything decoded at full size. A photo to recognise (``open_rgb(..., draft=side)``) that is a
# baseline JPEG decoded reduced may have up to PHOTO_MAX_PIXELS: phone cameras write 108 MP
# (12000x9000) and 200 MP (16320x12240) JPEGs, and libjpeg decodes those straight to 1/2, 1/4 or 1/8
# size, so the full-size pixels never exist in memory. A progressive JPEG keeps Pillow's limit: its
# decoder holds every DCT coefficient of the full image (~3 bytes a pixel) whatever the output size.
PHOTO_MAX_PIXELS = 1 << 28  # 16384 x 16384


def open_rgb(src, draft: int | None = None) -> Image.Image:
    """Decode a file path, bytes or file object into an 8-bit RGB image, EXIF orientation applied.

    Grey, palette, alpha (composited on white), CMYK and 16-bit images all become RGB.
    Raises BadImage with a reason for anything unusable.

    ``draft``: read a photo to recognise, not a training image: a JPEG is decoded at the coarsest
    1/2, 1/4 or 1/8 scale that keeps its longest side >= ``draft`` px, and if baseline may have up
    to PHOTO_MAX_PIXELS. ``img.info["original_size"]`` is the file's (width, height) as shown (EXIF
    orientation applied), so boxes found on a reduced image can be scaled back to the file's pixels.
    """
    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    try:
        with warnings.catch_warnings():
            # _check_pixels below decides, per use; Pillow's warning would only repeat it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            file = _open(src, draft is not None)
        with file:  # closes a file opened by path here, also one refused unread
            # JPEG and MPO (a phone's JPEG with extra frames) can be decoded at 1/2 to 1/8 size
            reduce = (bool(draft) and isinstance(file, JpegImagePlugin.JpegImageFile)
                      and max(file.size) >= 2 * draft)
            _check_pixels(file, raised=reduce and not file.info.get("progressive"))
            shown = file.size
            if reduce:
                f = draft / max(file.size)
                # Pillow picks the coarsest scale whose sides are still >= the size asked for
                file.draft("RGB", (math.ceil(file.width * f), math.ceil(file.height * f)))
            if file.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # exif_transpose turns it 90 degrees
                shown = shown[::-1]
            file.load()
            img = ImageOps.exif_transpose(file)
    except Image.DecompressionBombError as e:
        raise BadImage(f"too many pixels (decompression bomb guard): {e}") from None
    except Image.UnidentifiedImageError:
        raise BadImage("empty file" if _empty(src) else "not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # "No such file or directory", as cat says it, rather than "[Errno 2] ...: 'the path'"
        msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
        if "truncated" in msg.lower():
            msg = "truncated file"
        raise BadImage(msg) from None
    if min(img.size) < MIN_SIDE:
        raise BadImage(f"too small ({img.width}x{img.height}, need at least {MIN_SIDE} px a side)")
    img = _to_rgb8(img)
    img.info["original_size"] = shown
    return img


def _empty(src) -> bool:
    """Whether src (a path or a seekable file) holds no bytes: said as such, as a dataset scan says it."""
    try:
        if hasattr(src, "seek"):
            return src.seek(0, io.SEEK_END) == 0
        return os.path.getsize(src) == 0
    except (OSError, TypeError, ValueError):
        return False


def _open(src, photo: bool) -> Image.Image:
    """Image.open; for a photo, a JPEG over twice Pillow's limit too (Image.open refuses it before
    a reduced decode could be asked for; _check_pixels then applies PHOTO_MAX_PIXELS)."""
    try:
        return Image.open(src)
    except Image.DecompressionBombError as e:
        if not photo:
            raise
        refused = e
    if hasattr(src, "seek"):
        src.seek(0)
    try:
        return JpegImagePlugin.JpegImageFile(src)
    except (SyntaxError, OSError):  # not a JPEG: Pillow's refusal stands (PNG, TIFF... decode full size)
        raise refused from None


def _check_pixels(img: Image.Image, raised: bool) -> None:
    """The decompression-bomb guard, from the header alone (nothing is decoded yet). ``raised``:
    PHOTO_MAX_PIXELS for a baseline JPEG that is decoded reduced, else Pillow's limit."""
    limit = PHOTO_MAX_PIXELS if raised else Image.MAX_IMAGE_PIXELS  # None: Pillow's guard is off
    if limit is not None and img.width * img.height > limit:
        kind = "a baseline JPEG photo to recognise" if raised else "this image"
        raise BadImage(f"too many pixels ({img.width}x{img.height}; {kind} may have up to {limit:,}: "
                       f"decompression bomb guard)")


def _to_rgb8(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(img).astype(np.float32)
        hi = 65535.0 if mode.startswith("I;16") else max(float(a.max()), 1.0)
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if mode in ("P", "PA"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


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
    import base64

    import cv2

    from ..faces import as_rgb
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(as_rgb(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def preprocessing_info(size: int) -> dict:
    """What a checkpoint records so it can be used alone."""
    return {"version": PREPROCESSING_VERSION, "size": size, "resize": "squash, PIL bilinear",
            "color": "RGB", "scale": "uint8 / 255 -> [0, 1]", "layout": "NCHW"}


def batch_to_float(x: torch.Tensor) -> torch.Tensor:
    # (B, 3, S, S) uint8 -> float in [0, 1]
    return x.float().div_(255.0)
