"""Masks drawn onto real bare faces (MaskTheFace's idea): training data for the cases the nets miss.

The nets' errors on street photos are mostly masked faces called bare: masks worn below the nose,
unusual colours and shapes, scarves. The training data has few of them. This module makes more from
the bare faces of the **training split** (never validation or test): RetinaFace's five landmarks
(eyes, nose tip, mouth corners; :meth:`maskrec.faces.RetinaFace.landmarks`) place a mask polygon in
the face's own frame (eye line and eye-to-mouth axis, so turned and tilted heads get a fitting mask),
in one of several shapes, colours and patterns, shaded, with ear loops.

The label rule (the report's "any face cover"): a mask that covers the mouth is a cover, label 1,
whether it also covers the nose (``over-nose``) or is worn **below the nose** (``below-nose``; the VOC
scenes' ``mask_weared_incorrect`` is label 1 too). A mask **pulled down to the chin** (``chin``)
covers neither nose nor mouth: label 0, a hard negative.

    lms = landmarks_of(paths)                       # {path: (5, 2) array | None}, cached on disk
    X, y, styles = synthesize(paths, 64, share=1.0)  # (M, 3, 64, 64) uint8, (M,) labels, their styles

Landmarks come from one RetinaFace pass per image, cached under ``cache/landmarks`` by file and mtime;
an image where no face is found gets no mask.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from maskrec.core.atomic import atomic_write_text
from maskrec.config import cache_dir
from maskrec.data import open_rgb, to_input
from maskrec.faces import make_detector

# style -> (label, share of the masks drawn): most are worn properly; the two hard cases after
STYLES = {"over-nose": (1, 0.55), "below-nose": (1, 0.25), "chin": (0, 0.20)}
SHAPES = ("surgical", "cloth", "n95")
COLOURS = [(170, 205, 235), (235, 238, 240), (30, 30, 34), (95, 100, 110), (235, 170, 190),
           (40, 70, 140), (150, 30, 40), (60, 110, 70), (230, 200, 90), (120, 80, 150)]
PAD = 0.25  # a tight crop is padded by this share a side before detection: RetinaFace wants some context


def _detector():
    return make_detector("retinaface")


def _key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|pad{PAD}".encode()).hexdigest()


def _detect_one(det, path: Path) -> list | None:
    rgb = np.asarray(open_rgb(path))
    h, w = rgb.shape[:2]
    py, px = int(h * PAD), int(w * PAD)
    padded = np.pad(rgb, ((py, py), (px, px), (0, 0)), mode="edge")
    found = det.landmarks(padded)
    if found is None:
        return None
    pts = found[1] - np.array([px, py], np.float32)
    return pts.round(2).tolist()


def landmarks_of(paths: list[str], progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray | None]:
    """{path: (5, 2) float32 landmarks of its most confident face, or None}, one RetinaFace pass per
    image not seen before (the answers are kept in ``cache/landmarks/landmarks.json``)."""
    store = cache_dir() / "landmarks" / "landmarks.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    out, det, fresh = {}, None, 0
    for k, p in enumerate(paths):
        path = Path(p)
        try:
            key = _key(path)
        except OSError:
            out[p] = None
            continue
        if key not in known:
            det = det or _detector()
            try:
                known[key] = _detect_one(det, path)
            except Exception:  # an image that fails here is a face without a mask, not a failed run
                known[key] = None
            fresh += 1
        out[p] = None if known[key] is None else np.asarray(known[key], np.float32)
        if progress:
            progress(k + 1, len(paths))
    if fresh:
        store.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(store, json.dumps(known))
    return out


def _frame(lm: np.ndarray):
    """The face's own frame from its landmarks: origin between the eyes, ``r`` one eye distance
    along the eye line, ``u`` the eyes-to-mouth distance down the face."""
    le, re_, nose, lmth, rmth = lm
    eye = (le + re_) / 2
    mouth = (lmth + rmth) / 2
    r = re_ - le
    if np.hypot(*r) < 1e-3:
        return None
    down = mouth - eye
    if np.hypot(*down) < 1e-3:
        return None
    return eye, r, down, nose


def polygon(lm: np.ndarray, style: str, shape: str, rng: np.random.Generator):
    """The mask's outline in image pixels, and its two upper corners (where the ear loops start). Coordinates (a, b): a across the face in eye distances from
    the eyes' midpoint, b down it in eye-to-mouth distances (the nose tip near b 0.6, the mouth at 1,
    the chin near 1.7)."""
    eye, r, down, nose = _frame(lm)
    nose_b = float(np.dot(nose - eye, down) / np.dot(down, down))  # where this face's nose tip is
    half = rng.uniform(0.95, 1.15)  # half-width, in eye distances
    top = {"over-nose": rng.uniform(0.25, 0.45), "below-nose": max(nose_b + 0.12, 0.72),
           "chin": rng.uniform(1.22, 1.32)}[style]
    bottom = rng.uniform(1.6, 1.8) if style != "chin" else rng.uniform(1.75, 1.95)
    mid = (top + bottom) / 2
    if shape == "surgical":
        pts = [(-half, top + 0.08), (-0.3, top), (0.3, top), (half, top + 0.08),
               (half * 1.05, mid), (half * 0.9, bottom - 0.12), (0, bottom), (-half * 0.9, bottom - 0.12),
               (-half * 1.05, mid)]
        corners = (0, 3)
    elif shape == "n95":
        pts = [(-half * 0.9, top + 0.2), (0, top), (half * 0.9, top + 0.2), (half * 1.05, mid + 0.1),
               (half * 0.6, bottom - 0.05), (0, bottom + 0.05), (-half * 0.6, bottom - 0.05), (-half * 1.05, mid + 0.1)]
        corners = (0, 2)
    else:  # cloth: a curved top edge, a rounded bottom
        pts = [(a, top + 0.1 * (a / half) ** 2) for a in np.linspace(-half, half, 7)]
        pts += [(half * np.cos(t), mid + (bottom - mid) * np.sin(t)) for t in np.linspace(0, np.pi, 9)[1:-1]]
        corners = (0, 6)
    out = [tuple(float(v) for v in eye + a * r + b * down) for a, b in pts]
    return out, (out[corners[0]], out[corners[1]])


def _texture(size: tuple[int, int], shape: str, rng: np.random.Generator) -> Image.Image:
    w, h = size
    base = np.array(COLOURS[rng.integers(len(COLOURS))] if rng.random() < 0.8 else rng.integers(0, 256, 3), np.float32)
    tex = np.broadcast_to(base, (h, w, 3)).copy()
    kind = rng.random()
    if shape == "cloth" and kind < 0.35:  # stripes or checks of a second colour
        other = np.array(COLOURS[rng.integers(len(COLOURS))], np.float32)
        period = int(rng.integers(4, 14))
        yy, xx = np.mgrid[0:h, 0:w]
        band = ((yy // period) % 2 == 0) if rng.random() < 0.5 else (((yy // period) + (xx // period)) % 2 == 0)
        tex[band] = other
    elif shape == "surgical":  # pleats: darker horizontal lines
        period = max(3, h // int(rng.integers(5, 9)))
        tex[(np.arange(h) % period) < max(1, period // 5)] *= 0.82
    tex *= rng.normal(1.0, 0.04, (h, w, 1))  # fabric grain
    return Image.fromarray(tex.clip(0, 255).astype(np.uint8))


def draw(rgb: Image.Image, lm: np.ndarray, style: str, rng: np.random.Generator) -> Image.Image:
    """``rgb`` with a mask of ``style`` drawn on, placed by the landmarks ``lm`` (5, 2)."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    poly, corners = polygon(lm, style, shape, rng)
    w, h = rgb.size
    ss = 4  # drawn 4x larger, then reduced: smooth edges
    alpha = Image.new("L", (w * ss, h * ss), 0)
    ImageDraw.Draw(alpha).polygon([(x * ss, y * ss) for x, y in poly], fill=255)
    alpha = alpha.resize((w, h), Image.LANCZOS).filter(ImageFilter.GaussianBlur(0.6))
    tex = _texture((w, h), shape, rng)
    # shading: lighter in the middle of the mask, darker towards its edges and bottom
    xs, ys = np.array([p[0] for p in poly]), np.array([p[1] for p in poly])
    cx, cy = xs.mean(), ys.mean()
    rad = max(xs.max() - xs.min(), ys.max() - ys.min(), 1) / 2
    yy, xx = np.mgrid[0:h, 0:w]
    shade = 1.08 - 0.3 * np.clip(np.hypot(xx - cx, yy - cy) / rad, 0, 1.3) ** 2
    tex = Image.fromarray((np.asarray(tex, np.float32) * shade[..., None]).clip(0, 255).astype(np.uint8))
    out = Image.composite(tex, rgb, alpha)
    if style != "chin" and rng.random() < 0.8:  # ear loops from the mask's upper and lower corners
        d = ImageDraw.Draw(out)
        loop = tuple(int(c) for c in (np.array(COLOURS[1]) * rng.uniform(0.7, 1.0)))
        eye, r, down, _ = _frame(lm)
        width = max(1, int(np.hypot(*r) / 25))
        for side, corner in zip((-1, 1), corners):
            ear = eye + side * 1.55 * r + 0.35 * down
            d.line([corner, tuple(float(v) for v in ear)], fill=loop, width=width)
    return out


def synthesize(paths: list[str], size: int, share: float = 1.0, seed: int = 0,
               progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Masked copies of a seeded ``share`` of the bare faces at ``paths``: (M, 3, size, size) uint8
    as the nets take them (``data.to_input``), their labels (STYLES) and styles. Faces whose landmarks
    are not found are left out."""
    rng = np.random.default_rng(seed)
    chosen = [p for p in paths if rng.random() < share]
    lms = landmarks_of(chosen, progress)
    names, probs = list(STYLES), np.array([s[1] for s in STYLES.values()])
    X, y, styles = [], [], []
    for p in chosen:
        lm = lms.get(p)
        if lm is None or _frame(lm) is None:
            continue
        style = names[rng.choice(len(names), p=probs / probs.sum())]
        try:
            img = draw(open_rgb(p), lm, style, np.random.default_rng(rng.integers(2**32)))
        except Exception:
            continue
        X.append(to_input(img, size).transpose(2, 0, 1))
        y.append(STYLES[style][0])
        styles.append(style)
    if not X:
        return np.zeros((0, 3, size, size), np.uint8), np.zeros(0, np.int64), []
    return np.stack(X), np.array(y, np.int64), styles


def preview(paths: list[str], out: str | os.PathLike, n: int = 24, seed: int = 0, side: int = 128) -> Path:
    """A contact sheet of each style drawn on the first faces of ``paths`` (for looking at)."""
    rng = np.random.default_rng(seed)
    lms = landmarks_of(paths[:n])
    tiles = []
    for p in paths[:n]:
        lm = lms.get(p)
        if lm is None:
            continue
        for style in STYLES:
            img = draw(open_rgb(p), lm, style, np.random.default_rng(rng.integers(2**32)))
            tiles.append(img.resize((side, side)))
    cols = len(STYLES) * 4
    sheet = Image.new("RGB", (cols * side, max(1, -(-len(tiles) // cols)) * side))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * side, (i // cols) * side))
    sheet.save(out)
    return Path(out)
