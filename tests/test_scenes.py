"""A folder of VOC-annotated photos is a dataset of face crops, split by scene."""
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskrec.config import REPO_ROOT
from maskrec.data import scenes
from maskrec.data import decode_all, discover, load_split, scan
from maskrec.faces import MARGIN, crop_box, load_voc
from tests.conftest import SCENES

NAMES = {1: "with_mask", 0: "without_mask"}


def voc_folder(root: Path, n_scenes: int = 12, per_scene: int = 3, seed: int = 0) -> Path:
    """Scenes of demo faces pasted on a grey background, with their VOC annotations."""
    from maskrec.data.synth import render
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    k = 0
    for s in range(n_scenes):
        scene = Image.new("RGB", (400, 200), (120, 120, 120))
        objs = []
        for j in range(per_scene):
            face, label = render(k, seed=seed)
            k += 1
            side = int(rng.integers(40, 90))
            x0, y0 = 10 + j * 130, int(rng.integers(0, 200 - side))
            scene.paste(face.convert("RGB").resize((side, side)), (x0, y0))
            objs.append(f"<object><name>{NAMES[label]}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                        f"<xmax>{x0 + side}</xmax><ymax>{y0 + side}</ymax></bndbox></object>")
        objs.append("<object><name>helmet</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>30</xmax>"
                    "<ymax>30</ymax></bndbox></object>")  # a label we do not know: left out, counted
        scene.save(root / "images" / f"scene{s:02d}.jpg", quality=95)
        (root / "annotations" / f"scene{s:02d}.xml").write_text(f"<annotation>{''.join(objs)}</annotation>")
    return root


def test_a_voc_folder_is_a_crop_dataset_split_by_scene(tmp_path):
    src = voc_folder(tmp_path / "photos")
    ds = discover(src)
    assert ds.layout == "voc-scenes"
    info = json.loads((ds.root / "crops.json").read_text())
    assert info["scenes"] == {"train": 9, "val": 0, "test": 3} and info["left_out"] == {"label 'helmet'": 12}
    scene_of = lambda it: it.path.name.split("-")[0]  # noqa: E731
    train = {scene_of(it) for it in ds.items if it.split == "train"}
    test = {scene_of(it) for it in ds.items if it.split == "test"}
    assert test == set(info["test_scenes"]) and not train & test  # every face of a scene on one side
    c = ds.counts()
    assert sum(c["test"].values()) == 3 * 3  # one plain crop per test face
    assert sum(c["train"].values()) == 9 * 3  # and per training face: its jittered views are not items
    # labels follow the annotation, and a test crop is the box grown by the Recognizer's margin
    it = sorted(i for i in ds.items if i.split == "test")[0]
    name, j = it.path.stem.split("_")[0].split("-")
    truth = load_voc(src / "annotations" / f"{name}.xml")[int(j)]
    assert it.label == {"with_mask": 1, "without_mask": 0}[truth.label]
    x0, y0, x1, y1 = crop_box((truth.x0, truth.y0, truth.x1, truth.y1), (200, 400), MARGIN)
    assert Image.open(it.path).size == (x1 - x0, y1 - y0)
    X, y, _ = load_split(ds, "train", 32)
    assert X.shape[0] == len(y) == sum(c["train"].values())


def annotated_faces(src: Path) -> set[tuple[str, int, int]]:
    """(scene, k, label) of every annotated box of a known label and at least scenes.MIN_SIDE px."""
    from maskrec.faces import COVERED
    return {(xml.stem, k, COVERED[t.label]) for xml in (src / "annotations").glob("*.xml")
            for k, t in enumerate(load_voc(xml))
            if t.label in COVERED and min(t.x1 - t.x0, t.y1 - t.y0) >= scenes.MIN_SIDE}


def named(path) -> tuple[str, int, int]:
    """(scene, k, label) read back from a crop's name, <scene>-<k>[jN]_<label>.jpg."""
    m = re.fullmatch(r"(?P<scene>.+)-(?P<k>\d+)(?:j\d+)?_(?P<label>[01])", Path(path).stem)
    assert m, path
    return m["scene"], int(m["k"]), int(m["label"])


def test_a_scan_counts_each_annotated_face_once_and_jitter_is_views_of_train_faces(tmp_path):
    """The explorer shows what is in the folder (issue 18, item 6: 3,093 boxes once scanned as 6,629
    faces); the jittered framings reach training only, as views of their face."""
    import torch
    src = voc_folder(tmp_path / "photos", n_scenes=8)
    faces = annotated_faces(src)
    assert len(faces) == 8 * 3
    ds = discover(src)
    info = scan(ds)
    assert info["summary"]["total"] == len(info["images"]) == len(faces)  # each face once, no jitter
    assert {named(r["path"]) for r in info["images"]} == faces
    assert sum(n for split in info["summary"]["counts"].values() for n in split.values()) == len(faces)
    assert info["summary"]["training_views"] == scenes.JITTER * sum(ds.counts()["train"].values())

    dec = decode_all(ds, 32)
    Xtr, _, train_paths = dec.split("train")
    _, _, test_paths = dec.split("test")
    assert len(dec.X) == len(faces)  # what data health reads: the faces only
    views = dec.train_views()
    assert views.faces.shape == Xtr.shape and views.n_views == 1 + scenes.JITTER
    assert (views.index[:, 0] == -1).all() and (views.index[:, 1:] >= 0).all()  # every train face: itself + JITTER
    assert len(views.extra) == scenes.JITTER * len(Xtr)
    of = ds.views_of()
    assert set(of) == {Path(p) for p in train_paths} and not set(of) & {Path(p) for p in test_paths}
    for p, vs in of.items():  # a view is named after its face (same scene, same k, same label)
        assert [named(v) for v in vs] == [named(p)] * scenes.JITTER and all(v.parent.name == "views" for v in vs)
    # a view is the jittered framing cut from the photo: like its face, not the same pixels
    assert not torch.equal(views.extra[views.index[0, 1]], Xtr[0])

    drawn = views.draw(torch.Generator().manual_seed(0))
    assert drawn.shape == Xtr.shape
    choices = torch.stack([views.faces, *(views.extra[views.index[:, v]] for v in range(1, views.n_views))], 1)
    same = (drawn[:, None] == choices).flatten(2).all(2)  # (N, V): which framing each row is
    assert same.any(1).all()  # every row is its face or one of that face's views
    assert same[:, 1:].any(1).sum() > len(Xtr) / 3  # about 2/3 drawn jittered
    kept = views.take(torch.arange(5))  # what a validation carve leaves
    assert kept.faces.shape[0] == kept.index.shape[0] == 5 and torch.equal(kept.faces, Xtr[:5])


def test_crops_are_cut_once_and_again_when_the_scenes_change(tmp_path):
    src = voc_folder(tmp_path / "photos", n_scenes=4)
    first = discover(src).root
    stamp = (first / "crops.json").stat().st_mtime_ns
    assert discover(src).root == first and (first / "crops.json").stat().st_mtime_ns == stamp
    xml = src / "annotations" / "scene00.xml"
    xml.write_text(xml.read_text().replace("<name>with_mask<", "<name>without_mask<", 1))  # relabel one face
    assert discover(src).root != first


def _crops_on_disk(root: Path) -> dict[str, int]:
    return {part: sum(1 for _ in (root / part).glob("*.jpg")) for part in ("train", "test", "views")}


def test_two_trainings_asking_for_the_crops_at_once_cut_them_once_and_whole(tmp_path, monkeypatch):
    """Two trainings started together on a fresh machine once cut into one shared temp folder: each
    deleted half of the other's crops, and both trained on 312 of 574 scene faces. Now the second
    waits for the first and takes its folder whole."""
    import threading
    src = voc_folder(tmp_path / "photos", n_scenes=6)
    real_cut, cuts = scenes._cut, []
    monkeypatch.setattr(scenes, "_cut", lambda *a: (cuts.append(threading.get_ident()), real_cut(*a)))
    start, got, errors = threading.Barrier(2), [], []

    def ask():
        try:
            start.wait()
            got.append(scenes.crops(src))
        except Exception as e:  # reported below, not lost in the thread
            errors.append(e)
    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 2 and got[0] == got[1]
    assert len(cuts) == 1  # the second found the first's folder under the lock
    info = json.loads((got[0] / "crops.json").read_text())
    assert _crops_on_disk(got[0]) == {"train": sum(info["crops"]["train"].values()),
                                      "test": sum(info["crops"]["test"].values()), "views": info["n_views"]}
    assert not list(got[0].parent.glob(".*.partial-*"))  # nothing half-built left beside it


def test_a_crop_folder_missing_files_is_cut_again_and_a_killed_cut_leaves_nothing_behind(tmp_path):
    src = voc_folder(tmp_path / "photos", n_scenes=4)
    root = scenes.crops(src)
    whole = _crops_on_disk(root)
    victim = sorted((root / "train").glob("*.jpg"))[0]
    victim.unlink()  # what the race above left: crops.json complete, crops missing
    stale = root.parent / f".{root.name}.partial-killed"  # a cut killed part-way, by name as building() makes it
    (stale / "train").mkdir(parents=True)
    assert scenes.crops(src) == root and victim.is_file() and _crops_on_disk(root) == whole
    assert not stale.exists()


def test_voc_lists_decide_the_split_and_datasets_combine(tmp_path, demo_dir):
    src = voc_folder(tmp_path / "photos", n_scenes=6)
    (src / "ImageSets" / "Main").mkdir(parents=True)
    (src / "ImageSets" / "Main" / "train.txt").write_text("scene00\nscene01\nscene02\nscene03\n")
    (src / "ImageSets" / "Main" / "val.txt").write_text("scene05\n")  # val counts as test; scene04 unlisted
    ds = discover(src)
    names = {(it.split, it.path.name.split("-")[0]) for it in ds.items}
    assert {n for s, n in names if s == "test"} == {"scene05"}
    assert {n for s, n in names if s == "train"} == {"scene00", "scene01", "scene02", "scene03"}
    both = discover(f"{demo_dir}:{src}")
    assert both.layout == "report+voc-scenes"
    assert len(both.items) == len(discover(demo_dir).items) + len(ds.items)
    assert both.counts()["test"][1] == discover(demo_dir).counts()["test"][1] + ds.counts()["test"][1]


def test_a_combination_given_by_relative_paths_decodes(tmp_path, demo_dir, monkeypatch):
    """`--data ../a:/abs/b` as typed on a command line: the parts' relative and absolute paths must
    not break the cache key (they once did: Path.relative_to refused the mix)."""
    from maskrec.data import decode_all
    src = voc_folder(tmp_path / "photos", n_scenes=3)
    monkeypatch.chdir(tmp_path)
    both = discover(f"{os.path.relpath(demo_dir, tmp_path)}:{src}")
    dec = decode_all(both, 32)
    assert len(dec.X) == len(both.items) - len(dec.dataset.skipped) > 0
    assert both.fingerprint() == discover(f"{demo_dir}:{src}").fingerprint()


def test_a_voc_folder_without_a_usable_face_is_a_clear_error(tmp_path):
    from maskrec.data import DataError
    src = voc_folder(tmp_path / "photos", n_scenes=2)
    for xml in (src / "annotations").glob("*.xml"):
        xml.write_text("<annotation><object><name>helmet</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                       "<xmax>40</xmax><ymax>40</ymax></bndbox></object></annotation>")
    with pytest.raises(DataError, match="no face box of a known label"):
        discover(src)


@pytest.mark.slow  # cuts every face of the 200 dev scenes
def test_dev_scenes_become_crops_of_every_labelled_face(tmp_path):
    if not (SCENES / "annotations").is_dir():
        pytest.skip(f"dev scenes not found at {SCENES} (they live in ../shared, present in CI)")
    ds = discover(SCENES)
    info = json.loads((ds.root / "crops.json").read_text())
    assert info["scenes"] == {"train": 150, "val": 0, "test": 50}  # the declared split: dev's as before
    assert info["val_scenes"] == []  # declared (so validation.carve draws none of them), none for validation
    faces = sum(len(load_voc(x)) for x in (SCENES / "annotations").glob("*.xml"))
    kept_test = sum(ds.counts()["test"].values())
    kept_train = sum(ds.counts()["train"].values())
    assert kept_test + kept_train + sum(info["left_out"].values()) == faces == 979
    assert scan(ds)["summary"]["total"] == kept_test + kept_train == 751  # the faces of >= 12 px, once each
    assert info["n_views"] == scenes.JITTER * kept_train  # the jittered views, for training only
    assert set(info["left_out"]) == {f"face under {scenes.MIN_SIDE} px"}
    from maskrec.faces import PHOTO_DEFAULT
    assert info["train_boxes_from"] == PHOTO_DEFAULT  # training crops framed as the Recognize page frames them
    assert info["train_faces_boxed_by_detector"] >= 0.8 * kept_train


@pytest.mark.slow  # measured seconds; `pytest -m "not slow"` leaves it to CI
def test_the_dataset_page_explores_annotated_photos_and_joined_folders(tmp_path, demo_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO
    src = voc_folder(tmp_path / "photos", n_scenes=4)
    monkeypatch.setenv("MASKREC_DATA_ROOTS", f"{tmp_path}:{demo_dir.parent}")
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "pages" / "1_Dataset.py"), default_timeout=120)
    at.run()
    at.sidebar.radio(key="dataset_source").set_value("Folder on the server").run()
    at.sidebar.text_input(key="dataset_folder").input(str(src)).run()
    assert not at.exception, at.exception
    assert any("layout: **voc-scenes**" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["Images"] == str(len(discover(src).items))
    at.sidebar.text_input(key="dataset_folder").input(f"{demo_dir}:{src}").run()
    assert not at.exception, at.exception
    assert any("layout: **report+voc-scenes**" in c.value for c in at.caption)
    assert {m.label: m.value for m in at.metric}["Images"] == str(len(discover(demo_dir).items) + len(discover(src).items))


def test_training_crops_take_the_detectors_box_for_each_annotated_face():
    from maskrec.faces import Box, Truth

    class Stub:
        def detect(self, rgb):
            return [Box(12, 10, 48, 52, 0.9),   # face 0, shifted: IoU ~0.6
                    Box(14, 12, 46, 50, 0.8),   # face 0 again: one detection per face
                    Box(200, 0, 230, 30, 0.9)]  # nobody there
    truths = [Truth(10, 10, 50, 50, "with_mask"), Truth(100, 100, 140, 140, "without_mask")]
    boxes = scenes._detected_boxes(Stub(), np.zeros((240, 320, 3), np.uint8), truths)
    assert boxes[0] == (12, 10, 48, 52)  # the best-scored detection on face 0 frames it
    assert boxes[1] == (100, 100, 140, 140)  # missed by the detector: its annotated box
    assert scenes._detected_boxes(None, np.zeros((240, 320, 3), np.uint8), truths) == [t[:4] for t in truths]


def test_training_crops_pair_boxes_by_the_scoring_rule():
    """faces.matched_pairs, as scoring pairs them: the better-scored detection takes the face, though a
    weaker one overlaps it more (the rule before this one took the best overlap first)."""
    from maskrec.faces import Box, Truth, iou_matrix

    dets = [Box(10, 10, 50, 50, 0.6),   # face 0 exactly, scored lower
            Box(16, 10, 56, 50, 0.9)]   # face 0 shifted, scored higher
    truths = [Truth(10, 10, 50, 50, "with_mask")]
    iou = iou_matrix(dets, truths)[:, 0]
    assert iou[0] == 1.0 and 0.4 <= iou[1] < iou[0]

    class Stub:
        def detect(self, rgb):
            return dets
    assert scenes._detected_boxes(Stub(), np.zeros((240, 320, 3), np.uint8), truths) == [(16, 10, 56, 50)]


def _declare(monkeypatch, tmp_path, split: dict[str, str]) -> None:
    f = tmp_path / "scene_split.json"
    f.write_text(json.dumps({"scenes": split}))
    monkeypatch.setattr(scenes, "DECLARED_SPLIT", f)


def test_the_declared_split_puts_validation_scenes_in_train_without_views_and_carve_takes_them(tmp_path, monkeypatch):
    from maskrec.data.validation import carve
    src = voc_folder(tmp_path / "photos", n_scenes=8)
    split = {f"scene{s:02d}": ("val" if s in (1, 4) else "test" if s == 6 else "train") for s in range(8)}
    _declare(monkeypatch, tmp_path, split)
    ds = discover(src)
    info = json.loads((ds.root / "crops.json").read_text())
    assert info["scenes"] == {"train": 5, "val": 2, "test": 1}
    assert info["val_scenes"] == ["scene01", "scene04"] and info["test_scenes"] == ["scene06"]
    scene_of = lambda p: Path(p).name.split("-")[0]  # noqa: E731
    assert {scene_of(it.path) for it in ds.items if it.split == "test"} == {"scene06"}
    train = [it for it in ds.items if it.split == "train"]
    assert {scene_of(it.path) for it in train} == {f"scene{s:02d}" for s in range(8)} - {"scene06"}
    # validation faces are not trained on, so they get no jittered views
    viewed = {scene_of(p) for p, _ in ds.views}
    assert viewed and not viewed & {"scene01", "scene04"}
    paths, y = [str(it.path) for it in train], np.array([it.label for it in train])
    for fraction in (0.15, 0.5):  # whatever the share asked for, validation is the declared scenes
        tr, va = carve(paths, y, fraction)
        assert {scene_of(paths[i]) for i in va} == {"scene01", "scene04"}
        assert len(va) == 6 and len(tr) == len(paths) - 6


def test_a_folder_the_declared_split_does_not_name_whole_falls_back_to_the_seeded_quarter(tmp_path, monkeypatch):
    from maskrec.data.validation import carve
    src = voc_folder(tmp_path / "photos", n_scenes=8)
    _declare(monkeypatch, tmp_path, {"scene01": "val", "scene02": "train"})  # not every scene named
    ds = discover(src)
    info = json.loads((ds.root / "crops.json").read_text())
    assert info["scenes"] == {"train": 6, "val": 0, "test": 2} and "val_scenes" not in info
    train = [it for it in ds.items if it.split == "train"]
    paths, y = [str(it.path) for it in train], np.array([it.label for it in train])
    assert len(carve(paths, y, 0.0)[1]) == 0 and len(carve(paths, y, 0.3)[1]) > 0  # drawn by the share


def test_the_shipped_declared_split_is_the_rule_applied_to_the_853_scenes():
    from maskrec.config import MORE_SCENES
    if not (SCENES / "annotations").is_dir() or not (MORE_SCENES / "annotations").is_dir():
        pytest.skip(f"the scenes are not at {SCENES} and {MORE_SCENES} (they live in ../shared, present in CI)")
    import sys
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    from declare_scene_split import bare, declare
    from maskrec.faces import scenes as pairs
    split = scenes.declared()
    assert split == declare(SCENES, MORE_SCENES) and len(split) == 853  # the file is what the rule gives
    xml = {img.stem: x for img, x in pairs(SCENES) + pairs(MORE_SCENES)}
    for part in ("val", "test"):  # each resolves a 3% rate: >= 150 bare faces
        assert sum(bare(xml[n]) for n, v in split.items() if v == part) >= 150
    dev = {img.stem for img, _ in pairs(SCENES)}
    # dev's held-out quarter is still held out, and none of dev's scenes is validation
    assert {n for n in dev if split[n] == "test"} == {n for n, v in scenes.split_scenes(sorted(dev)).items() if v == "test"}
    assert not any(split[n] == "val" for n in dev)


def test_scene_repeats_draw_each_scene_face_that_many_times_and_web_crops_once(tmp_path, demo_dir):
    from dataclasses import replace

    from maskrec.config import PRESETS
    from maskrec.data.scenes import is_scene_face
    from maskrec.train import distributed
    from maskrec.train.splits import load_data
    src = voc_folder(tmp_path / "photos", n_scenes=6)
    cfg = replace(PRESETS["net1"], data=f"{demo_dir}:{src}")
    once = load_data(cfg, None, distributed.SINGLE, lambda p: None)
    thrice = load_data(replace(cfg, scene_repeats=3), None, distributed.SINGLE, lambda p: None)
    n_scene = sum(map(is_scene_face, (it.path for it in once.ds.items if it.split == "train")))
    assert n_scene > 0 and len(once.Xtr) > n_scene  # both kinds train
    assert len(thrice.Xtr) == len(once.Xtr) + 2 * n_scene
    assert torch.equal(thrice.Xtr[:len(once.Xtr)], once.Xtr) and torch.equal(thrice.ytr[:len(once.ytr)], once.ytr)
    # every added row is one of the scene faces again, with its own framings to draw from
    extra = thrice.Xtr[len(once.Xtr):]
    first = {bytes(x.numpy().tobytes()) for x in once.Xtr}
    assert all(bytes(x.numpy().tobytes()) in first for x in extra)
    assert thrice.views.index.shape[0] == len(thrice.Xtr)
    assert (thrice.views.index[len(once.Xtr):, 1:] >= 0).any()  # scene faces' jittered views come along
    assert torch.equal(once.Xte, thrice.Xte)  # the test split is untouched
