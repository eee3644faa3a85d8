"""The recipe search: Optuna trials as run folders, judged on validation F1, pruned, resumable."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskrec.train import sweep as sweep_mod
from maskrec.train import run as trainrun
from maskrec.__main__ import main
from maskrec.train.runs import Run
from maskrec.train.sweep import SweepConfig, best, new_sweep, open_sweep, run_sweep
from tests.conftest import REPO


class Calls(list):
    """The fake fit's calls, (run folder name, epochs it had on disk), and in ``epochs`` each epoch it
    trained, as the run folder of each, in order."""
    def __init__(self):
        super().__init__()
        self.epochs: list[str] = []


def _fake_fit(calls: Calls):
    """fit() without the training: val F1 grows with the epoch and falls with |log10 lr + 3|, so
    the trials differ in a way the pruner can see, in milliseconds. It resumes like fit: after the
    epochs the run has on disk."""
    import math

    def fit(cfg, run, should_stop=lambda: False, on_progress=lambda p: None):
        calls.append((run.dir.name, len(run.metrics())))
        for epoch in range(len(run.metrics()) + 1, cfg.epochs + 1):
            if should_stop():
                return
            f1 = max(0.0, 1 - abs(math.log10(cfg.lr) + 3)) * epoch / cfg.epochs
            rec = {"epoch": epoch, "val_f1": f1, "val_auc": 0.5 + f1 / 2, "test_f1": 0.5, "seconds": 0.01}
            run.append_metrics(rec)
            calls.epochs.append(run.dir.name)
            yield rec
    return fit


@pytest.fixture
def fake(monkeypatch):
    calls = Calls()
    monkeypatch.setattr(trainrun, "fit", _fake_fit(calls))  # every training (trial) goes through train_run
    return calls


def test_trials_are_run_folders_some_pruned_the_best_reported(fake, tmp_path):
    sw = new_sweep(SweepConfig(net="net1", trials=12, epochs=6, data=""), sweep_dir=tmp_path / "sw")
    results = list(run_sweep(sw))
    assert len(results) == 12
    states = [r.state for r in results]
    assert "pruned" in states and "complete" in states
    for r in results:
        run = Run(Path(r.run))
        assert run.read_json("sweep.json")["trial"] == r.number  # each trial an ordinary run folder
        assert run.status()["state"] == ("done" if r.state == "complete" else "stopped")
        assert len(run.metrics()) == r.epochs
    pruned = [r for r in results if r.state == "pruned"]
    assert all(r.epochs < r.params["epochs"] for r in pruned)
    done = [r for r in results if r.state == "complete"]
    b = best(sw)
    assert b["value"] == max(r.value for r in done)
    assert b["run"] == max(done, key=lambda r: r.value).run
    rows = sw.trials()
    assert [t["number"] for t in rows] == list(range(12)) and {t["state"] for t in rows} == {"complete", "pruned"}
    for t in rows:  # the last epoch's validation AUC beside the objective, the F1 of that same epoch
        assert t["val_auc"] == pytest.approx(0.5 + Run(Path(t["run"])).metrics()[-1]["val_f1"] / 2)


def test_a_stopped_sweep_resumes_its_trial_in_the_same_run_folder(fake, tmp_path):
    sw = new_sweep(SweepConfig(net="net1", trials=3, epochs=8, pruner="none"), sweep_dir=tmp_path / "sw")
    # every trial draws 4..8 epochs: stop trial 1 after its second
    first = list(run_sweep(sw, should_stop=lambda: len(fake) == 2 and fake.epochs.count(fake[-1][0]) >= 2))
    assert len(first) == 1  # trial 0 finished; trial 1 was stopped part-way
    stopped_run = fake[-1][0]
    again = list(run_sweep(open_sweep(sw.dir)))
    assert len(first) + len(again) == 3
    assert (stopped_run, 2) in fake  # the retry continued that run after its 2 epochs
    retry = next(t for t in sw.trials() if t["retry_of"] is not None)
    assert Path(retry["run"]).name == stopped_run and retry["state"] == "complete"
    drawn = retry["params"]["epochs"]
    assert drawn > 2 and [r["epoch"] for r in Run(Path(retry["run"])).metrics()] == list(range(1, drawn + 1))


def test_cli_json_one_line_per_trial_then_the_best(fake, capsys):
    assert main(["sweep", "--net", "net1", "--trials", "3", "--epochs", "2", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4
    assert all({"number", "state", "value", "params", "run"} <= set(x) for x in lines[:3])
    assert set(lines[-1]) == {"best"} and {"run", "params", "value"} <= set(lines[-1]["best"])
    assert lines[-1]["best"]["value"] == max(x["value"] for x in lines[:3] if x["state"] == "complete")


@pytest.mark.parametrize("argv,msg", [
    (["sweep"], "needs --net"),
    (["sweep", "--net", "net9"], "unknown net"),
    (["sweep", "--net", "net1", "--trials", "0"], "trials must be"),
    (["sweep", "--net", "net1", "--val-fraction", "0"], "validation share"),
    (["sweep", "--resume", "/nonexistent/sweep"], "no sweep at"),
])
def test_bad_sweep_options_exit_2_with_a_message(capsys, argv, msg):
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def _wait(cond, what, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)  # polling a condition, with a deadline
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_real_sweep_killed_mid_trial_resumes_after_a_restart(demo_dir, tmp_path, isolated_home):
    """Real training on the demo data, in a process killed with SIGKILL while trial 1 trains."""
    sw_dir = tmp_path / "sw"
    env = {**os.environ, "MASKREC_HOME": str(isolated_home)}
    argv = [sys.executable, "-m", "maskrec", "sweep", "--json"]
    cmd = argv + ["--net", "net1", "--data", str(demo_dir), "--trials", "3", "--epochs", "4", "--pruner", "none",
                  "--out", str(sw_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    runs = isolated_home / "runs"

    def trial1_run():
        for d in runs.glob("*") if runs.exists() else []:
            tag = Run(d).read_json("sweep.json") or {}
            if tag.get("trial") == 1 and len(Run(d).metrics()) >= 1:
                return d
    try:
        killed_run = _wait(trial1_run, "trial 1's first epoch")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    first = [json.loads(x) for x in proc.stdout.read().decode().splitlines()]
    assert [t["number"] for t in first] == [0]
    done_before = len(Run(killed_run).metrics())
    out = subprocess.run(argv + ["--resume", str(sw_dir)], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == 3 and "best" in lines[-1]  # two trials finished now, then the best
    retry = next(t for t in lines[:-1] if Path(t["run"]) == killed_run)
    assert retry["state"] == "complete"
    epochs = [r["epoch"] for r in Run(killed_run).metrics()]
    assert epochs == list(range(1, retry["params"]["epochs"] + 1)) and done_before >= 1
    rows = open_sweep(sw_dir).trials()
    assert [t["state"] for t in rows].count("failed") == 1  # the killed attempt, recorded as such
    b = lines[-1]["best"]
    assert b["value"] == Run(Path(b["run"])).metrics()[-1]["val_f1"]


def test_the_page_job_runs_a_sweep_in_the_background_and_optuna_draws_it(fake, tmp_path):
    from maskrec.train.sweep import SweepJob, figures
    sw = new_sweep(SweepConfig(net="net1", trials=6, epochs=3), sweep_dir=tmp_path / "sw")
    job = SweepJob(sw).start()
    job.join(timeout=120)
    assert job.status == "done" and len(job.results()) == 6
    figs = figures(sw)
    assert {"history", "slice"} <= set(figs)
    lay = figs["slice"].layout
    slice_params = {lay[k].title.text for k in lay if k.startswith("xaxis") and lay[k].title.text}
    assert {"lr", "weight_decay", "augment_strength"} <= slice_params
    assert figs["history"].layout.yaxis.title.text == "validation F1"


def test_a_stopped_page_job_leaves_the_sweep_resumable(fake, tmp_path):
    from maskrec.train.sweep import SweepJob
    sw = new_sweep(SweepConfig(net="net1", trials=4, epochs=3, pruner="none"), sweep_dir=tmp_path / "sw")
    job = SweepJob(sw)
    job.stop()  # before it starts: it stops at once, nothing lost
    job.start().join(timeout=60)
    assert job.status == "stopped"
    assert len(list(run_sweep(open_sweep(sw.dir)))) == 4


# ------------------------------------------------------------------ the page's side: the job registry, sweep_shown

def _held_training(monkeypatch, tmp_path):
    """A registry whose one slot a training run holds until the returned Event is set (fit waits on it;
    other runs, a sweep's trials, train with the fit in place before)."""
    import threading
    from dataclasses import replace

    from maskrec.config import PRESETS
    from maskrec.jobs.registry import Registry
    from maskrec.train import jobs as trainjobs
    from maskrec.train.runs import new_run
    release = threading.Event()
    held, other_fit = tmp_path / "run", trainrun.fit

    def held_fit(cfg, run, should_stop=lambda: False, on_progress=lambda p: None):
        if run.dir != held:
            yield from other_fit(cfg, run, should_stop, on_progress)
            return
        release.wait(timeout=120)
        rec = {"epoch": 1, "test_f1": 0.5, "seconds": 0.01}
        run.append_metrics(rec)
        yield rec
    monkeypatch.setattr(trainrun, "fit", held_fit)
    reg = Registry(max_parallel=1)
    cfg = replace(PRESETS["net1"], epochs=1)
    train = trainjobs.start_run(reg, cfg, new_run(cfg, run_dir=held))
    _wait(lambda: train.status == "running", "the training run to take the slot", timeout=60)
    return reg, train, release


def test_a_sweep_queues_behind_a_training_run_and_is_never_started_twice(fake, monkeypatch, tmp_path):
    from maskrec.jobs.registry import SWEEP
    from maskrec.train.jobs import start_sweep, sweep_shown
    reg, train, release = _held_training(monkeypatch, tmp_path)
    sw = new_sweep(SweepConfig(net="net1", trials=3, epochs=2, pruner="none"), sweep_dir=tmp_path / "sw")
    job = start_sweep(reg, sw)
    assert job.status == "queued" and sweep_shown(sw, job).state == "queued"
    assert start_sweep(reg, open_sweep(sw.dir)) is job  # a second click or tab: the same job
    assert reg.get(SWEEP, sw.id) is job and reg.active(SWEEP) == [job]
    assert reg.holding() == [f"run {train.run.id}"]  # what the queued sweep says it waits for
    release.set()
    job.join(timeout=120)
    assert train.status == "done" and job.status == "done" and len(job.results()) == 3
    view = sweep_shown(sw, reg.get(SWEEP, sw.id))
    assert (view.state, view.finished, view.trials, view.live, view.can_resume) == ("done", 3, 3, False, False)
    assert len(fake) == 3  # three trials trained, once each


def test_start_sweep_after_a_stop_resumes_the_same_folder(fake, tmp_path):
    from maskrec.jobs.registry import Registry
    from maskrec.train.jobs import start_sweep, sweep_shown
    reg = Registry(max_parallel=1)
    sw = new_sweep(SweepConfig(net="net1", trials=3, epochs=2, pruner="none"), sweep_dir=tmp_path / "sw")
    trials = run_sweep(sw)
    next(trials)  # one trial finished, then the caller lets go (the generator releases the folder)
    trials.close()
    view = sweep_shown(sw)
    assert (view.state, view.finished, view.can_resume) == ("stopped", 1, True)
    first = start_sweep(reg, sw)
    first.join(timeout=120)
    second = start_sweep(reg, sw)
    assert second is not first  # the old job ended: a new one may run the folder (nothing left to do)
    second.join(timeout=120)
    assert [t["state"] for t in sw.trials()] == ["complete"] * 3 and sweep_shown(sw, second).state == "done"


def test_sweep_shown_reads_the_owner_file_without_a_job(fake, tmp_path):
    from maskrec.train.jobs import sweep_shown
    sw = new_sweep(SweepConfig(net="net1", trials=2, epochs=2), sweep_dir=tmp_path / "sw")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (sw.dir / "owner.json").write_text(json.dumps({"pid": dead.pid}))
    view = sweep_shown(sw)
    assert (view.state, view.can_resume, view.live) == ("interrupted", True, False)
    (sw.dir / "owner.json").write_text(json.dumps({"pid": os.getppid()}))  # alive, and not this process
    view = sweep_shown(sw)
    assert (view.state, view.pid, view.can_resume) == ("elsewhere", os.getppid(), False)
    (sw.dir / "owner.json").unlink()
    assert sweep_shown(sw).state == "stopped"  # never ran: trials left, resumable



def test_a_sweep_whose_trials_keep_failing_ends_with_the_error(monkeypatch, tmp_path, capsys):
    def broken(cfg, run, should_stop=lambda: False, on_progress=lambda p: None):
        raise ValueError("no usable images found in /nowhere")
        yield  # a generator, like fit
    monkeypatch.setattr(trainrun, "fit", broken)
    sw = new_sweep(SweepConfig(net="net1", trials=10, epochs=2), sweep_dir=tmp_path / "sw")
    got = []
    with pytest.raises(sweep_mod.SweepFailed, match="3 trials in a row failed.*no usable images"):
        for r in run_sweep(sw):
            got.append(r.state)
    assert got == ["failed"] * 3
    assert main(["sweep", "--resume", str(sw.dir)]) == 2  # the CLI: one error line, exit 2
    assert "in a row failed" in capsys.readouterr().err


def test_a_resumed_sweep_draws_new_parameters_not_its_first_trials_again(fake, tmp_path):
    sw = new_sweep(SweepConfig(net="net1", trials=4, epochs=2, pruner="none"), sweep_dir=tmp_path / "sw")
    got = []
    for r in run_sweep(sw, should_stop=lambda: len(got) >= 2):
        got.append(r)
    assert len(got) == 2
    got += list(run_sweep(open_sweep(sw.dir)))
    assert len(got) == 4
    drawn = [json.dumps(r.params, sort_keys=True) for r in got]
    assert len(set(drawn)) == 4, drawn
