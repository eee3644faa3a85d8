"""Built-in demo dataset: cartoon faces, covered (label 1) or bare (label 0).

A fresh clone of MaskRec ships no images, so the app and the tests draw their
own data with Pillow and numpy.  Every image is a small scene: a background,
a head with hair, eyes, eyebrows, nose and mouth, sometimes glasses or a beard,
and on covered faces a surgical mask, cloth mask, N95, scarf or a hand over the
mouth.  Bare faces sometimes carry "hard negatives" (a beard, a mask pulled
down onto the chin, a scarf round the neck, a phone or cup near the mouth, a
hand on the chin) so that colour alone does not give the label away.  Lighting,
blur, noise, JPEG quality and image size vary like in the report's dataset.

Usage::

    from maskrec import synth
    img, label = synth.render(17, seed=0)        # one PIL image, 1 = covered
    counts = synth.generate("out", n=500)        # out/train/*.jpg, out/test/*.jpg
    folder = synth.ensure_demo_data()            # cached default demo set

Everything is deterministic: image ``i`` of seed ``s`` is drawn from its own
random generator seeded with ``(s, i)``, so the same ``(n, seed)`` gives
byte-identical files whatever the order or number of processes.
"""
from __future__ import annotations

import colorsys
import io
import math
import pathlib
import re
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from maskrec.core.atomic import atomic_write_bytes, building, locked_dir
from maskrec.config import demo_dir

__all__ = ["render", "generate", "ensure_demo_data", "default_root", "SYNTH_VERSION"]

# Bump whenever the drawing changes: ensure_demo_data() then regenerates a
# cached demo set instead of reusing pictures from an older generator.
SYNTH_VERSION = 1

COVERED_SHARE = 0.52  # the report's dataset is roughly 52/48 covered/bare

Colour = tuple[int, int, int]
Progress = Optional[Callable[[int, int], None]]


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * rng.random()


def _pick(rng: np.random.Generator, options, weights=None):
    # Hand-rolled rather than rng.choice(p=...): this runs ~40 times an image
    # and rng.choice's validation dominated the drawing time.
    if weights is None:
        return options[int(rng.random() * len(options))]
    r = rng.random() * sum(weights)
    for option, weight in zip(options, weights):
        r -= weight
        if r < 0:
            return option
    return options[-1]


def _clip(c) -> Colour:
    return tuple(int(min(255, max(0, round(v)))) for v in c)  # type: ignore[return-value]


def _mix(a, b, t: float) -> Colour:
    return _clip(x + (y - x) * t for x, y in zip(a, b))


def _shade(c, f: float) -> Colour:
    return _clip(v * f for v in c)


def _jitter(rng: np.random.Generator, c, amount: float) -> Colour:
    return _clip(v + rng.uniform(-amount, amount) for v in c)


def _hsv(h: float, s: float, v: float) -> Colour:
    return _clip(255 * x for x in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _any_colour(rng: np.random.Generator) -> Colour:
    return _hsv(_u(rng, 0, 1), _u(rng, 0.15, 0.9), _u(rng, 0.2, 0.95))


def _skin(rng: np.random.Generator) -> Colour:
    # A 1-D continuum from deep to pale covers most real skin tones well
    # enough; the jitter adds the warm/olive variation.
    stops = [(58, 38, 28), (120, 78, 52), (180, 126, 90), (226, 180, 148), (252, 222, 200)]
    t = _u(rng, 0, len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    return _jitter(rng, _mix(stops[i], stops[i + 1], t - i), 10)


def _hair_colour(rng: np.random.Generator) -> Colour:
    palette = [(20, 16, 14), (45, 30, 20), (90, 60, 35), (140, 100, 60),
               (210, 175, 110), (150, 70, 35), (150, 150, 150), (225, 225, 220),
               (60, 90, 200), (200, 80, 150)]
    weights = [30, 25, 15, 8, 8, 5, 4, 2, 1.5, 1.5]
    return _jitter(rng, _pick(rng, palette, weights), 12)


def _mask_blue(rng: np.random.Generator) -> Colour:
    return _jitter(rng, (160, 205, 230), 14)


# --------------------------------------------------------------------------
# Fabric patterns (cloth masks, scarves, shirts)
# --------------------------------------------------------------------------

def _pattern(rng: np.random.Generator, size: tuple[int, int], base: Colour,
             kinds=("solid", "stripes", "dots", "check", "plaid", "speckle")) -> Image.Image:
    """An RGB swatch of `size` in a random fabric pattern built on `base`."""
    w, h = max(1, size[0]), max(1, size[1])
    kind = _pick(rng, list(kinds))
    other = _any_colour(rng) if rng.random() < 0.6 else _shade(base, _u(rng, 0.4, 1.6))
    if kind == "solid":
        return Image.new("RGB", (w, h), base)
    # Row and column coordinates broadcast against each other: the pattern is
    # computed as one (h, w) on/off mask, then two flat colours are composited.
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    period = max(3.0, _u(rng, 0.08, 0.3) * max(w, h))
    if kind == "stripes":
        a = math.radians(_pick(rng, [0.0, 90.0, 45.0, -45.0, _u(rng, 0, 180)]))
        on = ((x * math.cos(a) + y * math.sin(a)) / period) % 1.0 < _u(rng, 0.25, 0.6)
    elif kind == "dots":
        p = period * 0.7
        on = ((x % p - p / 2) ** 2 + (y % p - p / 2) ** 2) < (p * _u(rng, 0.15, 0.35)) ** 2
    elif kind == "check":
        on = ((x // period + y // period) % 2) == 1
    elif kind == "plaid":
        on = ((x / period) % 1.0 < 0.3) | ((y / period) % 1.0 < 0.3)
    else:  # speckle: flecks a few pixels wide, like knitted or printed fabric
        cell = max(2, round(period / 6))
        grid = rng.random((h // cell + 1, w // cell + 1)) < _u(rng, 0.1, 0.35)
        flecks = Image.fromarray(grid.astype(np.uint8) * 255, "L")
        mask = flecks.resize((grid.shape[1] * cell, grid.shape[0] * cell), Image.NEAREST).crop((0, 0, w, h))
        return Image.composite(Image.new("RGB", (w, h), other), Image.new("RGB", (w, h), base), mask)
    mask = Image.fromarray(np.broadcast_to(on, (h, w)).astype(np.uint8) * 255, "L")
    return Image.composite(Image.new("RGB", (w, h), other), Image.new("RGB", (w, h), base), mask)


def _fill_shape(layer: Image.Image, mask: Image.Image, swatch_fn) -> None:
    """Paint the white area of `mask` with the swatch `swatch_fn(size)` returns."""
    box = mask.getbbox()
    if box is None:
        return
    size = (box[2] - box[0], box[3] - box[1])
    layer.paste(swatch_fn(size), box, mask.crop(box))


# --------------------------------------------------------------------------
# The face
# --------------------------------------------------------------------------

@dataclass
class Face:
    """Where things are on the head, in layer pixels (the layer is supersampled)."""
    cx: float
    cy: float
    w: float          # head width
    h: float          # head height (crown to chin)
    skin: Colour
    hair: Colour
    eye_y: float
    eye_dx: float
    nose_y: float     # bottom of the nose
    mouth_y: float
    mouth_w: float

    @property
    def chin_y(self) -> float:
        return self.cy + self.h / 2

    def lw(self, frac: float) -> int:
        """A line width proportional to head size, never thinner than 1 px."""
        return max(1, round(frac * self.h))


def _new_face(rng: np.random.Generator, cx: float, cy: float, head_h: float) -> Face:
    w = head_h * _u(rng, 0.68, 0.84)
    nose_y = cy + head_h * _u(rng, 0.13, 0.19)
    return Face(
        cx=cx, cy=cy, w=w, h=head_h, skin=_skin(rng), hair=_hair_colour(rng),
        eye_y=cy + head_h * _u(rng, -0.07, 0.0),
        eye_dx=w * _u(rng, 0.18, 0.23),
        nose_y=nose_y,
        # Far enough below the nose that a mask worn under the nose, or a
        # scarf pulled up to it, still hides the whole mouth.
        mouth_y=nose_y + head_h * _u(rng, 0.12, 0.17),
        mouth_w=w * _u(rng, 0.3, 0.42),
    )


def _draw_body(d: ImageDraw.ImageDraw, rng, f: Face, layer_h: int) -> None:
    neck_w = f.w * _u(rng, 0.38, 0.5)
    d.rectangle((f.cx - neck_w / 2, f.cy + 0.25 * f.h, f.cx + neck_w / 2, layer_h),
                fill=_shade(f.skin, 0.82))
    shirt = _any_colour(rng)
    top = f.chin_y + f.h * _u(rng, 0.12, 0.25)
    d.ellipse((f.cx - f.w * _u(rng, 1.1, 1.5), top, f.cx + f.w * _u(rng, 1.1, 1.5),
               top + 1.6 * f.h), fill=shirt)
    if rng.random() < 0.5:  # a neckline so the shirt is not always a plain blob
        d.polygon([(f.cx - neck_w * 0.7, top + 1), (f.cx + neck_w * 0.7, top + 1),
                   (f.cx, top + f.h * _u(rng, 0.1, 0.3))], fill=_shade(f.skin, 0.82))


def _draw_hair_back(d: ImageDraw.ImageDraw, rng, f: Face, style: str) -> None:
    if style == "long":
        d.rounded_rectangle((f.cx - f.w * 0.66, f.cy - f.h * 0.56, f.cx + f.w * 0.66,
                             f.cy + f.h * _u(rng, 0.45, 0.95)),
                            radius=f.w * 0.5, fill=f.hair)
    elif style == "curly":
        for _ in range(14):
            a = _u(rng, math.pi * 0.9, math.pi * 2.1)
            r = f.w * _u(rng, 0.16, 0.26)
            x = f.cx + math.cos(a) * f.w * 0.5
            y = f.cy - f.h * 0.1 + math.sin(a) * f.h * 0.5
            d.ellipse((x - r, y - r, x + r, y + r), fill=f.hair)


def _draw_head(d: ImageDraw.ImageDraw, rng, f: Face) -> None:
    ear_w, ear_h = f.w * 0.13, f.h * 0.2
    for sx in (-1, 1):
        ex = f.cx + sx * f.w * 0.49
        d.ellipse((ex - ear_w, f.eye_y - ear_h * 0.3, ex + ear_w, f.eye_y + ear_h * 1.1),
                  fill=_shade(f.skin, 0.93))
    d.ellipse((f.cx - f.w / 2, f.cy - f.h / 2, f.cx + f.w / 2, f.cy + f.h / 2), fill=f.skin)
    if rng.random() < 0.3:  # blush keeps the cheeks from being a flat fill
        blush = _mix(f.skin, (220, 90, 100), 0.25)
        for sx in (-1, 1):
            x, y, r = f.cx + sx * f.w * 0.28, f.nose_y, f.w * 0.09
            d.ellipse((x - r, y - r * 0.7, x + r, y + r * 0.7), fill=blush)


def _draw_beard(d: ImageDraw.ImageDraw, rng, f: Face) -> None:
    # Beards are drawn on covered and bare faces alike: on a bare face it is a
    # dark lower face that is *not* a mask (the mouth is drawn on top of it).
    colour = f.hair if rng.random() < 0.75 else _mix(f.hair, f.skin, 0.45)
    m = f.w * 0.03
    # Whole degrees: Pillow 13 draws stray bands for some fractional chord angles.
    start = int(rng.integers(4, 15))
    d.chord((f.cx - f.w / 2 - m, f.cy - f.h / 2 - m, f.cx + f.w / 2 + m, f.cy + f.h / 2 + m),
            start, 180 - start, fill=colour)
    mw = f.mouth_w * 0.65  # moustache
    d.polygon([(f.cx - mw, f.mouth_y - f.h * 0.01), (f.cx, f.nose_y + f.h * 0.02),
               (f.cx + mw, f.mouth_y - f.h * 0.01)], fill=colour)


def _draw_eyes(d: ImageDraw.ImageDraw, rng, f: Face, brow: Colour) -> None:
    ew, eh = f.w * _u(rng, 0.065, 0.085), f.h * _u(rng, 0.025, 0.038)
    iris = _pick(rng, [(70, 45, 25), (40, 30, 20), (60, 110, 170), (80, 120, 70), (110, 80, 40)])
    closed = rng.random() < 0.08
    brow_up = f.h * _u(rng, 0.055, 0.09)
    tilt = f.h * _u(rng, -0.02, 0.02)
    for sx in (-1, 1):
        ex = f.cx + sx * f.eye_dx
        if closed:
            d.arc((ex - ew, f.eye_y - eh, ex + ew, f.eye_y + eh), 0, 180,
                  fill=_shade(f.skin, 0.45), width=f.lw(0.012))
        else:
            d.ellipse((ex - ew, f.eye_y - eh, ex + ew, f.eye_y + eh), fill=(240, 238, 232))
            r = eh * 0.95
            d.ellipse((ex - r, f.eye_y - r, ex + r, f.eye_y + r), fill=iris)
            r *= 0.45
            d.ellipse((ex - r, f.eye_y - r, ex + r, f.eye_y + r), fill=(10, 10, 10))
        by = f.eye_y - brow_up
        d.line((ex - ew * 1.2, by + sx * tilt * 0.3 + f.h * 0.01, ex + ew * 1.2, by - sx * tilt),
               fill=brow, width=f.lw(_u(rng, 0.018, 0.035)))


def _draw_nose(d: ImageDraw.ImageDraw, rng, f: Face) -> None:
    nw = f.w * _u(rng, 0.1, 0.17)
    dark = _shade(f.skin, _u(rng, 0.7, 0.82))
    d.polygon([(f.cx, f.eye_y + f.h * 0.02), (f.cx - nw / 2, f.nose_y),
               (f.cx + nw / 2, f.nose_y)], fill=_shade(f.skin, 0.9))
    d.line((f.cx + nw * 0.15, f.eye_y + f.h * 0.04, f.cx + nw * 0.3, f.nose_y - f.h * 0.02),
           fill=dark, width=f.lw(0.012))
    for sx in (-1, 1):
        x, r = f.cx + sx * nw * 0.25, nw * 0.14
        d.ellipse((x - r, f.nose_y - r, x + r, f.nose_y + r * 0.6), fill=_shade(f.skin, 0.55))


def _draw_mouth(d: ImageDraw.ImageDraw, rng, f: Face) -> None:
    lip = _mix(f.skin, _jitter(rng, (150, 40, 55), 20), _u(rng, 0.5, 0.85))
    half, mh = f.mouth_w / 2, f.h * _u(rng, 0.04, 0.065)
    x0, x1, y = f.cx - half, f.cx + half, f.mouth_y
    style = _pick(rng, ["closed", "smile", "open", "grin"], [3, 3, 1.5, 1.5])
    if style == "closed":
        d.ellipse((x0, y - mh, x1, y + mh), fill=lip)
        d.line((x0 + half * 0.1, y, x1 - half * 0.1, y), fill=_shade(lip, 0.5), width=f.lw(0.01))
    elif style == "smile":
        d.arc((x0, y - mh * 2.5, x1, y + mh), 20, 160, fill=_shade(lip, 0.7), width=f.lw(0.035))
    elif style == "open":
        d.ellipse((x0 + half * 0.3, y - mh * 1.2, x1 - half * 0.3, y + mh * 1.6), fill=lip)
        d.ellipse((x0 + half * 0.45, y - mh * 0.6, x1 - half * 0.45, y + mh * 1.1), fill=(60, 15, 20))
    else:  # grin: teeth between the lips
        d.chord((x0, y - mh * 1.5, x1, y + mh * 1.5), 0, 180, fill=lip)
        d.chord((x0 + half * 0.15, y - mh * 1.3, x1 - half * 0.15, y + mh * 1.0), 0, 180,
                fill=(245, 245, 240))


def _draw_hair_front(d: ImageDraw.ImageDraw, rng, f: Face, style: str) -> None:
    if style == "none":
        return
    hairline = f.cy - f.h * _u(rng, 0.18, 0.3)
    m = f.w * 0.04
    top = f.cy - f.h / 2 - m
    if style == "hat":
        hat = _any_colour(rng)
        d.chord((f.cx - f.w / 2 - m, top - f.h * 0.05, f.cx + f.w / 2 + m,
                 2 * hairline - top + f.h * 0.05), 180, 360, fill=hat)
        d.rectangle((f.cx - f.w / 2 - m, hairline - f.h * 0.07, f.cx + f.w / 2 + m, hairline),
                    fill=_shade(hat, 0.75))
        return
    d.chord((f.cx - f.w / 2 - m, top, f.cx + f.w / 2 + m, 2 * hairline - top), 180, 360, fill=f.hair)
    for sx in (-1, 1):  # sideburns tie the cap to the ears
        x = f.cx + sx * f.w * 0.47
        d.rectangle((min(x, x - sx * f.w * 0.07), hairline - 1, max(x, x - sx * f.w * 0.07),
                     f.eye_y), fill=f.hair)
    if style == "bangs":
        d.chord((f.cx - f.w * 0.45, hairline - f.h * 0.12, f.cx + f.w * 0.45,
                 hairline + f.h * _u(rng, 0.06, 0.12)), 0, 180, fill=f.hair)
    elif style == "bun":
        r = f.w * _u(rng, 0.15, 0.22)
        d.ellipse((f.cx - r, top - 1.6 * r, f.cx + r, top + 0.4 * r), fill=f.hair)
    elif style == "curly":
        for _ in range(8):
            x = f.cx + f.w * _u(rng, -0.45, 0.45)
            y = top + f.h * _u(rng, 0.0, 0.12)
            r = f.w * _u(rng, 0.1, 0.17)
            d.ellipse((x - r, y - r, x + r, y + r), fill=f.hair)


def _draw_glasses(d: ImageDraw.ImageDraw, rng, f: Face) -> None:
    frame = _pick(rng, [(15, 15, 15), (90, 60, 30), (190, 160, 80), (120, 120, 130)])
    r = f.w * _u(rng, 0.1, 0.14)
    width = f.lw(_u(rng, 0.012, 0.025))
    sun = rng.random() < 0.2
    square = rng.random() < 0.5
    for sx in (-1, 1):
        ex = f.cx + sx * f.eye_dx
        box = (ex - r, f.eye_y - r * 0.8, ex + r, f.eye_y + r * 0.8)
        fill = (30, 30, 35) if sun else None
        if square:
            d.rounded_rectangle(box, radius=r * 0.3, outline=frame, width=width, fill=fill)
        else:
            d.ellipse(box, outline=frame, width=width, fill=fill)
        d.line((ex + sx * r, f.eye_y - r * 0.3, f.cx + sx * f.w * 0.5, f.eye_y - r * 0.4),
               fill=frame, width=width)
    d.line((f.cx - f.eye_dx + r, f.eye_y - r * 0.2, f.cx + f.eye_dx - r, f.eye_y - r * 0.2),
           fill=frame, width=width)


# --------------------------------------------------------------------------
# Covers (label 1).  Each one must hide the mouth; most also hide the nose.
# --------------------------------------------------------------------------

def _mask_outline(f: Face, top: float, bottom: float, width: float) -> list[tuple[float, float]]:
    """A mask silhouette that peaks over the nose and narrows round the chin."""
    half = f.w * width / 2
    return [
        (f.cx - half, top + f.h * 0.06), (f.cx - half * 0.5, top + f.h * 0.01),
        (f.cx, top - f.h * 0.02), (f.cx + half * 0.5, top + f.h * 0.01),
        (f.cx + half, top + f.h * 0.06), (f.cx + half * 0.97, bottom - f.h * 0.16),
        (f.cx + half * 0.6, bottom - f.h * 0.04), (f.cx, bottom),
        (f.cx - half * 0.6, bottom - f.h * 0.04), (f.cx - half * 0.97, bottom - f.h * 0.16),
    ]


def _ear_loops(d: ImageDraw.ImageDraw, f: Face, top: float, bottom: float, half: float,
               colour: Colour) -> None:
    for sx in (-1, 1):
        ear_x = f.cx + sx * f.w * 0.49
        d.line((f.cx + sx * half, top + f.h * 0.07, ear_x, f.eye_y + f.h * 0.05),
               fill=colour, width=f.lw(0.012))
        d.line((f.cx + sx * half * 0.95, bottom - f.h * 0.14, ear_x, f.eye_y + f.h * 0.14),
               fill=colour, width=f.lw(0.012))


def _mask_band(rng, f: Face, low: bool) -> tuple[float, float]:
    """Top and bottom of a mask: over the nose, or pulled down below the mouth."""
    if low:  # clear of the lower lip, even of an open mouth
        top = f.mouth_y + f.h * _u(rng, 0.13, 0.17)
        return top, top + f.h * _u(rng, 0.3, 0.4)
    top = f.eye_y + f.h * _u(rng, 0.07, 0.15)
    if rng.random() < 0.15:  # worn under the nose: mouth still covered
        top = f.nose_y + f.h * _u(rng, -0.02, 0.0)
    return top, f.chin_y + f.h * _u(rng, 0.0, 0.06)


def _cover_surgical(layer: Image.Image, d: ImageDraw.ImageDraw, rng, f: Face, low=False) -> None:
    colour = _pick(rng, [_mask_blue(rng), _jitter(rng, (238, 240, 238), 10),
                         _jitter(rng, (225, 160, 180), 15), _jitter(rng, (40, 40, 45), 10)],
                   [6, 3, 0.5, 1])
    top, bottom = _mask_band(rng, f, low)
    width = _u(rng, 0.98, 1.08)
    pts = _mask_outline(f, top, bottom, width)
    # Surgical masks are flatter than cloth ones: pull the nose peak down.
    pts[2] = (f.cx, top + f.h * 0.01)
    # The darker rim marks the mask's edge even where its colour is close to the skin's.
    d.polygon(pts, fill=colour, outline=_shade(colour, 0.7), width=f.lw(0.015))
    pleat = _shade(colour, 0.82)
    for k in (1, 2, 3):
        y = top + (bottom - top) * k / 4.2
        d.line((f.cx - f.w * width * 0.46, y, f.cx + f.w * width * 0.46, y + f.h * 0.01),
               fill=pleat, width=f.lw(0.014))
    _ear_loops(d, f, top, bottom, f.w * width / 2, _shade(colour, 0.95))


def _cover_cloth(layer: Image.Image, d: ImageDraw.ImageDraw, rng, f: Face, low=False) -> None:
    base = _any_colour(rng)
    if rng.random() < 0.05:  # beige/brown "skin-tone" masks exist; keep them a shade off
        base = _shade(_jitter(rng, f.skin, 15), _pick(rng, [_u(rng, 0.65, 0.8), _u(rng, 1.2, 1.35)]))
    top, bottom = _mask_band(rng, f, low)
    width = _u(rng, 0.95, 1.05)
    shape = Image.new("L", layer.size, 0)
    outline = _mask_outline(f, top, bottom, width)
    ImageDraw.Draw(shape).polygon(outline, fill=255)
    _fill_shape(layer, shape, lambda size: _pattern(rng, size, base))
    d.polygon(outline, outline=_shade(base, 0.6), width=f.lw(0.015))
    d.line((f.cx, top - f.h * 0.02, f.cx, bottom), fill=_shade(base, 0.7), width=f.lw(0.01))
    _ear_loops(d, f, top, bottom, f.w * width / 2, _shade(base, 0.8))


def _cover_n95(layer: Image.Image, d: ImageDraw.ImageDraw, rng, f: Face, low=False) -> None:
    colour = _pick(rng, [_jitter(rng, (240, 240, 235), 10), _jitter(rng, (225, 215, 190), 10),
                         _mask_blue(rng)], [6, 2, 1])
    top, bottom = _mask_band(rng, f, low)
    half = f.w * _u(rng, 0.38, 0.45)
    box = (f.cx - half, top - f.h * 0.03, f.cx + half, bottom + f.h * 0.03)
    d.ellipse(box, fill=colour, outline=_shade(colour, 0.75), width=f.lw(0.015))
    d.line((f.cx, box[1] + f.h * 0.02, f.cx, box[3] - f.h * 0.02), fill=_shade(colour, 0.8),
           width=f.lw(0.012))
    strap = _pick(rng, [(240, 240, 240), (60, 110, 200), (230, 200, 60)])
    for y in (top + (bottom - top) * 0.25, top + (bottom - top) * 0.7):
        d.line((f.cx - f.w * 0.5, y - f.h * 0.05, f.cx + f.w * 0.5, y - f.h * 0.05),
               fill=strap, width=f.lw(0.012))
    if rng.random() < 0.35:  # exhalation valve
        vx, vy, r = f.cx + half * 0.45, top + (bottom - top) * 0.55, f.w * 0.09
        d.ellipse((vx - r, vy - r, vx + r, vy + r), fill=_shade(colour, 0.7))


def _scarf_shape(rng, f: Face, top: float, layer_h: int) -> list[tuple[float, float]]:
    half = f.w * _u(rng, 0.62, 0.8)
    sag = f.h * _u(rng, -0.02, 0.05)
    return [(f.cx - half, top + sag), (f.cx, top - sag), (f.cx + half, top + sag),
            (f.cx + half * 1.15, layer_h), (f.cx - half * 1.15, layer_h)]


def _draw_scarf(layer: Image.Image, d: ImageDraw.ImageDraw, rng, f: Face, top: float) -> None:
    base = _any_colour(rng)
    shape = Image.new("L", layer.size, 0)
    outline = _scarf_shape(rng, f, top, layer.size[1])
    ImageDraw.Draw(shape).polygon(outline, fill=255)
    _fill_shape(layer, shape, lambda size: _pattern(
        rng, size, base, kinds=("solid", "stripes", "check", "plaid", "dots", "plaid")))
    fold = _shade(base, 0.65)
    d.line(outline[:3], fill=fold, width=f.lw(0.015))
    for k in range(int(rng.integers(2, 5))):  # folds make it read as fabric
        y = top + f.h * (0.1 + 0.13 * k)
        d.arc((f.cx - f.w * 0.7, y - f.h * 0.08, f.cx + f.w * 0.7, y + f.h * 0.08), 20, 160,
              fill=fold, width=f.lw(0.015))


def _cover_scarf(layer: Image.Image, d: ImageDraw.ImageDraw, rng, f: Face, low=False) -> None:
    top = f.nose_y + f.h * _u(rng, -0.08, 0.0) if not low else f.chin_y - f.h * _u(rng, 0.0, 0.06)
    _draw_scarf(layer, d, rng, f, top)


def _draw_hand(d: ImageDraw.ImageDraw, rng, f: Face, x: float, y: float, scale: float,
               layer_h: int, pose: str, side: int) -> None:
    """A palm centred at (x, y), the forearm coming up from the bottom edge on `side`.

    pose "across": fingers point sideways, away from `side` (a hand over the
    mouth, or a fist under the chin); pose "up": fingers point up (on a cheek).
    """
    skin = _shade(_jitter(rng, f.skin, 10), _u(rng, 0.9, 1.08))
    edge = _shade(skin, 0.72)  # outlines keep a skin-on-skin hand readable
    line = f.lw(0.01)
    pw, ph = f.w * 0.3 * scale, f.h * 0.15 * scale
    wrist_x, arm = x + side * pw * 0.4, pw * 0.5
    foot_x = wrist_x + side * f.w * 0.3
    d.polygon([(wrist_x - arm, y), (wrist_x + arm, y), (foot_x + arm * 1.2, layer_h),
               (foot_x - arm * 1.2, layer_h)], fill=_shade(skin, 0.92))
    cuff = y + ph * _u(rng, 2.2, 3.2)
    k = (cuff - y) / max(1.0, layer_h - y)
    cx = wrist_x + (foot_x - wrist_x) * k
    d.polygon([(cx - arm * 1.3, cuff), (cx + arm * 1.3, cuff), (foot_x + arm * 1.5, layer_h),
               (foot_x - arm * 1.5, layer_h)], fill=_any_colour(rng))
    d.ellipse((x - pw * 0.6, y - ph, x + pw * 0.6, y + ph), fill=skin, outline=edge, width=line)
    if pose == "across":
        fh = ph * 0.48
        reach = pw * _u(rng, 1.0, 1.4)
        for i in range(4):
            fy = y - ph * 0.95 + i * fh
            tip = x - side * reach * (1 - 0.12 * abs(i - 1.5))
            d.rounded_rectangle((min(x, tip), fy, max(x, tip), fy + fh), radius=fh / 2,
                                fill=skin, outline=edge, width=line)
    else:
        fw = pw * 0.3
        for i in range(4):
            fx = x - pw * 0.6 + i * fw
            top = y - ph * _u(rng, 2.0, 2.6) * (1 - 0.1 * abs(i - 1.5))
            d.rounded_rectangle((fx, top, fx + fw, y), radius=fw / 2, fill=skin,
                                outline=edge, width=line)


def _cover_hand(layer: Image.Image, d: ImageDraw.ImageDraw, rng, f: Face, low=False) -> None:
    side = 1 if rng.random() < 0.5 else -1
    _draw_hand(d, rng, f, f.cx + side * f.w * _u(rng, 0.0, 0.12),
               f.mouth_y + f.h * _u(rng, -0.03, 0.02), _u(rng, 1.0, 1.2), layer.size[1],
               "across", side)


# Cover kind -> (drawing function, share among covered faces).
COVERS = {
    "surgical": (_cover_surgical, 0.33),
    "cloth": (_cover_cloth, 0.29),
    "n95": (_cover_n95, 0.16),
    "scarf": (_cover_scarf, 0.14),
    "hand": (_cover_hand, 0.08),
}


# --------------------------------------------------------------------------
# Distractors: near the mouth but never over it.  Mostly on bare faces.
# --------------------------------------------------------------------------

def _near_mask_on_chin(layer, d, rng, f: Face) -> None:
    kind = _pick(rng, ["surgical", "cloth", "n95"], [3, 2, 1])
    COVERS[kind][0](layer, d, rng, f, low=True)


def _near_neck_scarf(layer, d, rng, f: Face) -> None:
    _cover_scarf(layer, d, rng, f, low=True)


def _near_hand(layer, d, rng, f: Face) -> None:
    side = 1 if rng.random() < 0.5 else -1
    if rng.random() < 0.5:  # chin resting on a fist
        _draw_hand(d, rng, f, f.cx + f.w * _u(rng, -0.1, 0.1), f.chin_y + f.h * _u(rng, 0.1, 0.16),
                   _u(rng, 0.8, 1.0), layer.size[1], "across", side)
    else:  # hand against the cheek, beside the mouth
        _draw_hand(d, rng, f, f.cx + side * f.w * _u(rng, 0.52, 0.65), f.mouth_y + f.h * 0.08,
                   _u(rng, 0.8, 1.0), layer.size[1], "up", side)


def _near_object(layer, d, rng, f: Face) -> None:
    colour = _pick(rng, [_any_colour(rng), _mask_blue(rng), _jitter(rng, (238, 238, 238), 10)])
    side = 1 if rng.random() < 0.5 else -1
    kind = _pick(rng, ["phone", "cup", "lolly", "mic"])
    if kind == "phone":  # held to the ear
        x, y = f.cx + side * f.w * 0.55, f.eye_y + f.h * 0.12
        d.rounded_rectangle((x - f.w * 0.1, y - f.h * 0.2, x + f.w * 0.1, y + f.h * 0.2),
                            radius=f.w * 0.03, fill=colour)
    elif kind == "cup":  # lower corner, beside the chin
        x, y = f.cx + side * f.w * _u(rng, 0.55, 0.75), f.chin_y + f.h * 0.05
        cw, ch = f.w * 0.2, f.h * 0.25
        d.rectangle((x - cw, y - ch, x + cw, y + ch), fill=colour)
        d.ellipse((x - cw, y - ch - cw * 0.3, x + cw, y - ch + cw * 0.3), fill=_shade(colour, 0.6))
    elif kind == "lolly":  # held out to the side of the mouth
        x, y, r = f.cx + side * f.w * _u(rng, 0.45, 0.6), f.mouth_y, f.w * 0.12
        d.line((x, y, x + side * f.w * 0.1, y + f.h * 0.4), fill=(235, 235, 230), width=f.lw(0.02))
        d.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    else:  # microphone below the chin
        x, y, r = f.cx + f.w * _u(rng, -0.15, 0.15), f.chin_y + f.h * 0.15, f.w * 0.11
        d.line((x, y, x + f.w * 0.05, y + f.h * 0.5), fill=(30, 30, 30), width=f.lw(0.05))
        d.ellipse((x - r, y - r, x + r, y + r), fill=_shade(colour, 0.5))


DISTRACTORS = {
    "mask_on_chin": (_near_mask_on_chin, 0.25),
    "neck_scarf": (_near_neck_scarf, 0.2),
    "hand": (_near_hand, 0.25),
    "object": (_near_object, 0.3),
}

HAIR_STYLES = (["none", "short", "bangs", "long", "curly", "bun", "hat"],
               [1.2, 3, 2, 3, 1.2, 0.8, 1])


def _pick_kind(rng, table: dict) -> str:
    names = list(table)
    return _pick(rng, names, [table[k][1] for k in names])


# --------------------------------------------------------------------------
# Scene: background, size, lighting, camera
# --------------------------------------------------------------------------

def _image_size(rng) -> tuple[int, int]:
    # Like the report's dataset: sides mostly above 32 px, roughly half below
    # 128 px, none above 256, aspect ratios about 0.75-1.33.
    if rng.random() < 0.08:
        side = _u(rng, 26, 56)
    else:
        side = math.exp(_u(rng, math.log(56), math.log(256)))
    ratio = math.exp(_u(rng, math.log(0.75), math.log(1.33)))
    w = int(min(256, max(20, round(side * math.sqrt(ratio)))))
    h = int(min(256, max(20, round(side / math.sqrt(ratio)))))
    return w, h


def _ramp(w: int, h: int, angle: float) -> np.ndarray:
    """A (h, w) float32 ramp from 0 to 1 along direction `angle` (radians)."""
    x = np.arange(w, dtype=np.float32)[None, :] * math.cos(angle)
    y = np.arange(h, dtype=np.float32)[:, None] * math.sin(angle)
    t = x + y
    lo, hi = float(t.min()), float(t.max())
    return (t - lo) / max(hi - lo, 1e-6)


def _mask_image(t: np.ndarray) -> Image.Image:
    return Image.fromarray((t * 255).astype(np.uint8), "L")


# The per-pixel work below is done with single-channel numpy arrays, lookup
# tables and Pillow's C compositing: float RGB arrays made up most of the
# render time.
def _background(rng, w: int, h: int) -> Image.Image:
    kind = _pick(rng, ["flat", "gradient", "noise", "stripes", "blocks"], [2, 3, 1.5, 1, 1.5])
    a, b = _any_colour(rng), _any_colour(rng)
    if kind == "flat":
        return Image.new("RGB", (w, h), a)
    if kind == "blocks":  # a crude room: wall plus a few shapes
        img = Image.new("RGB", (w, h), a)
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 6))):
            x0, y0 = _u(rng, -0.2, 1) * w, _u(rng, -0.2, 1) * h
            d.rectangle((x0, y0, x0 + _u(rng, 0.1, 0.6) * w, y0 + _u(rng, 0.1, 0.6) * h),
                        fill=_any_colour(rng))
        return img
    if kind == "noise":  # blotchy colour noise: a coarse random grid upsampled smoothly
        g = int(rng.integers(2, 7))
        coarse = rng.integers(0, 256, (g, g, 3), dtype=np.uint8)
        return Image.fromarray(coarse, "RGB").resize((w, h), Image.BILINEAR)
    t = _ramp(w, h, _u(rng, 0, 2 * math.pi))
    if kind == "stripes":
        period = max(3.0, _u(rng, 0.05, 0.3) * max(w, h)) / max(w, h, 1)
        t = ((t / period) % 1.0 < 0.5).astype(np.float32)
    return Image.composite(Image.new("RGB", (w, h), b), Image.new("RGB", (w, h), a), _mask_image(t))


def _light(rng, img: Image.Image) -> Image.Image:
    w, h = img.size
    contrast = _u(rng, 0.65, 1.2)
    brightness = _u(rng, 0.65, 1.25)
    arr = np.asarray(img)
    mean = float(arr.mean())
    v = np.arange(256, dtype=np.float32)
    out = np.empty_like(arr)
    for c in range(3):  # a lookup table per channel; the per-channel gain is the colour cast
        gain = brightness * _u(rng, 0.85, 1.15)
        out[..., c] = np.clip(((v - mean) * contrast + mean) * gain, 0, 255).astype(np.uint8)[arr[..., c]]
    img = Image.fromarray(out, "RGB")
    # Light from one side: darken towards the far side by up to 35 %.
    shadow = _ramp(w, h, _u(rng, 0, 2 * math.pi)) * _u(rng, 0.0, 0.35)
    img = Image.composite(Image.new("RGB", (w, h), (0, 0, 0)), img, _mask_image(shadow))
    if rng.random() < 0.25:  # sensor noise
        amp = int(rng.integers(3, 13))
        arr = np.asarray(img, np.int16) + rng.integers(-amp, amp + 1, (h, w, 3), dtype=np.int16)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return img


def _camera(rng, img: Image.Image) -> Image.Image:
    """Soften like a cheap lens or an upscaled low-resolution crop, or leave sharp."""
    w, h = img.size
    kind = _pick(rng, ["sharp", "blur", "lowres"], [5, 3, 2])
    if kind == "blur":
        return img.filter(ImageFilter.BoxBlur(_u(rng, 0.3, 0.8) * math.sqrt(min(w, h) / 64)))
    if kind == "lowres":
        k = _u(rng, 1.2, 2.0)
        small = img.resize((max(8, round(w / k)), max(8, round(h / k))), Image.BOX)
        return small.resize((w, h), Image.BILINEAR)
    return img


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------

def _draw_person(rng, head_h: float, covered: bool,
                 region: tuple[int, int, int, int]) -> tuple[Image.Image, list[str]]:
    """Head and shoulders on a transparent, premultiplied ("RGBa") layer, and
    the names of the optional parts drawn (for inspecting the data set).

    `region` is (x0, y0, x1, y1) in output pixels relative to the head centre:
    only that part is drawn, so the layer is no bigger than what the frame shows.
    """
    # Supersample so small heads still get smooth edges and visible features.
    ss = min(6, max(2, math.ceil(72 / max(head_h, 1))))
    x0, y0, x1, y1 = region
    # Opaque paint on transparent black is already premultiplied alpha, so
    # drawing straight into "RGBa" spares Pillow a conversion before and after
    # reduce() and transform().
    layer = Image.new("RGBa", ((x1 - x0) * ss, (y1 - y0) * ss), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    f = _new_face(rng, -x0 * ss, -y0 * ss, head_h * ss)
    style = _pick(rng, *HAIR_STYLES)
    brow = f.hair if style not in ("none", "hat") or rng.random() < 0.5 else _shade(f.skin, 0.45)
    parts = [f"hair={style}"]

    _draw_body(d, rng, f, layer.height)
    _draw_hair_back(d, rng, f, style)
    _draw_head(d, rng, f)
    if rng.random() < 0.15:
        _draw_beard(d, rng, f)
        parts.append("beard")
    _draw_eyes(d, rng, f, brow)
    _draw_nose(d, rng, f)
    _draw_mouth(d, rng, f)
    _draw_hair_front(d, rng, f, style)
    if rng.random() < 0.25:
        _draw_glasses(d, rng, f)
        parts.append("glasses")
    if covered:
        kind = _pick_kind(rng, COVERS)
        COVERS[kind][0](layer, d, rng, f)
        parts.append(f"cover={kind}")
    if rng.random() < (0.1 if covered else 0.25):
        # Distractors on covered faces too, so "has an object" is no cue;
        # the chin mask only makes sense on a bare face.
        kind = _pick_kind(rng, DISTRACTORS)
        if not (covered and kind == "mask_on_chin"):
            DISTRACTORS[kind][0](layer, d, rng, f)
            parts.append(f"near={kind}")
    return layer.reduce(ss), parts


def render(index: int, seed: int = 0) -> tuple[Image.Image, int]:
    """Draw image number `index` of the demo set for `seed`: an RGB PIL image and its label (1 covered, 0 bare).

    The JPEG quality this image should be saved at is in ``img.info["quality"]``;
    ``img.info["parts"]`` names what was drawn (e.g. "hair=long beard cover=hand"),
    which helps when looking into what a model gets wrong.
    """
    if index < 0 or seed < 0:
        raise ValueError("index and seed must be non-negative")
    rng = np.random.default_rng([seed, index])
    label = int(rng.random() < COVERED_SHARE)
    w, h = _image_size(rng)
    img = _background(rng, w, h)

    # Like crops around a detected face: mostly tight, the head filling the
    # frame; sometimes looser, with more background and shoulders.
    if rng.random() < 0.9:
        head_h = min(w * 1.25, h) * _u(rng, 0.75, 1.05)
        cx, cy = w * _u(rng, 0.42, 0.58), h * _u(rng, 0.42, 0.58)
    else:
        head_h = min(w * 1.25, h) * _u(rng, 0.5, 0.75)
        cx, cy = w * _u(rng, 0.35, 0.65), h * _u(rng, 0.38, 0.6)
    upright = rng.random() < 0.3  # aligned face crops; also skips the warp below
    if upright:
        cx, cy = round(cx), round(cy)
    t = 0.0 if upright else math.radians(_u(rng, -10, 10))
    c, s = math.cos(t), math.sin(t)

    def to_person(u: float, v: float) -> tuple[float, float]:
        """Frame pixel -> person coordinates (head centre at 0, unrotated)."""
        return c * (u - cx) + s * (v - cy), -s * (u - cx) + c * (v - cy)

    corners = [to_person(u, v) for u in (0, w) for v in (0, h)]
    # The frame's footprint in person space, bounded to where the person is.
    x0 = math.floor(max(min(p[0] for p in corners), -1.5 * head_h)) - 2
    x1 = math.ceil(min(max(p[0] for p in corners), 1.5 * head_h)) + 2
    y0 = math.floor(max(min(p[1] for p in corners), -1.0 * head_h)) - 2
    y1 = math.ceil(min(max(p[1] for p in corners), 2.5 * head_h)) + 2
    person, parts = _draw_person(rng, head_h, bool(label), (x0, y0, x1, y1))
    if upright:
        person = person.convert("RGBA")
        img.paste(person, (cx + x0, cy + y0), person)
    else:
        # One affine warp straight into the frame: rotation about the head
        # centre plus placement, sampling only the w x h output pixels.
        person = person.transform((w, h), Image.AFFINE,
                                  (c, s, -c * cx - s * cy - x0, -s, c, s * cx - c * cy - y0),
                                  resample=Image.BILINEAR).convert("RGBA")
        img.paste(person, (0, 0), person)

    img = _camera(rng, _light(rng, img))
    img.info["quality"] = int(rng.integers(40, 96))
    img.info["parts"] = " ".join(parts)
    return img, label


def _source_text(n: int, seed: int, counts: dict) -> str:
    return (
        "# MaskRec demo dataset (generated)\n\n"
        "This folder is the generated MaskRec demo set, drawn by `maskrec/data/synth.py`:\n"
        "cartoon faces, label 1 = face covered (mask, scarf or hand over the mouth),\n"
        "label 0 = bare face. No real photographs. File names are `<id>_<label>.jpg`.\n\n"
        f"- generator: maskrec.data.synth version {SYNTH_VERSION}\n"
        f"- n: {n}\n"
        f"- seed: {seed}\n"
        f"- train: {sum(counts['train'].values())} images "
        f"({counts['train'][1]} covered, {counts['train'][0]} bare)\n"
        f"- test: {sum(counts['test'].values())} images "
        f"({counts['test'][1]} covered, {counts['test'][0]} bare)\n"
    )


def generate(out_dir, n: int = 2000, seed: int = 0, test_fraction: float = 0.25,
             progress: Progress = None) -> dict:
    """Write n images in the report's layout: out_dir/train/<id>_<label>.jpg and out_dir/test/<id>_<label>.jpg,
    ids zero-padded to 6 digits, unique across splits (train first, then test; test gets the last
    round(n*test_fraction) ids). JPEG at the image's own drawn quality. Also write out_dir/SOURCE.md
    saying it is the generated MaskRec demo set, with n, seed and counts. Writes are atomic per file
    (write to a temp name in the same folder, then os.replace) so an interrupted run never leaves a half file.
    progress: optional callable(done:int, total:int), called at least every 100 images and at the end.
    Returns {"train": {0: count, 1: count}, "test": {0: count, 1: count}, "n": n, "seed": seed}.

    Files already in out_dir are overwritten when their names match and otherwise left alone.
    """
    if n < 0 or not 0.0 <= test_fraction <= 1.0:
        raise ValueError("need n >= 0 and 0 <= test_fraction <= 1")
    out = pathlib.Path(out_dir)
    n_test = round(n * test_fraction)
    counts: dict = {"train": {0: 0, 1: 0}, "test": {0: 0, 1: 0}, "n": n, "seed": seed}
    for split in ("train", "test"):
        (out / split).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        split = "train" if i < n - n_test else "test"
        img, label = render(i, seed)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=img.info["quality"])
        # no fsync per image: 2,000 of them would dominate the run time, and ensure_demo_data()
        # publishes the folder only once it is complete
        atomic_write_bytes(out / split / f"{i:06d}_{label}.jpg", buf.getvalue(), fsync=False)
        counts[split][label] += 1
        if progress is not None and ((i + 1) % 50 == 0 or i + 1 == n):
            progress(i + 1, n)
    if progress is not None and n == 0:
        progress(0, 0)
    atomic_write_bytes(out / "SOURCE.md", _source_text(n, seed, counts).encode(), fsync=False)
    return counts


def _recorded(folder: pathlib.Path) -> Optional[tuple[int, int, int]]:
    """(version, n, seed) from a demo set's SOURCE.md, or None if it is not one."""
    try:
        text = (folder / "SOURCE.md").read_text(encoding="utf-8")
    except OSError:
        return None
    found = {k: re.search(rf"^- {k}: .*?(\d+)\s*$", text, re.M) for k in ("generator", "n", "seed")}
    if "generated MaskRec demo set" not in text or not all(found.values()):
        return None
    return tuple(int(m.group(1)) for m in found.values())  # type: ignore[return-value,union-attr]


def default_root() -> pathlib.Path:
    """<MASKREC_HOME>/data/demo (see maskrec.config), the one place app and CLI look for it."""
    return demo_dir()


def ensure_demo_data(root=None, n: int = 2000, seed: int = 0, progress: Progress = None) -> pathlib.Path:
    """Return the folder of the default demo dataset, generating it on first use.
    root defaults to <MASKREC_HOME>/data/demo (MASKREC_HOME defaults to the repo folder). It is built
    like every cache folder (``atomic.locked_dir`` + ``building``): under a lock, in a private sibling
    folder renamed into place at the end, so a half-written demo set is never picked up and two
    processes that start together generate it once; if the folder exists and holds a SOURCE.md
    recording the same n and seed, return it without regenerating.

    A folder from an older generator version or other n/seed is replaced.  A non-empty folder
    that is not a generated demo set is never deleted: that raises FileExistsError.
    """
    root = pathlib.Path(root) if root is not None else default_root()
    wanted = (SYNTH_VERSION, n, seed)
    if _recorded(root) == wanted:
        return root
    with locked_dir(root):
        if _recorded(root) == wanted:  # another process finished it while this one waited
            return root
        if root.exists() and (not root.is_dir() or (_recorded(root) is None and any(root.iterdir()))):
            raise FileExistsError(f"{root} exists and is not a generated MaskRec demo set; "
                                  "move it away or pass another root")
        with building(root) as tmp:
            tmp.chmod(0o755)  # mkdtemp makes it private; the demo set is not secret
            generate(tmp, n=n, seed=seed, progress=progress)
    return root
