"""The validation split carved from training data: stratified, seeded, by group, reproducible."""
from __future__ import annotations

import numpy as np

from maskrec.data.validation import carve, group_of


def _scene_paths(tmp_path, scenes=20, faces=3, copies=3):
    root = tmp_path / "cache" / "scene-crops" / "k" / "train"
    paths, labels = [], []
    for s in range(scenes):
        for f in range(faces):
            for c in range(copies):
                lab = (s + f) % 2
                paths.append(str(root / f"scene{s:03d}-{f:03d}{'' if c == 0 else f'j{c}'}_{lab}.jpg"))
                labels.append(lab)
    return paths, np.array(labels)


def test_scene_crops_are_grouped_by_scene_and_never_split(tmp_path):
    paths, y = _scene_paths(tmp_path)
    assert group_of(paths[0]) == group_of(paths[8]) != group_of(paths[9])
    tr, va = carve(paths, y, 0.25)
    scene = lambda i: paths[i].rsplit("/", 1)[1].rsplit("-", 1)[0]
    assert {scene(i) for i in tr}.isdisjoint({scene(i) for i in va})
    assert len(tr) + len(va) == len(paths) and len(va) > 0


def test_a_manifest_groups_its_files(tmp_path):
    (tmp_path / "train").mkdir()
    rows = ["file,label,group"] + [f"train/{i:03d}_{i % 2}.jpg,{i % 2},{i // 4}" for i in range(80)]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    paths = [str(tmp_path / "train" / f"{i:03d}_{i % 2}.jpg") for i in range(80)]
    y = np.array([i % 2 for i in range(80)])
    assert group_of(paths[0]) == group_of(paths[3]) != group_of(paths[4])
    tr, va = carve(paths, y, 0.2)
    assert {i // 4 for i in tr}.isdisjoint({i // 4 for i in va})


def test_stratified_seeded_and_the_same_every_call(tmp_path):
    paths = [str(tmp_path / f"{i:04d}_{int(i < 300)}.jpg") for i in range(1000)]
    y = np.array([int(i < 300) for i in range(1000)])
    tr, va = carve(paths, y, 0.15)
    assert len(va) == 150 and y[va].sum() == 45  # 15% of each label
    assert np.array_equal(va, carve(paths, y, 0.15)[1])
    assert not np.array_equal(va, carve(paths, y, 0.15, seed=1)[1])
    assert len(carve(paths, y, 0.0)[1]) == 0
