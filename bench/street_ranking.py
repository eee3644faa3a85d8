"""Would a better ranking move the street point? Flip TTA and a Net1+Net2 ensemble on the val scenes' faces.

    python bench/street_ranking.py [--data D] [--json-out docs/street-ranking-DATE.json]

Scores the declared **validation** scenes' faces (``--split val-scenes``, the faces the ``street`` points are
picked on; test is never read) with each shipped net as it is and with flip test-time augmentation
(``Predictor(tta=True)``: P(mask) averaged over each face and its mirror), and the two nets' mean log-odds
(with and without flip). For each scoring, the ``street`` rule as ``threshold`` applies it (the lowest
threshold calling <= 3% of the bare faces mask, then the symmetric unsure band holding <= 5% of the faces) and
the masked faces that rule then calls mask: the figure issue 34's masked clause is about. Last, Net2's
threshold with bands of 0-5% of the faces: the masked faces called mask and the bare faces above the band.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from maskrec.core.metrics import auc_or_none  # noqa: E402
from maskrec.infer.evaluate import score  # noqa: E402
from maskrec.infer.operating import capped, rates, unsure_band  # noqa: E402
from maskrec.infer.predictor import Predictor  # noqa: E402
from maskrec.infer.probe import cpu_name  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
DATA = ":".join(str(SHARED / n) for n in ("facemask-dev", "facemask-scenes-dev", "facemask-scenes-more"))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def street(y: np.ndarray, p: np.ndarray) -> dict:
    """The street rule on these scores and what it leaves: threshold, band, bare called mask, masked called mask."""
    op = capped(y, p, 0.03)
    band = unsure_band(p, op.threshold, 0.05)
    r = rates(y, p, op.threshold, band)
    called = int(((p >= (band[1] if band else op.threshold)) & (y == 1)).sum())
    return {"auc": auc_or_none(y, p), "threshold": op.threshold, "band": band, "bare_as_mask": r["bare_as_mask"],
            "masked_missed": r["masked_missed"], "unsure": r["unsure"], "masked_called_mask": called,
            "masked": int((y == 1).sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--checkpoints", nargs=2, default=["checkpoints/net1.pt", "checkpoints/net2.pt"],
                    metavar=("NET1", "NET2"))
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args(argv)
    scores, y = {}, None
    for ck in a.checkpoints:
        for tta in (False, True):
            res = score(Predictor.load(ck, exact=True, tta=tta), a.data, None, split="val-scenes")
            if y is not None and not np.array_equal(y, res.y):
                raise SystemExit("the val faces came back in another order")
            y = np.asarray(res.y)
            scores[f"{Path(ck).stem}{' + flip' if tta else ''}"] = np.asarray(res.p, np.float64)
    n1, n2 = (Path(c).stem for c in a.checkpoints)
    for flip in ("", " + flip"):
        scores[f"{n1} & {n2} mean log-odds{flip}"] = 1 / (1 + np.exp(-(logit(scores[n1 + flip]) + logit(scores[n2 + flip])) / 2))
    rows = {name: street(y, p) for name, p in scores.items()}
    print(f"{len(y)} val-scene faces ({int((y == 0).sum())} bare); street rule: <= 3% bare called mask, band <= 5%")
    for name, r in rows.items():
        b = r["band"] or (r["threshold"], r["threshold"])
        print(f"  {name:<34} AUC {r['auc']:.4f}  threshold {r['threshold']:.3f} band {b[0]:.3f}-{b[1]:.3f}  "
              f"bare called mask {r['bare_as_mask']['k']}/{r['bare_as_mask']['n']}  "
              f"masked called mask {r['masked_called_mask']}/{r['masked']} = {r['masked_called_mask'] / r['masked']:.3f}")
    # the band's share, net2 as it is: what a narrower band gives back to the masked faces, and what its
    # upper edge then lets through of the bare ones (on these val faces; test is not read)
    y2, p2 = y, scores[n2]
    t2 = rows[n2]["threshold"]
    shares = {}
    print(f"  {n2} at its threshold {t2:.3f}, the band's share of faces: masked called mask / bare above the band")
    for share in (0.0, 0.01, 0.02, 0.03, 0.04, 0.05):
        band = unsure_band(p2, t2, share) if share else None
        hi = band[1] if band else t2
        m, b = int(((p2 >= hi) & (y2 == 1)).sum()), int(((p2 >= hi) & (y2 == 0)).sum())
        shares[share] = {"band": band, "masked_called_mask": m, "bare_above": b}
        print(f"    <= {share:.0%} unsure: band {band[0] if band else t2:.3f}-{hi:.3f}  masked {m}/{int((y2 == 1).sum())} "
              f"= {m / (y2 == 1).sum():.3f}  bare {b}/{int((y2 == 0).sum())}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M"),
                                                "data": a.data, "split": "val-scenes", "rows": rows,
                                                f"{n2}_band_shares": shares}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
