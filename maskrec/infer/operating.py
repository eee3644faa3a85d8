"""Operating points: the threshold a checkpoint labels faces at, chosen for what the check guards.

A mask check exists to catch the bare face, so the default rule caps the share of bare faces called
"mask" (``MAX_BARE_AS_MASK``, 3%) on validation faces and reports the masked faces it then misses,
each rate with its 95% Wilson interval (a rate on 12 faces says nothing). A checkpoint can carry
several named operating points (``street``: picked on the declared validation scenes' faces;
``crops``: on web crops), each a threshold, an optional **unsure band** (P(mask) in ``[lo, hi)`` is
labelled ``unsure``: no vote in a track, its own count in summaries) and how it was picked::

    op = capped(y, p, max_bare_as_mask=0.03, name="street", on="scene validation")
    op = op.with_band(unsure_band(p, op.threshold, share=0.05))   # ~5% of faces unsure
    op.label(0.62)                  # "mask" | "no_mask" | "unsure"
    ck["operating_points"] = {op.name: op.as_dict()}; ck["operating_point"] = op.name

``by_cost`` picks the threshold of least expected cost from the cost of each error (the Evaluate
page's "set your own"). Intervals come from scipy's ``binomtest(...).proportion_ci("wilson")``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import roc_curve

from maskrec.core.metrics import in_band

MAX_BARE_AS_MASK = 0.03  # the default cap on bare faces called "mask"
UNSURE_SHARE = 0.05      # the default unsure band holds at most this share of validation faces
DEFAULT = "street"       # what recognition uses unless told
UNSURE = "unsure"


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of the rate k/n ((0, 1) when n is 0: nothing is known)."""
    if n <= 0:
        return 0.0, 1.0
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def rates(y, p, threshold: float, band: tuple[float, float] | None = None) -> dict:
    """What an operating point does to labelled faces: bare faces called mask, masked faces called
    bare (missed), unsure faces (inside the band: neither), each as k, n, rate and Wilson interval."""
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    unsure = in_band(p, band)
    mask = (p >= threshold) & ~unsure
    bare_n, masked_n = int((y == 0).sum()), int((y == 1).sum())

    def rate(k: int, n: int) -> dict:
        return {"k": k, "n": n, "rate": k / n if n else math.nan, "ci95": list(wilson(k, n))}
    return {"bare_as_mask": rate(int((mask & (y == 0)).sum()), bare_n),
            "masked_missed": rate(int((~mask & ~unsure & (y == 1)).sum()), masked_n),
            "unsure": rate(int(unsure.sum()), len(y))}


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    threshold: float
    band: tuple[float, float] | None = None  # P(mask) in [lo, hi): "unsure"
    how: str = ""
    picked_on: dict = field(default_factory=dict)  # rates() where it was picked (validation)

    def label(self, p: float, classes=("no_mask", "mask")) -> str:
        if self.band and self.band[0] <= p < self.band[1]:
            return UNSURE
        return classes[1] if p >= self.threshold else classes[0]

    def labels(self, p, classes=("no_mask", "mask")) -> list[str]:
        return [self.label(float(v), classes) for v in np.atleast_1d(p)]

    def with_band(self, band: tuple[float, float] | None) -> "OperatingPoint":
        return replace(self, band=None if band is None or band[1] <= band[0] else (float(band[0]), float(band[1])))

    def as_dict(self) -> dict:
        return {"threshold": float(self.threshold), "band": list(self.band) if self.band else None,
                "how": self.how, "picked_on": self.picked_on}

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "OperatingPoint":
        band = d.get("band")
        return cls(name, float(d["threshold"]), tuple(band) if band else None, d.get("how", ""),
                   dict(d.get("picked_on") or {}))


def _check(y, p) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y).astype(int), np.asarray(p, float)
    if len(np.unique(y)) < 2:
        raise ValueError("an operating point needs bare and masked faces to pick on")
    return y, p


def capped(y, p, max_bare_as_mask: float = MAX_BARE_AS_MASK, name: str = DEFAULT, on: str = "") -> OperatingPoint:
    """The lowest threshold that calls at most ``max_bare_as_mask`` of the bare faces "mask" (so the
    most masked faces found under the cap)."""
    y, p = _check(y, p)
    if not 0 <= max_bare_as_mask < 1:
        raise ValueError(f"the cap on bare faces called mask must be in [0, 1), got {max_bare_as_mask}")
    fpr, _, thr = roc_curve(y, p, drop_intermediate=False)  # every threshold: the dropped ones can be the lowest
    ok = np.where(fpr <= max_bare_as_mask)[0]
    t = float(min(1.0, thr[ok[-1]])) if len(ok) else 1.0
    how = f"lowest threshold with bare faces called mask <= {max_bare_as_mask:g}" + (f" on {on}" if on else "")
    return OperatingPoint(name, t, None, how, rates(y, p, t))


def by_cost(y, p, cost_bare_as_mask: float, cost_masked_missed: float, name: str = "cost", on: str = "") -> OperatingPoint:
    """The threshold of least total cost: each bare face called mask costs ``cost_bare_as_mask``,
    each masked face called bare ``cost_masked_missed`` (ties: the higher threshold)."""
    y, p = _check(y, p)
    if cost_bare_as_mask < 0 or cost_masked_missed < 0 or cost_bare_as_mask + cost_masked_missed == 0:
        raise ValueError("the costs of the two errors must be >= 0 and not both 0")
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    n0, n1 = int((y == 0).sum()), int((y == 1).sum())
    cost = cost_bare_as_mask * fpr * n0 + cost_masked_missed * (1 - tpr) * n1
    best = np.flatnonzero(cost <= cost.min() + 1e-9)[0]  # roc_curve: thresholds fall, so first = highest
    t = float(min(1.0, thr[best]))
    how = f"least cost, a bare face called mask costing {cost_bare_as_mask:g} and a masked face missed " \
          f"{cost_masked_missed:g}" + (f" on {on}" if on else "")
    return OperatingPoint(name, t, None, how, rates(y, p, t))


def unsure_band(p, threshold: float, share: float = UNSURE_SHARE) -> tuple[float, float] | None:
    """The widest band around the threshold, symmetric in log-odds, that holds at most ``share`` of
    the faces ``p``; None for share 0 (no band)."""
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    if share <= 0 or len(p) == 0:
        return None
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    d = np.sort(np.abs(np.log(p / (1 - p)) - math.log(t / (1 - t))))
    k = int(math.floor(share * len(d)))  # faces allowed inside
    if k == 0:
        return None
    w = float(d[k - 1] + d[k]) / 2 if k < len(d) else float(d[-1]) + 1e-6  # between the k-th and the next
    lt = math.log(t / (1 - t))
    sig = lambda x: 1 / (1 + math.exp(-x))
    return sig(lt - w), sig(lt + w)


def of_checkpoint(ck: dict) -> tuple[dict[str, OperatingPoint], str]:
    """(the checkpoint's operating points by name, its default's name). A checkpoint of before
    issue 34 has one: ``saved``, its threshold."""
    ops = {n: OperatingPoint.from_dict(n, d) for n, d in (ck.get("operating_points") or {}).items()}
    if not ops:
        ops = {"saved": OperatingPoint("saved", float(ck.get("threshold", 0.5)), None, ck.get("threshold_how", ""))}
    default = ck.get("operating_point")
    return ops, default if default in ops else (DEFAULT if DEFAULT in ops else next(iter(ops)))
