import dataclasses
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from maskrec import data, faces
from maskrec.data import DataError, discover, load_split, network_views, open_rgb, scan, to_input
from tests.conftest import save_image


def make_report_layout(root, n_train=6, n_test=4):
    for i in range(n_train):
        save_image(root / "train" / f"{i:06d}_{i % 2}.jpg")
    for i in range(n_test):
        save_image(root / "test" / f"{100 + i:06d}_{i % 2}.png")
    return root


def test_report_layout(tmp_path):
    ds = discover(make_report_layout(tmp_path / "d"))
    assert ds.layout == "report" and not ds.held_out
    assert ds.counts() == {"train": {0: 3, 1: 3}, "test": {0: 2, 1: 2}}


@pytest.mark.parametrize("pos,neg", [("with_mask", "without_mask"), ("WithMask", "WithoutMask"),
                                     ("mask", "no_mask"), ("1", "0")])
def test_top_level_class_folders_get_a_stratified_seeded_holdout(tmp_path, pos, neg):
    for i in range(20):
        save_image(tmp_path / pos / f"a{i}.jpg")
    for i in range(12):
        save_image(tmp_path / neg / f"b{i}.jpg")
    ds = discover(tmp_path)
    assert ds.layout == "class-folders" and ds.held_out
    assert ds.counts() == {"train": {1: 15, 0: 9}, "test": {1: 5, 0: 3}}
    again = discover(tmp_path)
    assert [it.split for it in ds.items] == [it.split for it in again.items]


def test_class_folders_inside_splits_and_val_counts_as_test(tmp_path):
    for split in ("train", "val"):
        for cls, lab in (("with_mask", 1), ("without_mask", 0)):
            for i in range(3):
                save_image(tmp_path / "wrap" / split / cls / f"{cls}{i}.jpg")
    ds = discover(tmp_path)  # a single wrapper folder is descended into
    assert ds.counts() == {"train": {0: 3, 1: 3}, "test": {0: 3, 1: 3}}


def test_zip_of_a_dataset(tmp_path):
    src = make_report_layout(tmp_path / "src")
    zpath = tmp_path / "data.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in src.rglob("*.*"):
            z.write(f, "mydata/" + str(f.relative_to(src)))
    ds = discover(zpath)
    assert ds.counts()["train"] == {0: 3, 1: 3}


def test_one_zip_uploaded_twice_at_once_is_extracted_once_and_whole(tmp_path, monkeypatch):
    """As with the scene crops (tests/test_scenes.py): two extractions of one zip used to share one
    temp folder and could delete each other's files."""
    import threading
    from maskrec.data import zips
    src = make_report_layout(tmp_path / "src", n_train=20, n_test=10)
    zpath = tmp_path / "data.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in src.rglob("*.*"):
            z.write(f, "mydata/" + str(f.relative_to(src)))
    real, extracted = zips._extract_entry, []
    monkeypatch.setattr(zips, "_extract_entry", lambda zf, info, tmp: (extracted.append(info.filename),
                                                                       real(zf, info, tmp)))
    start, got = threading.Barrier(2), []
    threads = [threading.Thread(target=lambda: (start.wait(), got.append(zips.extract_zip(zpath))))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 2 and got[0] == got[1]
    assert len(extracted) == len(zipfile.ZipFile(zpath).infolist())  # each entry once: one extraction
    assert discover(zpath).counts() == {"train": {0: 10, 1: 10}, "test": {0: 5, 1: 5}}


@pytest.mark.parametrize("name", ["../evil.jpg", "/abs/evil.jpg"])
def test_zip_entries_that_escape_are_refused(tmp_path, name):
    zpath = tmp_path / "bad.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr(name, b"x")
    with pytest.raises(DataError, match="outside the target"):
        discover(zpath)
    assert not (tmp_path / "evil.jpg").exists()


def test_bad_files_are_skipped_with_reasons(salted):
    ds = discover(salted.root)
    info = scan(ds)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in info["summary"]["skipped"]}
    for name, word in salted.bad.items():
        assert word in reasons[name], (name, reasons.get(name))
    # the odd-but-valid formats decode to RGB
    X, y, paths = load_split(info["dataset"], "train", 32)
    names = {os.path.basename(p) for p in paths}
    assert salted.odd <= names
    assert X.shape[1:] == (3, 32, 32) and X.dtype.__str__() == "torch.uint8"
    assert len(X) == len(y) == len(salted.kept)


def test_a_dataset_never_changes_scan_and_decoding_return_new_ones(salted):
    ds = discover(salted.root)
    items, skipped = ds.items, ds.skipped
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.items = ()
    assert not hasattr(ds.skipped, "append")
    scanned = scan(ds)["dataset"]
    decoded = data.decode_all(ds, 32).dataset
    assert (ds.items, ds.skipped) == (items, skipped)  # the one passed in, as it was
    for new in (scanned, decoded):  # the unreadable files moved from items to skipped, with reasons
        names = {it.path.name for it in new.items if it.split == "train"}
        assert names == salted.kept
        assert {os.path.basename(s.path) for s in new.skipped} == set(salted.bad)
    assert decoded.counts() == scanned.counts() == {"train": {0: 6, 1: 6}, "test": {0: 2, 1: 2}}


def test_the_decoded_cache_is_one_file_whose_splits_are_slices_of_it(salted, isolated_home):
    ds = discover(salted.root)
    Xtr, ytr, train_paths = load_split(ds, "train", 32)
    Xte, yte, test_paths = load_split(ds, "test", 32)
    (npy,) = (isolated_home / "cache" / "decoded").glob("*.npy")  # no second copy per split
    whole = np.load(npy)
    assert len(whole) == len(Xtr) + len(Xte) == len(salted.kept) + 4  # the files that decoded, once
    assert np.array_equal(whole, np.concatenate([Xtr.numpy(), Xte.numpy()]))
    # each row is its own file, decoded by the one preprocessing
    for X, paths in ((Xtr, train_paths), (Xte, test_paths)):
        for x, p in zip(X, paths):
            assert np.array_equal(x.numpy(), to_input(open_rgb(p), 32).transpose(2, 0, 1)), p
    # a split is a view of the memory-mapped file: nothing copied, pages shared between processes
    dec = data.decode_all(ds, 32)
    assert isinstance(dec.X, np.memmap) and np.shares_memory(dec.split("train")[0].numpy(), dec.X)


def test_no_images_or_one_class_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable images"):
        discover(tmp_path / "empty")
    for i in range(3):
        save_image(tmp_path / "one" / "with_mask" / f"{i}.jpg")
    with pytest.raises(DataError, match="only covered"):
        discover(tmp_path / "one")


def test_exif_orientation_alpha_and_16bit_become_upright_rgb(tmp_path):
    img = Image.new("RGB", (60, 30), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    img.save(tmp_path / "r.jpg", exif=exif)
    out = open_rgb(tmp_path / "r.jpg")
    assert out.size == (30, 60) and out.mode == "RGB"
    Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(tmp_path / "a.png")
    assert open_rgb(tmp_path / "a.png").getpixel((5, 5)) == (255, 255, 255)
    Image.fromarray(np.full((20, 20), 65535, np.uint16)).save(tmp_path / "w.png")
    assert open_rgb(tmp_path / "w.png").getpixel((5, 5)) == (255, 255, 255)


def _turned_jpeg(path):
    """A JPEG stored lying on its side whose EXIF orientation (6: turn 90 degrees clockwise) stands it
    upright: shown 64x48, green top-left corner, red top, blue bottom."""
    up = np.zeros((48, 64, 3), np.uint8)
    up[:24] = (255, 0, 0)
    up[24:] = (0, 0, 255)
    up[:16, :16] = (0, 255, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rot90(up).copy()).save(path, quality=95, exif=exif)  # stored 48 wide, 64 tall
    return path


def _upright(rgb: np.ndarray) -> bool:
    # (H, W, 3): the corners of the picture above, wherever it was scaled to
    h, w = rgb.shape[:2]
    near = lambda y, x, c: np.abs(rgb[y, x].astype(int) - c).max() < 60  # noqa: E731
    return (near(h // 8, w // 8, (0, 255, 0)) and near(h // 8, w - 1 - w // 8, (255, 0, 0))
            and near(h - 1 - h // 8, w // 2, (0, 0, 255)))


def _decoded_for_training(path):
    save_image(path.parent / "000001_0.jpg")  # discover needs both classes
    X, _, paths = load_split(discover(path.parent.parent), "train", 32)
    return X[paths.index(str(path))].numpy().transpose(1, 2, 0)


# Every path from a file to pixels goes through open_rgb; each must show the picture upright.
READERS = {
    "open_rgb": lambda p: np.asarray(open_rgb(p)),
    "photo upload bytes (Recognize page, predict)": lambda p: np.asarray(open_rgb(p.read_bytes(), draft=faces.PHOTO_SIDE)),
    "faces.read_rgb (scenes, benches, video)": faces.read_rgb,
    "network_views (Dataset page galleries)": lambda p: np.asarray(network_views([p], 32)[0][1]),
    "load_split (training, evaluation)": _decoded_for_training,
}


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_stands_an_exif_turned_jpeg_upright(tmp_path, reader):
    path = _turned_jpeg(tmp_path / "d" / "train" / "000000_1.jpg")
    with Image.open(path) as stored:
        assert stored.size == (48, 64) and not _upright(np.asarray(stored))  # the test means something
    rgb = READERS[reader](path)
    assert _upright(rgb), reader
    if reader in ("open_rgb", "faces.read_rgb (scenes, benches, video)"):
        assert rgb.shape == (48, 64, 3)


def test_the_header_scan_reports_an_exif_turned_jpeg_as_shown(tmp_path):
    path = _turned_jpeg(tmp_path / "d" / "train" / "000000_1.jpg")
    save_image(tmp_path / "d" / "train" / "000001_0.jpg")
    (row,) = [r for r in scan(discover(tmp_path / "d"))["images"] if r["path"] == str(path)]
    assert (row["width"], row["height"]) == (64, 48)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    save_image(tmp_path / "big.png", size=(100, 100))
    with pytest.raises(data.BadImage, match="decompression bomb"):
        open_rgb(tmp_path / "big.png")


def test_decoded_cache_is_reused_and_invalidated_on_change(tmp_path, monkeypatch):
    root = make_report_layout(tmp_path / "d")
    ds = discover(root)
    X1, y1, _ = load_split(ds, "train", 32)
    calls = []
    real = data.cache._decode_one
    monkeypatch.setattr(data.cache, "_decode_one", lambda *a: calls.append(a) or real(*a))
    X2, y2, _ = load_split(discover(root), "train", 32)
    assert calls == [] and np.array_equal(X1.numpy(), X2.numpy())
    save_image(root / "train" / "000099_1.jpg")
    load_split(discover(root), "train", 32)
    assert len(calls) == 11  # the whole set is rebuilt once when a file changes


def test_one_preprocessing_for_files_and_arrays(tmp_path):
    p = save_image(tmp_path / "x.png", size=(70, 50))
    a = to_input(open_rgb(p), 32)
    b = to_input(Image.fromarray(np.asarray(Image.open(p).convert("RGB"))), 32)
    assert a.shape == (32, 32, 3) and np.array_equal(a, b)


def test_scan_is_cached(tmp_path, monkeypatch):
    root = make_report_layout(tmp_path / "d")
    first = scan(discover(root))
    monkeypatch.setattr(data.headers, "probe", lambda *a: (_ for _ in ()).throw(AssertionError("probed again")))
    second = scan(discover(root))
    assert first["summary"] == second["summary"]
    assert first["summary"]["width"]["max"] == 48


@pytest.mark.parametrize("kind", ["baseline", "progressive", "cmyk", "grey", "exif6-le", "exif8-be", "exif3"])
def test_fast_jpeg_header_agrees_with_pillow(tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 61, 3), dtype=np.uint8))
    kw = {}
    if kind == "progressive":
        kw["progressive"] = True
    elif kind == "cmyk":
        img = img.convert("CMYK")
    elif kind == "grey":
        img = img.convert("L")
    elif kind.startswith("exif"):
        exif = Image.Exif()
        exif[0x0112] = int(kind[4])
        exif.endian = ">" if kind.endswith("be") else "<"
        exif[0x010F] = "maker " * 20  # a longer IFD before the frame header
        kw["exif"] = exif.tobytes()
    img.save(path, "JPEG", **kw)
    fast = data.headers._jpeg_header(path.read_bytes()[:65536])
    with Image.open(path) as ref:
        assert fast == (ref.width, ref.height, ref.getexif().get(0x0112, 1))
    w, h, fmt = data.probe(path)
    assert fmt == "JPEG" and (w, h) == ((37, 61) if kind in ("exif6-le", "exif8-be") else (61, 37))


def test_fast_jpeg_header_leaves_what_it_cannot_read_to_pillow(tmp_path):
    assert data.headers._jpeg_header(b"\x89PNG\r\n\x1a\n") is None
    assert data.headers._jpeg_header(b"\xff\xd8\xff\xda\x00\x02") is None  # scan data before a frame header
    assert data.headers._jpeg_header(b"\xff\xd8\xff\xe0\x00") is None  # cut inside a segment length
    # a JPEG cut right after its header still reads as truncated through probe
    good = save_image(tmp_path / "a.jpg", size=(64, 64))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:400])
    with pytest.raises(data.BadImage, match="truncated"):
        data.probe(cut)


def test_views_are_training_framings_not_items(tmp_path):
    """Dataset.views (a scene face's jittered crops) reach the trainer through train_views and
    nothing else: not the counts, the scan or the decoded rows that data health and evaluation read."""
    root = make_report_layout(tmp_path / "d")
    plain = discover(root)
    first, test_face = next(it.path for it in plain.items if it.split == "train"), \
        next(it.path for it in plain.items if it.split == "test")
    view = save_image(tmp_path / "views" / "a.jpg", color=(10, 200, 10))
    broken = tmp_path / "views" / "b.jpg"
    broken.write_bytes(b"not an image")
    ds = dataclasses.replace(plain, views={first: (view, broken), test_face: (view,)})
    assert ds.counts() == plain.counts() and scan(ds)["summary"]["total"] == len(plain.items) == 10
    assert scan(ds)["summary"]["training_views"] == 3
    dec = data.decode_all(ds, 32)
    Xtr, _, paths = dec.split("train")
    assert len(dec.X) == 10
    tv = dec.train_views()
    assert tv.n_views == 2 and len(tv.extra) == 1  # the broken view is left out, its face still trains
    assert tv.index[paths.index(str(first))].tolist() == [-1, 0] and (tv.index[:, 1] == -1).sum() == len(Xtr) - 1
    assert np.array_equal(tv.extra[0].numpy(), to_input(open_rgb(view), 32).transpose(2, 0, 1))
    # a face that is dropped (it failed to decode) takes its views with it
    gone = ds.without([data.Skipped(str(first), "test")])
    assert gone.views_of().keys() == {test_face}


def test_without_views_training_draws_the_split_itself(salted):
    import torch
    dec = data.decode_all(discover(salted.root), 32)
    tv = dec.train_views()
    assert tv.n_views == 1 and len(tv.extra) == 0
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert tv.draw(gen) is tv.faces and torch.equal(tv.faces, dec.split("train")[0])
    assert torch.equal(gen.get_state(), state)  # no number drawn: such a run trains as it did before views
