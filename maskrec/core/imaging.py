"""The one image reader: a file or bytes -> upright 8-bit RGB, at the bottom of the package.

Every path that turns a file into pixels calls ``open_rgb``: dataset decoding (``maskrec.data``),
gallery thumbnails, the Recognize page's uploads and snapshots, ``python -m maskrec predict`` and
``read_rgb`` (annotated scenes, benches, video). So an image is always the way it is shown: EXIF
orientation applied; grey, palette, alpha (composited on white), CMYK and 16-bit become RGB;
unusable files, decompression bombs included, raise BadImage with a reason. ``as_rgb`` is the same
promise for an array a caller already holds (a webcam frame, a crop): what every detector and
drawer takes.

It imports nothing of maskrec but ``errors``, so that ``maskrec.data`` (preprocessing, caching)
and ``maskrec.faces`` (detection) both stand on it without standing on each other.

    img = open_rgb(path)                        # PIL RGB image, upright
    photo = open_rgb(upload_bytes, draft=2048)  # a big JPEG decoded at 1/2-1/8 size
    rgb = read_rgb(path)                        # (H, W, 3) uint8, full size
"""
from __future__ import annotations

import io
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin

from maskrec.core.errors import BadImage

__all__ = ["BadImage", "MIN_SIDE", "PHOTO_MAX_PIXELS", "as_rgb", "bomb_refusal", "open_rgb", "read_rgb",
           "too_many_pixels"]

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
        raise bomb_refusal(e) from None
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
        raise too_many_pixels(f"{img.width}x{img.height}", limit,
                              "a baseline JPEG photo to recognise" if raised else "this image")


def too_many_pixels(size: str, limit: int, kind: str = "this image") -> BadImage:
    """The one wording of the decompression-bomb refusal, quoting the limit that applies."""
    return BadImage(f"too many pixels ({size}; {kind} may have up to {limit:,} px: decompression bomb guard)")


def bomb_refusal(e: Image.DecompressionBombError) -> BadImage:
    """Pillow's own refusal, said as ours: Pillow raises only over twice MAX_IMAGE_PIXELS and quotes
    that, but everything over MAX_IMAGE_PIXELS is refused here, so that is the limit quoted."""
    m = re.search(r"\((\d+) pixels\)", str(e))
    return too_many_pixels(f"{int(m.group(1)):,} px" if m else "over twice the limit", Image.MAX_IMAGE_PIXELS)


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


def read_rgb(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 of an image file (an annotated scene, a bench photo) at full size, read by
    ``open_rgb``: upright (EXIF orientation applied), 8-bit RGB, Pillow's bomb guard; raises
    BadImage. A photo to recognise is read the same way with ``draft=faces.PHOTO_SIDE`` (a big
    JPEG decoded reduced). VOC boxes are taken to be in these upright pixels; no scene of
    facemask-scenes-dev carries an EXIF turn, so there both readings agree."""
    return np.asarray(open_rgb(path))


def as_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> contiguous (H, W, 3) uint8."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected (H, W, 3) RGB, got shape {a.shape}")
    return np.ascontiguousarray(a[:, :, :3])
