"""Doors a clumsy or hostile user opens: each gets a clear word, and nothing already saved is lost."""
import builtins
import errno
import json
import os
import struct
import threading
import time
import zipfile
import zlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from maskrec import atomic, checkpoint
from maskrec import train as train_mod
from maskrec.config import PRESETS
from maskrec.data import DataError, discover, scan
from maskrec.runs import new_run
from maskrec.train import JobRegistry, TrainingJob, fit
from tests.conftest import save_image


def _report(root, test_labels=(0, 1, 0, 1)):
    for i in range(8):
        save_image(root / "train" / f"{i:06d}_{i % 2}.jpg")
    for i, lab in enumerate(test_labels):
        save_image(root / "test" / f"{100 + i:06d}_{lab}.jpg")
    return root


def test_a_symlink_loop_in_a_dataset_is_reported_not_followed(tmp_path):
    root = _report(tmp_path / "d")
    os.symlink(root / "train", root / "train" / "loop")
    ds = discover(root)
    assert ds.counts()["train"] == {0: 4, 1: 4}
    assert any("linked folder not followed" in s.reason for s in ds.skipped)


def test_zip_symlinks_and_zip_bombs_are_refused(tmp_path):
    link = zipfile.ZipInfo("data/evil")
    link.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as z:
        z.writestr(link, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        discover(tmp_path / "link.zip")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("data/train/000000_1.jpg", b"\0" * (64 << 20))
    with pytest.raises(DataError, match="zip bomb"):
        discover(tmp_path / "bomb.zip")


def test_a_class_missing_from_the_test_split_warns_instead_of_failing(tmp_path):
    root = _report(tmp_path / "d", test_labels=(1, 1, 1))
    cfg = replace(PRESETS["net1"], data=str(root), epochs=1, batch_size=4)
    (rec,) = fit(cfg, new_run(cfg, run_dir=tmp_path / "r"))
    assert rec["test_auc"] is None and "one class" in rec["warning"]


def test_disk_full_while_saving_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    root = _report(tmp_path / "d")
    cfg = replace(PRESETS["net1"], data=str(root), epochs=3, batch_size=4)
    run = new_run(cfg, run_dir=tmp_path / "r")
    good = None
    real = atomic.os.fsync

    def fsync(fd):  # the disk fills up once epoch 1's files are safely written
        if good is not None:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)
    monkeypatch.setattr(atomic.os, "fsync", fsync)

    gen = fit(cfg, run)
    next(gen)
    good = run.last_ckpt.read_bytes()
    with pytest.raises(OSError, match="No space left"):
        next(gen)
    assert run.last_ckpt.read_bytes() == good  # epoch 1's checkpoint is intact
    assert [r["epoch"] for r in run.metrics()] == [1]
    assert not [p for p in run.dir.iterdir() if p.name.endswith(".tmp")]  # no half-written files left


def test_disk_full_fails_the_job_with_a_clear_status(tmp_path, monkeypatch):
    root = _report(tmp_path / "d")
    cfg = replace(PRESETS["net1"], data=str(root), epochs=2, batch_size=4)
    run = new_run(cfg, run_dir=tmp_path / "r")
    real = atomic.os.fsync
    full = (run.dir / "metrics.jsonl").exists  # the disk fills up once epoch 1 is on disk

    def fsync(fd):
        if full():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    job = TrainingJob(cfg, run).start()
    job.join(timeout=120)
    assert job.status == "failed" and "No space left" in job.error
    assert [r["epoch"] for r in job.history()] == [1]


def _png_bomb(path, side=20_000):
    """A 1-bit PNG of side x side pixels (400 M, over twice Pillow's limit) in ~50 KB: the pixels
    are all zero, so they compress ~1000:1. Written by hand so the test never holds them."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    z = zlib.compressobj(9)
    row = b"\0" * (1 + side // 8)  # filter byte + packed bits
    idat = b"".join(z.compress(row * 1000) for _ in range(side // 1000)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _salted(root):
    """8 good train images, 4 good test images, the odd-but-valid formats, and every kind of bad file.
    Returns (kept names, {bad name: word its scan reason must hold})."""
    _report(root)
    tr = root / "train"
    save_image(tr / "000060_0.jpg", mode="CMYK", fmt="JPEG")
    save_image(tr / "000061_1.png", mode="P")
    save_image(tr / "000062_0.png", mode="RGBA")
    Image.fromarray((np.arange(48 * 40).reshape(40, 48) * 30).astype(np.uint16)).save(tr / "000063_1.png")
    (tr / "000050_1.jpg").write_bytes(b"")
    good = (tr / "000000_0.jpg").read_bytes()
    (tr / "000051_0.jpg").write_bytes(good[: len(good) // 2])
    (tr / "000052_1.jpg").write_text("not an image at all")
    save_image(tr / "000053_7.jpg")
    save_image(tr / "000054_1.png", size=(1, 1))
    _png_bomb(tr / "000055_0.png")
    save_image(tr / "000056_1.jpg")  # made unreadable by the test
    os.symlink(tr / "000057_1.jpg", tr / "000058_1.jpg")  # a file link loop: 57 -> 58 -> 57
    os.symlink(tr / "000058_1.jpg", tr / "000057_1.jpg")
    os.symlink(tr, tr / "loop")  # a folder link loop
    (tr / "notes.txt").write_text("hello")
    (tr / "Thumbs.db").write_bytes(b"\0" * 64)
    (tr / ".DS_Store").write_bytes(b"\0" * 64)
    kept = {f"{i:06d}_{i % 2}.jpg" for i in range(8)} | {"000060_0.jpg", "000061_1.png", "000062_0.png", "000063_1.png"}
    bad = {"000050_1.jpg": "empty", "000051_0.jpg": "truncated", "000052_1.jpg": "not an image",
           "000053_7.jpg": "_0 or _1", "000054_1.png": "too small", "000055_0.png": "decompression bomb",
           "000056_1.jpg": "Permission denied", "000057_1.jpg": "broken link", "000058_1.jpg": "broken link",
           "loop": "linked folder not followed", "notes.txt": "not an image file", "Thumbs.db": "not an image file",
           ".DS_Store": "hidden file"}
    return kept, bad


def _unreadable(monkeypatch, path):
    """Reading ``path`` fails with EACCES. The tests run as root, for whom chmod 000 stops no read,
    so the fault is injected where the OS would raise it: at open() (Pillow opens files through
    builtins.open, maskrec.data's header probe through os.open); stat() still works, as it does on a
    chmod-000 file."""
    real_open, real_os_open = builtins.open, os.open

    def denied(file) -> bool:
        return isinstance(file, (str, os.PathLike)) and os.path.abspath(file) == str(path)

    def guarded(file, *a, **kw):
        if denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    def guarded_os(file, *a, **kw):
        if denied(file):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_os_open(file, *a, **kw)
    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(os, "open", guarded_os)


def test_a_salted_dataset_scans_and_trains_on_the_good_files_and_says_why_for_each_bad_one(tmp_path, monkeypatch):
    root = tmp_path / "d"
    kept, bad = _salted(root)
    _unreadable(monkeypatch, root / "train" / "000056_1.jpg")

    ds = discover(root)
    info = scan(ds)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in info["summary"]["skipped"]}
    assert set(reasons) == set(bad)
    for name, word in bad.items():
        assert word in reasons[name], (name, reasons[name])
    assert {os.path.basename(r["path"]) for r in info["images"] if r["split"] == "train"} == kept

    cfg = replace(PRESETS["net1"], data=str(root), epochs=1, batch_size=4)
    run = new_run(cfg, run_dir=tmp_path / "r")
    (rec,) = fit(cfg, run)  # one epoch on the good files
    assert rec["epoch"] == 1 and np.isfinite(rec["train_loss"])
    ck = checkpoint.load(run.last_ckpt)
    assert ck["data"]["counts"] == {"train": {0: 6, 1: 6}, "test": {0: 2, 1: 2}}
    # the run says which files it left out, and why (decoding finds what the header scan found)
    left_out = {os.path.basename(s["path"]): s["reason"] for s in run.read_json("skipped.json")}
    assert set(left_out) == set(bad) and all(left_out.values())
    assert "Permission denied" in left_out["000056_1.jpg"] and "decompression bomb" in left_out["000055_0.png"]


def test_an_empty_test_split_fails_the_run_with_a_clear_message(tmp_path):
    root = _report(tmp_path / "d", test_labels=())
    (root / "test").mkdir()
    (root / "test" / "000100_0.jpg").write_bytes(b"")  # the only test "image" is an empty file
    cfg = replace(PRESETS["net1"], data=str(root), epochs=1, batch_size=4)
    run = new_run(cfg, run_dir=tmp_path / "r")
    job = TrainingJob(cfg, run).start()
    job.join(timeout=120)
    assert job.status == "failed" and "test split has no usable images" in job.error
    assert run.status()["state"] == "failed"
    assert [s["path"] for s in run.read_json("skipped.json")] == [str(root / "test" / "000100_0.jpg")]


def test_several_runs_at_once_two_train_in_parallel_a_third_queues_and_all_finish_intact(tmp_path, monkeypatch):
    root = _report(tmp_path / "d")
    gate = threading.Event()  # holds the running jobs in data loading until the test has seen them
    real = train_mod.resolve_data

    def held(cfg):
        assert gate.wait(timeout=120), "the test never opened the gate"
        return real(cfg)
    monkeypatch.setattr(train_mod, "resolve_data", held)

    reg = JobRegistry(max_parallel=2)
    cfgs = [replace(PRESETS["net1"], data=str(root), epochs=2, batch_size=4, seed=s) for s in range(3)]
    jobs = [reg.start(c, new_run(c, run_dir=tmp_path / f"r{i}")) for i, c in enumerate(cfgs)]
    want = ["queued", "running", "running"]  # in memory, and on disk for the pages of other processes

    def states():
        return sorted(j.status for j in jobs), sorted(j.run.status()["state"] for j in jobs)
    deadline = time.monotonic() + 60
    while states() != (want, want):  # (a job writes its status file just after it switches)
        assert time.monotonic() < deadline, states()
        time.sleep(0.02)  # polling for the state above, with a deadline
    gate.set()
    for j in jobs:
        j.join(timeout=300)
    assert [j.status for j in jobs] == ["done"] * 3, [j.error for j in jobs]
    for j in jobs:
        lines = (j.run.dir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
        assert checkpoint.load(j.run.last_ckpt)["epoch"] == 2
        assert checkpoint.load(j.run.best_ckpt)["net"] == "net1"
        assert j.run.status()["state"] == "done"
        assert not [p for p in j.run.dir.iterdir() if p.name.endswith(".tmp")]
