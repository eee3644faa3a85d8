"""The run state machine: which moves it allows, that it alone writes, and what the page is shown."""
import threading

import pytest

from maskrec.config import PRESETS
from maskrec.runs import new_run, open_run
from maskrec.runstate import TRANSITIONS, BadTransition, RunState, read, shown
from maskrec.trainjobs import TrainingJob


@pytest.fixture
def run(tmp_path):
    return new_run(PRESETS["net1"], run_dir=tmp_path / "r")


def test_a_new_run_is_queued_and_every_allowed_move_is_written(run):
    assert read(run)["state"] == "queued"
    s = RunState(run)
    for state, error in (("running", None), ("failed", "boom"), ("queued", None), ("running", None), ("stopped", None)):
        s.to(state, error)
        assert (s.state, s.error) == (state, error)
        on_disk = read(open_run(run.dir))
        assert on_disk["state"] == state and on_disk.get("error") == error


@pytest.mark.parametrize("start,bad", [("queued", "done"), ("running", "queued"), ("stopped", "done"),
                                       ("failed", "stopped")])
def test_moves_the_machine_does_not_allow_are_refused_and_leave_the_file(run, start, bad):
    s = RunState(run)
    if start != "queued":
        s.to("running")
        if start != "running":
            s.to(start)
    with pytest.raises(BadTransition):
        s.to(bad)
    assert s.state == start and read(run)["state"] == start


def test_every_state_is_a_row_and_every_target_a_state():
    states = set(TRANSITIONS) - {None}
    assert states == {"queued", "running", "done", "stopped", "failed", "interrupted"}
    assert all(t <= states - {"interrupted"} for t in TRANSITIONS.values())  # interrupted is only read


def test_a_non_writer_keeps_its_state_in_memory(run):
    s = RunState(run, write=False)  # a torchrun rank other than 0
    s.to("running")
    assert s.state == "running" and read(run)["state"] == "queued"


def test_a_full_disk_keeps_the_state_in_memory_and_the_old_file_whole(run, monkeypatch):
    s = RunState(run)
    monkeypatch.setattr(type(run), "set_status", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    s.to("running")
    s.to("failed", "disk full")
    assert (s.state, s.error) == ("failed", "disk full")
    assert read(run)["state"] == "queued"


def test_the_page_is_shown_the_jobs_state_over_the_disks(run, monkeypatch):
    """With a job of this process the page shows its state (current even when the file is not);
    without one, the disk's."""
    job = TrainingJob(PRESETS["net1"], run, slots=threading.Semaphore(0)).start()  # no slot: queued
    assert shown(run, job).state == "queued" and shown(run, job).live
    monkeypatch.setattr(type(run), "set_status", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "full")))
    job.stop()  # stopped while waiting for its slot; the file cannot say so
    job.join(10)
    assert not job.alive
    view = shown(run, job)
    assert (view.state, view.live, view.can_resume) == ("stopped", False, False)  # nothing trained yet
    assert read(run)["state"] == "queued"
    assert shown(run).state == "queued"
