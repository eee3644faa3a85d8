"""Masks drawn onto bare faces by their landmarks: where they sit, which label they carry, where they go."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from maskrec.train import masks
from maskrec.config import PRESETS
from maskrec.train.runs import new_run
from maskrec.train.loop import load_data
from maskrec.train import distributed

# A frontal face in a 200x200 image: eyes at y 80, nose tip at y 110, mouth corners at y 130
LM = np.array([[70, 80], [130, 80], [100, 110], [78, 130], [122, 130]], np.float32)
NOSE, MOUTH, FOREHEAD = (100, 108), (100, 131), (100, 40)


def _changed(style, seed=0):
    grey = Image.new("RGB", (200, 200), (128, 128, 128))
    out = np.asarray(masks.draw(grey, LM, style, np.random.default_rng(seed))).astype(int)
    return lambda xy: np.abs(out[xy[1], xy[0]] - 128).sum() > 30


@pytest.mark.parametrize("seed", range(6))  # every shape and colour draw
def test_each_style_covers_what_its_label_says(seed):
    over, below, chin = (_changed(s, seed) for s in ("over-nose", "below-nose", "chin"))
    assert over(NOSE) and over(MOUTH)  # a mask worn properly: label 1
    assert not below(NOSE) and below(MOUTH)  # below the nose, still over the mouth: label 1
    assert not chin(NOSE) and not chin(MOUTH) and chin((100, 170))  # pulled down to the chin: label 0
    assert not any(f(FOREHEAD) for f in (over, below, chin))
    assert masks.STYLES["over-nose"][0] == masks.STYLES["below-nose"][0] == 1 and masks.STYLES["chin"][0] == 0


def test_a_tilted_face_gets_a_tilted_mask():
    turn = np.deg2rad(30)
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    lm = (LM - 100) @ rot.T + 100
    poly, _ = masks.polygon(lm, "over-nose", "surgical", np.random.default_rng(0))
    upright, _ = masks.polygon(LM, "over-nose", "surgical", np.random.default_rng(0))
    assert np.allclose((np.array(upright) - 100) @ rot.T + 100, poly, atol=1e-3)


def _fake_landmarks(monkeypatch):
    monkeypatch.setattr(masks, "landmarks_of", lambda paths, progress=None: {
        p: LM * (Image.open(p).width / 200) for p in paths})


def test_synthesize_labels_by_style_and_is_seeded(tmp_path, monkeypatch):
    _fake_landmarks(monkeypatch)
    paths = []
    for i in range(40):
        p = tmp_path / f"{i:03d}_0.png"
        Image.new("RGB", (200, 200), (100 + i, 120, 140)).save(p)
        paths.append(str(p))
    X, y, styles = masks.synthesize(paths, 32, share=1.0, seed=3)
    assert X.shape == (40, 3, 32, 32) and X.dtype == np.uint8
    assert [masks.STYLES[s][0] for s in styles] == y.tolist()
    assert set(styles) == set(masks.STYLES)
    X2, y2, _ = masks.synthesize(paths, 32, share=1.0, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert 5 < len(masks.synthesize(paths, 32, share=0.5, seed=3)[1]) < 35


def test_drawn_masks_join_the_train_split_only(demo_dir, tmp_path, monkeypatch):
    _fake_landmarks(monkeypatch)
    cfg = replace(PRESETS["net1"], data=str(demo_dir), val_fraction=0.2, epochs=1)
    plain = load_data(cfg, new_run(cfg, run_dir=tmp_path / "a"), distributed.SINGLE, lambda p: None)
    drawn_cfg = replace(cfg, drawn_masks=1.0)
    drawn = load_data(drawn_cfg, new_run(drawn_cfg, run_dir=tmp_path / "b"), distributed.SINGLE, lambda p: None)
    n_bare = int((plain.ytr == 0).sum())
    assert len(drawn.Xtr) == len(plain.Xtr) + n_bare  # one masked copy of each bare train face
    assert drawn.views.faces.shape[0] == len(drawn.Xtr)
    assert np.array_equal(drawn.Xva.numpy(), plain.Xva.numpy()) and np.array_equal(drawn.Xte.numpy(), plain.Xte.numpy())
    assert int((drawn.ytr == 1).sum()) > int((plain.ytr == 1).sum())


@pytest.mark.slow
def test_retinaface_finds_the_landmarks_of_real_bare_faces(dev_data):
    paths = sorted(str(p) for p in (dev_data / "train").glob("*_0.jpg"))[:40]
    found = masks.landmarks_of(paths)
    ok = [lm for lm in found.values() if lm is not None]
    assert len(ok) >= 36
    for lm in ok:  # eyes above the nose above the mouth, the right eye right of the left
        assert lm[:2, 1].mean() < lm[2, 1] < lm[3:, 1].mean() and lm[1, 0] > lm[0, 0]
    assert masks.landmarks_of(paths) .keys() == found.keys()  # the second call reads the cache
