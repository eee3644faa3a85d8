"""Doors a clumsy or hostile user opens: each gets a clear word, and nothing already saved is lost."""
import errno
import os
import zipfile
from dataclasses import replace

import pytest

from maskrec import atomic
from maskrec.config import PRESETS
from maskrec.data import DataError, discover
from maskrec.runs import new_run
from maskrec.train import TrainingJob, fit
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
