"""maskrec.data.health: a flagged near duplicate is a real copy, never a look-alike.

Two kinds of data: the generated demo sets, where every image is drawn on its own (so any flagged
pair is a false alarm), and facemask-dev, whose SOURCE.md says which pairs its build joined as
near duplicates and that no such group crosses the train/test split.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskrec.data import discover
from maskrec.data.health import duplicates
from maskrec.data.synth import ensure_demo_data


def assert_no_pairs(report: dict) -> None:
    shown = report["pairs"][:5]
    assert report["near_pairs"] == 0 and report["exact_extra_copies"] == 0, shown
    assert report["leaks"] == [] and report["label_conflicts"] == [], shown


def test_no_pairs_on_the_small_demo_set(demo_dir):
    assert_no_pairs(duplicates(discover(demo_dir)))


@pytest.mark.slow  # measured seconds; `pytest -m "not slow"` leaves it to CI
def test_no_pairs_on_the_apps_default_demo_set():
    # The app's own demo set (n=2000, seed 0): the 8x8 aHash rule reported 16 near pairs here,
    # 3 of them train/test leaks and 6 with conflicting labels, all between different cartoons.
    assert_no_pairs(duplicates(discover(ensure_demo_data())))


def _set_with_copies(demo_dir: Path, root: Path) -> list[set[str]]:
    """40 demo images in root/train and a resized, re-encoded copy of 3 of them in root/test (the
    third with the wrong label); returns the expected pairs of file names."""
    originals = sorted((demo_dir / "train").glob("*.jpg"))[:40]
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for p in originals:
        shutil.copy(p, root / "train" / p.name)
    expected = []
    for k, p in enumerate(originals[:3]):
        label = int(p.stem[-1]) if k < 2 else 1 - int(p.stem[-1])
        name = f"{900000 + k}_{label}.jpg"
        with Image.open(p) as img:  # 3/4 size, JPEG quality 60: a typical re-upload
            img.resize((round(img.width * 0.75), round(img.height * 0.75)), Image.LANCZOS).save(
                root / "test" / name, quality=60)
        expected.append({p.name, name})
    return expected


def test_a_resized_reencoded_copy_across_the_split_is_a_leak(demo_dir, tmp_path):
    expected = _set_with_copies(demo_dir, tmp_path)
    report = duplicates(discover(tmp_path))
    names = lambda rows: [{Path(r["a"]).name, Path(r["b"]).name} for r in rows]  # noqa: E731
    assert report["near_pairs"] == 3 and report["exact_extra_copies"] == 0
    assert sorted(names(report["leaks"]), key=sorted) == sorted(expected, key=sorted)
    assert names(report["label_conflicts"]) == [expected[2]]


def test_dataset_page_shows_the_leaks_with_their_distances(demo_dir, tmp_path, monkeypatch):
    # The demo sets have no pairs any more, so this is what draws the page's pair captions.
    from streamlit.testing.v1 import AppTest
    from tests.conftest import REPO
    data = tmp_path / "data" / "leaky"
    _set_with_copies(demo_dir, data)
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setenv("MASKREC_DEMO_N", "240")
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "pages" / "1_Dataset.py"), default_timeout=120)
    at.run()
    at.sidebar.radio(key="dataset_source").set_value("Folder on the server").run()
    at.sidebar.text_input(key="dataset_folder").input(str(data)).run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Pairs leaking train↔test"] == "3"
    assert any("near-)copy on the other side" in e.value for e in at.error)
    assert sum("near duplicate · pHash distance" in c.value for c in at.caption) == 3


def _manifest(root: Path) -> list[dict]:
    with open(root / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _dhash(path: Path) -> np.ndarray:
    # 9x8 difference hash of the stored image, resized with Pillow's BOX filter: that filter gives the
    # manifest's 8x8 aHash bit for bit on 94% of the files (within 2 bits on the rest), so it is
    # taken to be the one the build used.
    with Image.open(path) as img:
        a = np.asarray(img.convert("L").resize((9, 8), Image.BOX), np.int16)
    return (a[:, 1:] > a[:, :-1]).ravel()


def _build_rule_pairs(root: Path, rows: list[dict]) -> set[frozenset[str]]:
    """The pairs facemask-dev's build joined as near duplicates (SOURCE.md, step 5): aHash distance
    <= 4 and dHash distance <= 8, within one group (identity groups also hold different photos of
    one person, which are not duplicates and fail the hash rule)."""
    ahash = np.array([np.unpackbits(np.frombuffer(bytes.fromhex(r["ahash"]), np.uint8)) for r in rows], np.int32)
    dhash = np.array([_dhash(root / r["file"]) for r in rows], np.int32)
    by_group: dict[str, list[int]] = {}
    for k, r in enumerate(rows):
        by_group.setdefault(r["group"], []).append(k)
    out = set()
    for members in by_group.values():
        for x, i in enumerate(members):
            for j in members[x + 1:]:
                if (ahash[i] != ahash[j]).sum() <= 4 and (dhash[i] != dhash[j]).sum() <= 8:
                    out.add(frozenset((rows[i]["file"], rows[j]["file"])))
    return out


@pytest.mark.slow  # measured seconds; `pytest -m "not slow"` leaves it to CI
def test_dev_set_near_pairs_are_real_and_most_are_found(dev_data):
    rows = _manifest(dev_data)
    group = {r["file"]: r["group"] for r in rows}
    ds = discover(dev_data)
    report = duplicates(ds)

    def rel(p: str) -> str:
        return Path(p).relative_to(ds.root).as_posix()

    near = {frozenset((rel(r["a"]), rel(r["b"]))) for r in report["pairs"] if r["kind"] == "near"}
    across = [sorted(p) for p in near if len({group[f] for f in p}) > 1]
    assert across == [], across[:5]
    # No group crosses the split and none mixes labels, so a leak or a conflict would be a false alarm.
    assert report["leaks"] == [] and report["label_conflicts"] == []

    real = _build_rule_pairs(dev_data, rows)
    assert len(real) > 100  # 170 when this was written
    recall = len(real & near) / len(real)
    # Measured 115 / 170 = 0.68. The pairs missed are mostly different photos of one RMFD person
    # (and rotated augmentations), which the coarse 8x8 rule joined and a real copy check should not.
    assert recall >= 0.65, recall


def test_a_voc_folder_is_checked_face_by_face_not_jittered_copy_by_copy(tmp_path):
    """Health reads the dataset's faces, once each: a training face's jittered views (augmentation)
    are neither rows nor near-duplicate pairs of it."""
    from maskrec.data.scenes import JITTER
    from tests.test_scenes import annotated_faces, voc_folder
    src = voc_folder(tmp_path / "photos", n_scenes=6)
    ds = discover(src)
    report = duplicates(ds)
    assert report["n"] == len(annotated_faces(src)) == 18
    assert len(ds.views) == sum(ds.counts()["train"].values()) > 0 and JITTER > 0
    views = {str(v) for _, vs in ds.views for v in vs}
    assert not any(p["a"] in views or p["b"] in views for p in report["pairs"])
