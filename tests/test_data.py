import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from maskrec import data
from maskrec.data import DataError, discover, load_split, open_rgb, scan, to_input
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


@pytest.mark.parametrize("name", ["../evil.jpg", "/abs/evil.jpg"])
def test_zip_entries_that_escape_are_refused(tmp_path, name):
    zpath = tmp_path / "bad.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr(name, b"x")
    with pytest.raises(DataError, match="outside the target"):
        discover(zpath)
    assert not (tmp_path / "evil.jpg").exists()


def test_bad_files_are_skipped_with_reasons(tmp_path):
    root = make_report_layout(tmp_path / "d")
    tr = root / "train"
    (tr / "000050_1.jpg").write_bytes(b"")
    good = (tr / "000000_0.jpg").read_bytes()
    (tr / "000051_0.jpg").write_bytes(good[: len(good) // 2])
    (tr / "000052_1.jpg").write_text("not an image at all")
    save_image(tr / "000053_7.jpg")
    save_image(tr / "000054_1.png", size=(1, 1))
    (tr / "notes.txt").write_text("hello")
    save_image(tr / "000055_0.jpg", mode="CMYK", fmt="JPEG")
    save_image(tr / "000056_1.png", mode="P")
    save_image(tr / "000057_0.png", mode="RGBA")
    Image.fromarray((np.arange(48 * 40).reshape(40, 48) * 30).astype(np.uint16)).save(tr / "000058_1.png")
    ds = discover(root)
    info = scan(ds)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in info["summary"]["skipped"]}
    assert "empty" in reasons["000050_1.jpg"]
    assert "truncated" in reasons["000051_0.jpg"]
    assert "not an image" in reasons["000052_1.jpg"]
    assert "_0 or _1" in reasons["000053_7.jpg"]
    assert "too small" in reasons["000054_1.png"]
    assert "not an image file" in reasons["notes.txt"]
    # the odd-but-valid formats decode to RGB
    X, y, paths = load_split(ds, "train", 32)
    names = {os.path.basename(p) for p in paths}
    assert {"000055_0.jpg", "000056_1.png", "000057_0.png", "000058_1.png"} <= names
    assert X.shape[1:] == (3, 32, 32) and X.dtype.__str__() == "torch.uint8"
    assert len(X) == len(y) == 10


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
    real = data._decode_one
    monkeypatch.setattr(data, "_decode_one", lambda *a: calls.append(a) or real(*a))
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
    monkeypatch.setattr(data, "probe", lambda *a: (_ for _ in ()).throw(AssertionError("probed again")))
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
    fast = data._jpeg_header(path.read_bytes()[:65536])
    with Image.open(path) as ref:
        assert fast == (ref.width, ref.height, ref.getexif().get(0x0112, 1))
    w, h, fmt = data.probe(path)
    assert fmt == "JPEG" and (w, h) == ((37, 61) if kind in ("exif6-le", "exif8-be") else (61, 37))


def test_fast_jpeg_header_leaves_what_it_cannot_read_to_pillow(tmp_path):
    assert data._jpeg_header(b"\x89PNG\r\n\x1a\n") is None
    assert data._jpeg_header(b"\xff\xd8\xff\xda\x00\x02") is None  # scan data before a frame header
    assert data._jpeg_header(b"\xff\xd8\xff\xe0\x00") is None  # cut inside a segment length
    # a JPEG cut right after its header still reads as truncated through probe
    good = save_image(tmp_path / "a.jpg", size=(64, 64))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:400])
    with pytest.raises(data.BadImage, match="truncated"):
        data.probe(cut)
