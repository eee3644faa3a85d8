"""Data health: exact and near-duplicate images, and duplicates that leak between train and test.

Exact duplicates share their file bytes (MD5). Near duplicates (re-encodings, small edits) have
8x8 average hashes within ``AHASH_MAX`` bits and 9x8 difference hashes within ``DHASH_MAX`` bits,
the rule the dev set's own SOURCE.md used. Hashes come from the 32x32 decoded cache that training
uses anyway, so this costs no extra JPEG decoding.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from .data import Dataset, decode_all

AHASH_MAX, DHASH_MAX = 4, 8


def _hashes(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # (N, 3, 32, 32) uint8 -> grey -> aHash bits (N, 64) and dHash bits (N, 64)
    g = torch.from_numpy(np.asarray(X, dtype=np.float32)).mean(1, keepdim=True)
    a = F.adaptive_avg_pool2d(g, (8, 8)).flatten(1)
    ahash = (a > a.mean(1, keepdim=True)).numpy()
    d = F.interpolate(g, size=(8, 9), mode="area")[:, 0]
    dhash = (d[:, :, 1:] > d[:, :, :-1]).flatten(1).numpy()
    return ahash, dhash


def _near_pairs(ahash: np.ndarray, dhash: np.ndarray, chunk: int = 1024) -> list[tuple[int, int, int, int]]:
    """(i, j, a_dist, d_dist) for i < j within both limits; chunked so 24k images fit in memory."""
    A = ahash.astype(np.float32)
    D = dhash.astype(np.float32)
    out = []
    for s in range(0, len(A), chunk):
        a = A[s:s + chunk]
        # Hamming distance of bit vectors via dot products: |x| + |y| - 2 x.y
        da = a.sum(1, keepdims=True) + A.sum(1) - 2 * a @ A.T
        dd = D[s:s + chunk].sum(1, keepdims=True) + D.sum(1) - 2 * D[s:s + chunk] @ D.T
        ii, jj = np.nonzero((da <= AHASH_MAX) & (dd <= DHASH_MAX))
        for i, j in zip(ii + s, jj):
            if i < j:
                out.append((int(i), int(j), int(da[i - s, j]), int(dd[i - s, j])))
    return out


def duplicates(ds: Dataset, progress=None) -> dict:
    """Exact and near-duplicate groups, and the pairs that cross the train/test split."""
    X, keep = decode_all(ds, 32, progress)
    idx = np.nonzero(keep)[0]
    items = [ds.items[i] for i in idx]
    by_md5 = defaultdict(list)
    for k, it in enumerate(items):
        by_md5[hashlib.md5(it.path.read_bytes()).hexdigest()].append(k)
    exact = [g for g in by_md5.values() if len(g) > 1]
    exact_pairs = {(g[0], o) for g in exact for o in g[1:]}
    ahash, dhash = _hashes(X[idx])
    near = [p for p in _near_pairs(ahash, dhash) if (p[0], p[1]) not in exact_pairs]

    def row(i, j, kind, a=0, d=0):
        return {"a": str(items[i].path), "b": str(items[j].path), "kind": kind,
                "split_a": items[i].split, "split_b": items[j].split,
                "label_a": items[i].label, "label_b": items[j].label, "ahash_dist": a, "dhash_dist": d}

    pairs = [row(g[0], o, "exact") for g in exact for o in g[1:]] + [row(i, j, "near", a, d) for i, j, a, d in near]
    leaks = [p for p in pairs if p["split_a"] != p["split_b"]]
    return {"n": len(items), "exact_groups": len(exact), "exact_extra_copies": sum(len(g) - 1 for g in exact),
            "near_pairs": len(near), "pairs": pairs, "leaks": leaks,
            "label_conflicts": [p for p in pairs if p["label_a"] != p["label_b"]]}
