"""Tags beside face boxes that keep clear of each other: where each goes, and at what font size.

    texts, rects, (scale, weight) = layout(["1 mask 0.97", ...], boxes, rgb.shape, 22, short=["1", ...])
    for text, (x0, y0, x1, y1) in zip(texts, rects):   # cv2.putText(..., scale, ..., weight) inside each

A tag is tried above its box, below it (left-, then right-aligned), inside its top and inside its
bottom, always within the frame; it goes where it covers least of the tags placed before, then of
the other faces, then where it was tried first. In a crowd some cannot keep clear: the tags that
overlap get their ``short`` text (the face's number; the list beside the photo gives the rest) and
all are placed again, until they keep clear or only short tags are in each other's way.
"""
from __future__ import annotations

import numpy as np


def _overlap(x: float, y: float, w: float, h: float, rects: np.ndarray) -> np.ndarray:
    """Area shared by the rectangle (x, y, w, h) and each row (x0, y0, x1, y1) of rects."""
    if not len(rects):
        return np.zeros(0)
    dx = np.minimum(x + w, rects[:, 2]) - np.maximum(x, rects[:, 0])
    dy = np.minimum(y + h, rects[:, 3]) - np.maximum(y, rects[:, 1])
    return np.clip(dx, 0, None) * np.clip(dy, 0, None)


def place(boxes, sizes, shape) -> list[tuple[int, int]]:
    """The top-left corner of a tag of each size (w, h px) beside each box (x0, y0, x1, y1, ...),
    each placed after the ones before it (the module docstring says where it goes)."""
    h, w = shape[:2]
    faces = np.array([b[:4] for b in boxes], np.float64).reshape(-1, 4)
    placed = np.zeros((0, 4))
    spots = []
    for i, ((x0, y0, x1, y1), (tw, th)) in enumerate(zip(faces, sizes)):
        others = np.delete(faces, i, axis=0)
        best = None
        for x, y in ((x0, y0 - th), (x0, y1), (x1 - tw, y0 - th), (x1 - tw, y1), (x0, y0), (x0, y1 - th)):
            x, y = min(max(0.0, x), max(0.0, w - tw)), min(max(0.0, y), max(0.0, h - th))
            score = (float(_overlap(x, y, tw, th, placed).sum()), float(_overlap(x, y, tw, th, others).sum()))
            if best is None or score < best[0]:
                best = (score, round(x), round(y))
            if score == (0.0, 0.0):
                break
        spots.append(best[1:])
        placed = np.vstack([placed, [best[1], best[2], best[1] + tw, best[2] + th]])
    return spots


def _crossing(rects: list[tuple[int, int, int, int]]) -> set[int]:
    """The tags that overlap another."""
    r = np.array(rects, np.float64).reshape(-1, 4)
    return {i for i, (x0, y0, x1, y1) in enumerate(r) if (_overlap(x0, y0, x1 - x0, y1 - y0, np.delete(r, i, 0)) > 0).any()}


def layout(texts: list[str], boxes, shape, text_px: float, short: list[str] | None = None
           ) -> tuple[list[str], list[tuple[int, int, int, int]], tuple[float, int]]:
    """The texts drawn (``short`` ones where the full tag would cover another tag), their
    rectangles (x0, y0, x1, y1, exclusive), and the font scale and stroke of
    ``cv2.FONT_HERSHEY_SIMPLEX`` for digits ``text_px`` px tall."""
    import cv2  # deferred: importing maskrec.faces loads no cv2
    font, weight = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(text_px / 14))
    scale = text_px / cv2.getTextSize("0", font, 1.0, 1)[0][1]

    def rects(ts):  # a 2 px pad around the text, its descenders included
        sizes = [(s[0][0] + 4, s[0][1] + s[1] + 4) for s in (cv2.getTextSize(t, font, scale, weight) for t in ts)]
        return [(x, y, x + tw, y + th) for (x, y), (tw, th) in zip(place(boxes, sizes, shape), sizes)]
    texts = list(texts)
    where = rects(texts)
    while short is not None:  # shortened tags free room: place again, shorten more (each round shortens one or ends)
        crossing = _crossing(where)
        shorter = [s if i in crossing else t for i, (t, s) in enumerate(zip(texts, short))]
        if shorter == texts:  # clear, or only short tags left in the way
            break
        texts, where = shorter, rects(shorter)
    return texts, where, (scale, weight)
