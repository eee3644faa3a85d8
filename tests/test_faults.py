"""Doors a clumsy or hostile user opens: each gets a clear word, and nothing already saved is lost."""
import errno
import json
import os
import threading
import time
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from maskrec.core import atomic
from maskrec.models import checkpoint
from maskrec.train import splits
from maskrec.config import PRESETS
from maskrec.data import DataError, discover, scan
from maskrec.train.runs import new_run
from maskrec.train.loop import fit
from maskrec.jobs.registry import Registry
from maskrec.train.jobs import TrainingJob, start_run
from tests.salted import DEFLATE64, ENCRYPTED, report_layout, zip_python_cannot_read


def test_a_symlink_loop_in_a_dataset_is_reported_not_followed(tmp_path):
    root = report_layout(tmp_path / "d")
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


@pytest.mark.parametrize("kind,said", [({"flag": ENCRYPTED}, "is password-protected"),
                                       ({"method": DEFLATE64}, "is compressed with Deflate64")],
                         ids=["encrypted", "deflate64"])
def test_a_zip_python_cannot_read_is_refused_saying_what_to_do(tmp_path, kind, said):
    """zip -P, and Windows' Deflate64 for large files: zipfile raised RuntimeError and
    NotImplementedError from the extraction, a traceback for every caller."""
    z = zip_python_cannot_read(tmp_path / "data.zip", report_layout(tmp_path / "data"), **kind)
    with pytest.raises(DataError, match=f"data.zip.* {said}.*zip the folder again"):
        discover(z)
    from maskrec.config import cache_dir
    assert not list((cache_dir() / "zips").glob("*/*"))  # nothing extracted, nothing half-extracted


def test_a_zip_of_many_entries_each_under_the_entry_guard_is_refused_as_a_whole(tmp_path):
    """1 MiB of zeros per entry passes the per-entry ratio guard; a hundred of them are 100 MiB from
    about 100 KB, a bomb by the whole archive's ratio, refused before a byte is written."""
    with zipfile.ZipFile(tmp_path / "many.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        for i in range(100):
            z.writestr(f"data/train/{i:06d}_{i % 2}.jpg", b"\0" * (1 << 20))
    with pytest.raises(DataError, match="as a whole.*zip bomb"):
        discover(tmp_path / "many.zip")
    from maskrec.config import cache_dir
    assert not list((cache_dir() / "zips").glob("*/*"))


def test_a_refused_upload_is_not_kept(tmp_path):
    """An uploaded zip is kept in cache/uploads only when it can be used; refused ones went on piling up."""
    from maskrec.config import cache_dir
    from maskrec.data import keep_upload
    z = zip_python_cannot_read(tmp_path / "data.zip", report_layout(tmp_path / "data"), flag=ENCRYPTED)
    with pytest.raises(DataError, match="password-protected"):
        keep_upload(z.read_bytes())
    assert not list((cache_dir() / "uploads").glob("*"))
    with zipfile.ZipFile(tmp_path / "good.zip", "w") as good:
        for f in sorted((tmp_path / "data").rglob("*.jpg")):
            good.write(f, f.relative_to(tmp_path))
    kept = keep_upload((tmp_path / "good.zip").read_bytes())
    assert kept.parent == cache_dir() / "uploads" and discover(kept).counts()["train"] == {0: 4, 1: 4}


def test_a_class_missing_from_the_test_split_warns_instead_of_failing(tmp_path):
    root = report_layout(tmp_path / "d", test_labels=(1, 1, 1))
    cfg = replace(PRESETS["net1"], data=str(root), epochs=1, batch_size=4)
    (rec,) = fit(cfg, new_run(cfg, run_dir=tmp_path / "r"))
    assert rec["test_auc"] is None and "one class" in rec["warning"]


def test_disk_full_while_saving_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    root = report_layout(tmp_path / "d")
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
    root = report_layout(tmp_path / "d")
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


def test_a_salted_dataset_scans_and_trains_on_the_good_files_and_says_why_for_each_bad_one(tmp_path, salted):
    root, kept, bad = salted.root, salted.kept, salted.bad
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
    root = report_layout(tmp_path / "d", test_labels=())
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
    root = report_layout(tmp_path / "d")
    gate = threading.Event()  # holds the running jobs in data loading until the test has seen them
    real = splits.resolve_data

    def held(cfg):
        assert gate.wait(timeout=120), "the test never opened the gate"
        return real(cfg)
    monkeypatch.setattr(splits, "resolve_data", held)

    reg = Registry(max_parallel=2)
    cfgs = [replace(PRESETS["net1"], data=str(root), epochs=2, batch_size=4, seed=s) for s in range(3)]
    jobs = [start_run(reg, c, new_run(c, run_dir=tmp_path / f"r{i}")) for i, c in enumerate(cfgs)]
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
