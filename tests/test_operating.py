"""Operating points: the capped rule, the cost rule, the unsure band, Wilson intervals, and the
checkpoint, predictor, recogniser and tracker that carry them (issue 34)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from maskrec.models import checkpoint
from maskrec.infer.predictor import Predictor, set_operating_point, set_threshold
from maskrec.infer.operating import OperatingPoint, by_cost, capped, of_checkpoint, rates, unsure_band, wilson
from maskrec.live.track import Tracker


def _scores(n0=200, n1=800, seed=0):
    """Bare faces' P(mask) low, masked faces' high, overlapping."""
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.beta(2, 8, n0), rng.beta(8, 2, n1)])
    return np.array([0] * n0 + [1] * n1), p


def test_wilson_matches_the_formula_and_says_nothing_on_no_faces():
    lo, hi = wilson(5, 160)
    z, n, k = 1.959964, 160, 5
    c = (k / n + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert lo == pytest.approx(c - h, abs=1e-6) and hi == pytest.approx(c + h, abs=1e-6)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 12)[1] > 0.2  # no error on 12 faces still allows a rate over 20%


def test_the_capped_rule_is_the_lowest_threshold_under_the_cap():
    y, p = _scores()
    op = capped(y, p, 0.03, "street", "val")
    r = op.picked_on
    assert r["bare_as_mask"]["k"] <= 0.03 * 200 and r["bare_as_mask"]["n"] == 200
    # one step lower would break the cap: the next bare score under the threshold is called mask
    lower = p[(y == 0) & (p < op.threshold)].max()
    assert ((p[y == 0] >= lower).sum()) > 0.03 * 200
    assert r["masked_missed"]["k"] == int((p[y == 1] < op.threshold).sum())
    assert op.how.startswith("lowest threshold with bare faces called mask <= 0.03 on val")
    with pytest.raises(ValueError, match="bare and masked"):
        capped(np.ones(5), np.linspace(0, 1, 5))


def test_the_cost_rule_moves_with_the_costs():
    y, p = _scores()
    strict = by_cost(y, p, 20, 1)   # a bare face waved through costs 20 missed masks
    lax = by_cost(y, p, 1, 20)
    assert strict.threshold > lax.threshold
    assert strict.picked_on["bare_as_mask"]["k"] <= lax.picked_on["bare_as_mask"]["k"]
    # no other threshold costs less
    cost = lambda t: 20 * ((p >= t) & (y == 0)).sum() + ((p < t) & (y == 1)).sum()  # noqa: E731
    assert cost(strict.threshold) <= min(cost(t) for t in np.unique(p))


def test_the_unsure_band_holds_at_most_its_share_and_labels_unsure():
    y, p = _scores()
    op = capped(y, p, 0.03)
    band = unsure_band(p, op.threshold, 0.05)
    lo, hi = band
    assert lo < op.threshold < hi
    inside = ((p >= lo) & (p < hi)).sum()
    assert 0.04 * len(p) <= inside <= 0.05 * len(p)
    op = op.with_band(band)
    assert op.label(op.threshold) == "unsure" and op.label(hi) == "mask" and op.label(lo - 1e-6) == "no_mask"
    r = rates(y, p, op.threshold, band)
    assert r["unsure"]["k"] == inside
    # an unsure face is neither called mask nor missed
    assert r["bare_as_mask"]["k"] + r["masked_missed"]["k"] + inside == \
        ((p >= op.threshold) & (y == 0)).sum() + ((p < op.threshold) & (y == 1)).sum() + \
        ((p >= lo) & (p < hi) & (((p < op.threshold) & (y == 0)) | ((p >= op.threshold) & (y == 1)))).sum()
    assert unsure_band(p, op.threshold, 0) is None


def _tiny_checkpoint(tmp_path):
    from maskrec.models.build import build
    net = build("net1")
    path = tmp_path / "n.pt"
    checkpoint.save(path, {"net": "net1", "input_size": 32, "classes": ["no_mask", "mask"], "threshold": 0.4,
                           "model": net.state_dict(), "config": {}, "metrics": {}})
    return path


def test_a_checkpoint_carries_named_operating_points_and_the_predictor_uses_the_default(tmp_path):
    path = _tiny_checkpoint(tmp_path)
    pred = Predictor.load(path)
    assert pred.op.name == "saved" and pred.threshold == pytest.approx(0.4)  # before issue 34: one point
    set_operating_point(path, OperatingPoint("street", 0.9, (0.8, 0.95), "capped"))
    set_operating_point(path, OperatingPoint("crops", 0.5, None, "best F1"), default=False)
    ck = checkpoint.load(path)
    assert ck["operating_point"] == "street" and ck["threshold"] == 0.9  # the legacy field follows the default
    ops, default = of_checkpoint(ck)
    assert set(ops) == {"street", "crops"} and default == "street"
    pred = Predictor.load(path)
    assert pred.op.name == "street" and pred.labels([0.85, 0.96, 0.5]) == ["unsure", "mask", "no_mask"]
    assert pred.labels([0.85], threshold=0.5) == ["mask"]  # a plain threshold: no band
    crops = Predictor.load(path, operating_point="crops")
    assert crops.threshold == 0.5 and crops.labels([0.85]) == ["mask"]
    with pytest.raises(ValueError, match="no operating point 'door'.*street, crops"):
        Predictor.load(path, operating_point="door")
    set_threshold(path, 0.7, "picked on the Evaluate page")
    assert Predictor.load(path).op.name == "saved" and Predictor.load(path).threshold == 0.7


def test_an_unsure_frame_is_no_vote_in_a_track():
    band = (0.4, 0.6)
    votes = {}
    for b in (None, band):
        tr = Tracker(0.5, min_hits=1, band=b)
        seen = []
        for k, p in enumerate([0.9, 0.55, 0.55, 0.55, 0.55]):
            seen = tr.update(k * 0.1, [(10, 10, 50, 50, 0.9)], [p])
        votes[b] = tr.tracks()[0]
        if b:
            assert seen[0].p_frame == 0.55 and tr._own(0.55, 0.5) == "unsure"
    assert votes[band].label == "mask" and votes[band].agree == 1.0  # only the confident frame voted
    assert votes[None].p_mask < votes[band].p_mask


@pytest.mark.slow  # trains an epoch
def test_threshold_cli_picks_the_capped_point_on_validation_and_saves_it(tmp_path, demo_dir):
    from maskrec.cli.main import main
    run = tmp_path / "run"
    assert main(["train", "--net", "net1", "--data", str(demo_dir), "--epochs", "1", "--batch-size", "128",
                 "--val-fraction", "0.3", "--out", str(run)]) == 0
    ck = run / "best.pt"
    assert main(["threshold", str(ck), "--data", str(demo_dir), "--split", "val", "--max-bare-mask", "0.05",
                 "--unsure", "0.05", "--name", "street", "--json"]) == 0
    saved = checkpoint.load(ck)
    op = saved["operating_points"]["street"]
    assert saved["operating_point"] == "street" and op["band"] and op["band"][0] < op["threshold"] < op["band"][1]
    assert op["picked_on"]["bare_as_mask"]["rate"] <= 0.05 and len(op["picked_on"]["bare_as_mask"]["ci95"]) == 2
    assert main(["threshold", str(ck), "--data", str(demo_dir), "--cost", "x,1"]) == 2
    assert main(["threshold", str(ck), "--data", str(demo_dir), "--unsure", "0.7"]) == 2
