"""Issue 34's judge on the shipped checkpoints: the whole pipeline (the photo detector, each file at
its default operating point) on the declared scene test split (281 scenes of facemask-scenes-dev +
facemask-scenes-more that no shipped checkpoint trained on or was tuned on). Floors a little under
what was measured (checkpoints/README.md, bench/street.py); each rate rests on ~150 bare and ~800
covered faces found, so one face moves the bare rate by ~0.7 points."""
from __future__ import annotations

import pytest

from maskrec import faces
from maskrec.config import DEV_SCENES, MORE_SCENES
from maskrec.infer.predictor import Predictor
from tests.conftest import REPO

# measured on 2026-12-07 (bench/street.py --part test; checkpoints/README.md), all sizes:
# net1.pt bare 0/155, masked called mask 736/807 = 0.912, unsure 0.048, accuracy 0.968;
# net2.pt (the default recogniser) bare 2/155 = 0.013, masked 757/807 = 0.938, unsure 0.047, accuracy 0.980.
# The bare floor is the goal itself (3%: four faces of 155); the others sit a few faces under the measure.
FLOORS = {
    "net1": {"bare_as_mask": 0.03, "masked_as_mask": 0.89, "accuracy": 0.955, "unsure": 0.07},
    "net2": {"bare_as_mask": 0.03, "masked_as_mask": 0.92, "accuracy": 0.97, "unsure": 0.07},
}


@pytest.fixture(scope="module")
def test_scenes():
    if not (DEV_SCENES / "annotations").is_dir() or not (MORE_SCENES / "annotations").is_dir():
        pytest.skip(f"the scenes are not at {DEV_SCENES} and {MORE_SCENES} (they live in ../shared, present in CI)")
    from evaluation.street import declared_pairs, detect_all
    pairs = declared_pairs("test")
    return pairs, detect_all(faces.make_detector(faces.PHOTO_DEFAULT), pairs)


@pytest.mark.slow  # the photo detector on 281 scenes: minutes
@pytest.mark.parametrize("name", list(FLOORS))
def test_shipped_checkpoint_on_the_declared_scene_test_split(name, test_scenes):
    from evaluation.street import judge
    pairs, dets = test_scenes
    pred = Predictor.load(REPO / "checkpoints" / f"{name}.pt", exact=True)
    assert pred.op.name == "street" and pred.op.band  # the default point: picked on the validation scenes
    r = judge(pred, pairs, dets)
    assert r["scenes"] == 281 and r["detection"]["recall"] >= 0.92 and r["detection"]["precision"] >= 0.92, r["detection"]
    s, f = r["by_size"]["all"], FLOORS[name]
    assert s["bare_as_mask"]["n"] >= 150  # enough bare faces found to see a 3% rate
    assert s["bare_as_mask"]["rate"] <= f["bare_as_mask"], s
    assert s["masked_as_mask"]["rate"] >= f["masked_as_mask"], s
    assert s["accuracy"]["rate"] >= f["accuracy"], s
    assert s["unsure"]["rate"] <= f["unsure"], s
