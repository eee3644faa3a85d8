"""One job runtime (issue 36, item 2): training runs, sweeps, the suspect finder and video jobs in
one registry (``maskrec.jobs.registry``) with one pool of MASKREC_MAX_JOBS slots, and the pages say
plainly when a job of any kind waits for one."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest

from maskrec.config import PRESETS
from maskrec.data import discover
from maskrec.jobs.background import BackgroundJob
from maskrec.jobs.registry import RUN, SUSPECTS, VIDEO, Registry, max_jobs
from maskrec.train import splits, suspects
from maskrec.train.jobs import start_run
from maskrec.train.runs import new_run
from tests.conftest import REPO
from tests.salted import report_layout
from tests.test_review_page import SlowSuspectJob  # a finder that holds at fold 1 until stopped


def _wait(cond, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling for the state above, with a deadline


class Held(BackgroundJob):
    """Holds a slot until ``release`` is set: the stand-in for a long training."""

    def __init__(self, slots, release: threading.Event):
        super().__init__("held", slots)
        self.release = release

    def _work(self):
        assert self.release.wait(120), "the test never released the held job"
        self._set("done")


def test_max_jobs_reads_the_environment_and_refuses_no_slot():
    assert max_jobs({}) == 1 and max_jobs({"MASKREC_MAX_JOBS": "3"}) == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="MASKREC_MAX_JOBS must be a whole number of at least 1"):
            max_jobs({"MASKREC_MAX_JOBS": bad})


def test_every_kind_shares_the_slots_and_a_second_start_finds_the_live_job():
    reg, release = Registry(max_parallel=1), threading.Event()
    try:
        first = reg.start(RUN, "a", lambda slots: Held(slots, release))
        _wait(lambda: first.status == "running", "the first job to take the slot")
        assert reg.start(RUN, "a", lambda slots: Held(slots, release)) is first  # a second click or tab
        video = reg.start(VIDEO, "up1", lambda slots: Held(slots, release), label="video door.mp4")
        _wait(lambda: video.waiting, "the video to wait for the slot")
        assert reg.holding() == ["run a"]
        assert reg.queued_words(VIDEO, "up1") == "Queued: waiting for a free slot (MASKREC_MAX_JOBS=1): run a is running."
        assert reg.active() == [first, video] and reg.active(VIDEO) == [video]
        assert reg.stop(VIDEO, "up1") and not reg.stop(VIDEO, "none")
        video.join(10)
        assert video.status == "stopped" and not video.waiting  # it left the queue without working
    finally:
        release.set()
    first.join(10)
    assert first.status == "done"


def test_a_suspect_finder_queues_behind_a_training_then_runs(tmp_path, monkeypatch):
    """The issue's check: MASKREC_MAX_JOBS=1, a training holds the slot, the suspect finder started
    after it waits as queued (before: it took no slot and ran beside it), then runs once it ends."""
    monkeypatch.setenv("MASKREC_MAX_JOBS", "1")
    reg = Registry()
    root = report_layout(tmp_path / "d")
    gate = threading.Event()  # holds the training in its data loading until the test has seen the finder queued
    real_data, real_find = splits.resolve_data, suspects.find

    def held(cfg):
        assert gate.wait(timeout=120), "the test never opened the gate"
        return real_data(cfg)
    monkeypatch.setattr(splits, "resolve_data", held)
    cfg = replace(PRESETS["net1"], data=str(root), epochs=1, batch_size=4)
    train = start_run(reg, cfg, new_run(cfg, run_dir=tmp_path / "run"))
    _wait(lambda: train.status == "running", "the training to take the slot")

    training_when_found = []

    def find(*a, **kw):
        training_when_found.append(train.status)
        return real_find(*a, **kw)
    monkeypatch.setattr(suspects, "find", find)
    ds = discover(root, overrides=False)
    finder = reg.start(SUSPECTS, ds.fingerprint(), lambda slots: suspects.SuspectJob(ds, folds=2, epochs=1, slots=slots),
                       label="the suspect finder")
    _wait(lambda: finder.waiting, "the finder to queue for the slot")
    assert finder.status == "queued" and reg.holding() == [f"run {train.run.id}"]
    assert f"run {train.run.id} is running" in reg.queued_words(SUSPECTS, ds.fingerprint())
    gate.set()
    finder.join(timeout=300)
    assert train.status == "done", train.error
    assert finder.status == "done", finder.error
    assert training_when_found == ["done"]  # the finder's work began once the training had ended
    assert isinstance(finder.result(), list)


@pytest.fixture
def held_slots():
    """Every slot of the pages' registry held by a stand-in training ("run held-<i>")."""
    from ui.common import registry
    reg, release = registry(), threading.Event()
    held = [reg.start(RUN, f"held-{i}", lambda slots: Held(slots, release)) for i in range(reg.max_parallel)]
    _wait(lambda: all(j.status == "running" for j in held), "the stand-ins to take every slot")
    yield reg, release
    release.set()
    for j in held:
        j.join(10)


def _progress_texts(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def test_a_queued_suspect_finder_says_so_on_the_dataset_page(held_slots, monkeypatch):
    reg, release = held_slots
    monkeypatch.setenv("MASKREC_DEMO_N", "240")
    monkeypatch.chdir(REPO)
    SlowSuspectJob.made.clear()
    monkeypatch.setattr(suspects, "SuspectJob", SlowSuspectJob)
    monkeypatch.setattr(suspects, "cached", lambda ds, **settings: None)
    at = AppTest.from_file(str(REPO / "pages" / "1_Dataset.py"), default_timeout=120)
    at.run()
    at.button(key="review_start").click().run()
    assert not at.exception, at.exception
    job = SlowSuspectJob.made[-1]
    _wait(lambda: job.waiting, "the finder to queue behind the held slots")
    at.run()
    want = f"Queued: waiting for a free slot (MASKREC_MAX_JOBS={reg.max_parallel}): run held-0"
    assert any(t.startswith(want) for t in _progress_texts(at)), _progress_texts(at)
    assert at.button(key="review_start").disabled  # queued counts as started: not twice
    release.set()  # the slot frees: the finder works
    _wait(lambda: job.progress() is not None, "the finder to start its work")
    at.run()
    assert any("Finding suspects: fold 1/5" in t for t in _progress_texts(at)), _progress_texts(at)
    at.button(key="review_stop").click().run()
    job.join(10)
    assert job.status == "stopped"


def test_a_queued_video_says_so_on_the_video_tab(held_slots, monkeypatch):
    from tests.test_video_tab import video_tab_alone

    from maskrec import video as V
    reg, release = held_slots
    over = threading.Event()

    def work(job):
        over.wait(60)
        raise V.VideoError("the test is over")
    monkeypatch.setattr(V.VideoJob, "_work", work)
    before = set(reg.active(VIDEO))
    try:
        at = AppTest.from_function(video_tab_alone, default_timeout=60)
        at.run()
        at.file_uploader(key="recognize_video").upload("door.mp4", b"not decoded: the job waits", "video/mp4").run()
        assert not at.exception, at.exception
        (job,) = set(reg.active(VIDEO)) - before
        _wait(lambda: job.waiting, "the video to queue behind the held slots")
        at.run()
        want = f"Queued: waiting for a free slot (MASKREC_MAX_JOBS={reg.max_parallel}): run held-0"
        assert any(t.startswith(want) for t in _progress_texts(at)), _progress_texts(at)
        assert "Stop" in [b.label for b in at.button]
        at.button(key="recognize_video_stop").click().run()
        job.join(10)
        assert job.status == "stopped"  # it left the queue; the held slots never freed
        at.run()
        assert not at.exception, at.exception
        assert [i.value for i in at.info] == ["**door.mp4** was stopped before it started: nothing was processed. "
                                              "Remove it from the box above and drop it again to process it."]
    finally:
        over.set()
