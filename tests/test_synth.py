"""Tests for maskrec.data.synth, the generated demo dataset."""
from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

import pytest
from PIL import Image

from maskrec.config import REPO_ROOT
from maskrec.data import synth

NAME = re.compile(r"^(\d{6})_([01])\.jpg$")


def _beside(folder: Path) -> list[str]:
    """What a generation left in folder, less the builders' lock file (it stays, empty, to be reused)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sample():
    """300 rendered images of seed 0: enough for the distribution checks, under a second or two."""
    return [synth.render(i, 0) for i in range(300)]


def test_render_is_deterministic_and_order_independent():
    later = [synth.render(i, 3) for i in range(6)]
    for i in (5, 2, 0):  # out of order: each image has its own generator
        img, label = synth.render(i, 3)
        assert img.mode == "RGB"
        assert (img.tobytes(), label, img.size) == (later[i][0].tobytes(), later[i][1], later[i][0].size)


def test_seed_changes_the_images():
    a = [synth.render(i, 0)[0].tobytes() for i in range(5)]
    b = [synth.render(i, 1)[0].tobytes() for i in range(5)]
    assert all(x != y for x, y in zip(a, b))


def test_generate_is_byte_identical_for_same_seed(tmp_path):
    synth.generate(tmp_path / "a", n=12, seed=5)
    synth.generate(tmp_path / "b", n=12, seed=5)
    synth.generate(tmp_path / "c", n=12, seed=6)
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert a == b
    jpgs_a = {k: v for k, v in a.items() if k.endswith(".jpg")}
    jpgs_c = {k: v for k, v in c.items() if k.endswith(".jpg")}
    assert jpgs_a.keys() != jpgs_c.keys() or jpgs_a != jpgs_c


def test_generated_file_is_render_saved_at_its_quality(tmp_path):
    synth.generate(tmp_path, n=4, seed=2, test_fraction=0.5)
    img, label = synth.render(3, 2)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=img.info["quality"])
    assert (tmp_path / "test" / f"000003_{label}.jpg").read_bytes() == buf.getvalue()
    assert 40 <= img.info["quality"] <= 95


def test_generate_layout_counts_and_progress(tmp_path):
    calls = []
    counts = synth.generate(tmp_path, n=40, seed=1, test_fraction=0.25,
                            progress=lambda done, total: calls.append((done, total)))
    ids = {}
    for split in ("train", "test"):
        names = sorted(p.name for p in (tmp_path / split).iterdir())
        for name in names:
            m = NAME.match(name)
            assert m, name
            ids[int(m.group(1))] = (split, int(m.group(2)))
        labels = [int(NAME.match(n).group(2)) for n in names]
        assert counts[split] == {0: labels.count(0), 1: labels.count(1)}
    assert sorted(ids) == list(range(40))
    assert {i for i, (split, _) in ids.items() if split == "test"} == set(range(30, 40))
    assert counts["n"] == 40 and counts["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SOURCE.md", "test", "train"]  # no temp files left
    source = (tmp_path / "SOURCE.md").read_text()
    assert "generated MaskRec demo set" in source
    assert re.search(r"^- n: 40$", source, re.M) and re.search(r"^- seed: 1$", source, re.M)
    assert calls[-1] == (40, 40)
    assert all(b[0] - a[0] <= 100 for a, b in zip([(0, 40)] + calls, calls))
    for p in (tmp_path / "train").iterdir():
        with Image.open(p) as im:
            assert im.format == "JPEG" and im.mode == "RGB"


def test_labels_balanced_and_present_in_both_splits(sample, tmp_path):
    share = sum(label for _, label in sample) / len(sample)
    assert 0.42 <= share <= 0.62
    counts = synth.generate(tmp_path, n=80, seed=0)
    for split in ("train", "test"):
        assert counts[split][0] >= 3 and counts[split][1] >= 3


def test_label_matches_what_was_drawn(sample):
    # Label 1 always gets a cover; label 0 never does (hard negatives are "near=").
    for img, label in sample:
        assert ("cover=" in img.info["parts"]) == bool(label), img.info["parts"]
    parts = " ".join(img.info["parts"] for img, _ in sample)
    for kind in synth.COVERS:
        assert f"cover={kind}" in parts
    for kind in ("mask_on_chin", "neck_scarf", "beard"):
        assert kind in parts


def test_size_distribution(sample):
    sides = [s for img, _ in sample for s in img.size]
    ratios = [img.width / img.height for img, _ in sample]
    assert max(sides) <= 256 and min(sides) >= 16
    assert sum(s >= 32 for s in sides) / len(sides) >= 0.9
    assert 0.3 <= sum(s < 128 for s in sides) / len(sides) <= 0.75
    assert sum(s >= 200 for s in sides) >= 10
    assert min(ratios) < 0.85 and max(ratios) > 1.15
    assert all(0.7 <= r <= 1.4 for r in ratios)
    assert len({img.size for img, _ in sample}) > 150


def test_ensure_demo_data_generates_once_and_reuses(tmp_path):
    root = tmp_path / "demo"
    calls = []
    assert synth.ensure_demo_data(root, n=16, seed=0, progress=lambda d, t: calls.append((d, t))) == root
    assert calls[-1] == (16, 16)
    assert len(list(root.rglob("*.jpg"))) == 16
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    calls.clear()
    assert synth.ensure_demo_data(root, n=16, seed=0, progress=lambda d, t: calls.append((d, t))) == root
    assert calls == []
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamp
    # Other parameters replace the set; nothing half-written is left beside it.
    synth.ensure_demo_data(root, n=8, seed=0)
    assert len(list(root.rglob("*.jpg"))) == 8
    assert _beside(tmp_path) == ["demo"]


def test_ensure_demo_data_default_root_uses_maskrec_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREC_HOME", str(tmp_path))
    folder = synth.ensure_demo_data(n=4, seed=0)
    assert folder == tmp_path / "data" / "demo"
    assert (folder / "SOURCE.md").is_file()
    monkeypatch.delenv("MASKREC_HOME")
    assert synth.default_root() == REPO_ROOT / "data" / "demo"


def test_interrupted_generation_leaves_nothing(tmp_path):
    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synth.ensure_demo_data(tmp_path / "demo", n=120, seed=0, progress=stop)
    assert _beside(tmp_path) == []


def test_ensure_demo_data_does_not_delete_foreign_folder(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        synth.ensure_demo_data(root, n=4)
    assert (root / "notes.txt").read_text() == "keep me"


def test_no_streamlit_import():
    assert "streamlit" not in Path(synth.__file__).read_text()


def test_ensure_demo_data_clears_what_a_killed_generation_left(tmp_path):
    # Under the builders' lock nobody else is generating, so every partial or moved-aside folder
    # beside it is a killed run's, however fresh.
    left = [tmp_path / ".demo.partial-old", tmp_path / ".demo.partial-new", tmp_path / ".demo.old-x"]
    for p in left:
        p.mkdir()
        (p / "000000_1.jpg").write_bytes(b"half")
    os.utime(left[0], (0, 0))
    synth.ensure_demo_data(tmp_path / "demo", n=4)
    assert _beside(tmp_path) == ["demo"]


def test_two_threads_at_once_generate_the_demo_set_once_and_whole(tmp_path):
    root, start, calls, errors = tmp_path / "demo", threading.Barrier(2), [], []

    def ask():
        try:
            start.wait()
            synth.ensure_demo_data(root, n=24, seed=0, progress=lambda d, t: calls.append(d) if d == t else None)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert calls == [24]  # one generation finished; the other thread took its result
    assert len(list(root.rglob("*.jpg"))) == 24
    assert _beside(tmp_path) == ["demo"]
