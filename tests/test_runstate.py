"""The run state machine: which moves it allows, that it alone writes, and what the page is shown."""
import threading

import pytest

from maskrec.config import PRESETS
from maskrec.train.runs import new_run, open_run
from maskrec.train.runstate import TRANSITIONS, BadTransition, RunState, read, shown
from maskrec.train.jobs import TrainingJob


@pytest.fixture
def run(tmp_path):
    return new_run(PRESETS["net1"], run_dir=tmp_path / "r")


def test_a_new_run_has_no_state_until_its_trainer_moves_it_and_every_allowed_move_is_written(run):
    assert read(run) == {"state": "failed", "error": "no status file"}  # a folder no trainer ever took
    s = RunState(run)
    assert s.state is None
    for state, error in (("running", None), ("failed", "boom"), ("queued", None), ("running", None), ("stopped", None)):
        s.to(state, error)
        assert (s.state, s.error) == (state, error)
        on_disk = read(open_run(run.dir))
        assert on_disk["state"] == state and on_disk.get("error") == error


@pytest.mark.parametrize("start,bad", [("queued", "done"), ("running", "queued"), ("stopped", "done"),
                                       ("failed", "stopped")])
def test_moves_the_machine_does_not_allow_are_refused_and_leave_the_file(run, start, bad):
    s = RunState(run)
    s.to("queued")
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
    RunState(run).to("queued")
    s = RunState(run, write=False)  # a torchrun rank other than 0
    s.to("running")
    assert s.state == "running" and read(run)["state"] == "queued"


def test_a_full_disk_keeps_the_state_in_memory_and_the_old_file_whole(run, monkeypatch):
    s = RunState(run)
    s.to("queued")
    monkeypatch.setattr(type(run), "write_status", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    s.to("running")
    s.to("failed", "disk full")
    assert (s.state, s.error) == ("failed", "disk full")
    assert read(run)["state"] == "queued"


def test_the_page_is_shown_the_jobs_state_over_the_disks(run, monkeypatch):
    """With a job of this process the page shows its state (current even when the file is not);
    without one, the disk's."""
    job = TrainingJob(PRESETS["net1"], run, slots=threading.Semaphore(0)).start()  # no slot: queued
    assert shown(run, job).state == "queued" and shown(run, job).live
    monkeypatch.setattr(type(run), "write_status", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "full")))
    job.stop()  # stopped while waiting for its slot; the file cannot say so
    job.join(10)
    assert not job.alive
    view = shown(run, job)
    assert (view.state, view.live, view.can_resume) == ("stopped", False, False)  # nothing trained yet
    assert read(run)["state"] == "queued"
    assert shown(run).state == "queued"


def test_a_runs_table_row_reads_what_its_header_reads_while_it_trains(run, monkeypatch):
    """Issue 19: at epoch 5 of 10 the Train page's "All runs" table still said 0/10, None in every
    metric cell. Its row is built from the same answer as the header (shown(run, job)), and its
    cells are strings, empty where there is no number yet."""
    from maskrec.train import run as trainrun
    from maskrec.core.presentation import run_cells
    from maskrec.train.runstate import summary
    halfway, release = threading.Event(), threading.Event()

    def five_epochs_then_wait(cfg, run, should_stop=lambda: False, on_progress=lambda p: None):
        for e in range(1, 6):
            rec = {"epoch": e, "test_f1": 0.5 + 0.05 * e, "test_auc": 0.9, "test_error": 0.1, "test_loss": 0.3, "seconds": 6.0}
            run.append_metrics(rec)
            yield rec
        halfway.set()
        assert release.wait(60)
    monkeypatch.setattr(trainrun, "fit", five_epochs_then_wait)
    before = run_cells(summary(run))
    assert before["epochs"] == "0/10" and before["best_test_f1"] == before["test_auc"] == before["best_epoch"] == ""
    job = TrainingJob(PRESETS["net1"], run).start()
    try:
        assert halfway.wait(60)
        view, row = shown(run, job), summary(run, job)
        assert (row["state"], row["epochs"]) == (view.state, f"{len(view.history)}/10") == ("running", "5/10")
        cells = run_cells(row)
        assert (cells["best_test_f1"], cells["best_epoch"], cells["minutes"]) == ("0.7500", "5", "0.5")
        assert all(isinstance(v, str) and v not in ("None", "nan") for v in cells.values()), cells
        # the disk cannot say what the job knows (full): the row follows the job, as the header does
        monkeypatch.setattr(type(run), "write_status", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "full")))
        job.stop()
        release.set()
        job.join(10)
        assert read(run)["state"] == "running" and summary(run, job)["state"] == shown(run, job).state == "stopped"
    finally:
        release.set()
        job.join(10)
