import threading
from dataclasses import replace

import pytest

from maskrec.config import PRESETS, TrainConfig
from maskrec.inference import Predictor
from maskrec.runs import METRIC_KEYS, new_run, open_run
from maskrec.train import TrainingFailed, TrainingJob, fit


@pytest.fixture
def cfg(demo_dir):
    return replace(PRESETS["net1"], data=str(demo_dir), epochs=3, batch_size=32, seed=3)


def _strip(recs):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in recs]


@pytest.fixture(scope="module")
def straight(demo_dir, tmp_path_factory):
    """One uninterrupted 3-epoch run, the reference for reproducibility and resume."""
    cfg = replace(PRESETS["net1"], data=str(demo_dir), epochs=3, batch_size=32, seed=3)
    return _strip(fit(cfg, new_run(cfg, run_dir=tmp_path_factory.mktemp("straight") / "r")))


def test_short_training_learns_and_writes_the_run(cfg, tmp_path):
    run = new_run(replace(cfg, epochs=4), run_dir=tmp_path / "r")
    recs = list(fit(replace(cfg, epochs=4), run))
    assert [r["epoch"] for r in recs] == [1, 2, 3, 4]
    assert set(METRIC_KEYS) <= set(recs[0])
    assert recs[-1]["train_loss"] < recs[0]["train_loss"]
    assert run.metrics() == [{**r} for r in recs]
    for name in ("config.json", "metrics.jsonl", "last.pt", "best.pt", "errors.json"):
        assert (run.dir / name).exists(), name
    best = max(recs, key=lambda r: r["test_f1"])
    pred = Predictor.load(run.best_ckpt)
    assert pred.net == "net1" and pred.input_size == 32 and pred.metrics["epoch"] == best["epoch"]
    errors = run.read_json("errors.json")
    assert errors["epoch"] == 4 and len(errors["images"]) <= errors["n_wrong"]


def test_same_seed_same_metrics(cfg, straight, tmp_path):
    again = list(fit(cfg, new_run(cfg, run_dir=tmp_path / "b")))
    assert _strip(again) == straight
    other = replace(cfg, seed=4, epochs=1)
    assert _strip(fit(other, new_run(other, run_dir=tmp_path / "c"))) != straight[:1]


def test_stop_mid_epoch_then_resume_matches_an_uninterrupted_run(cfg, straight, tmp_path):
    run = new_run(cfg, run_dir=tmp_path / "stopped")
    stop = threading.Event()

    def on_progress(p):  # ask to stop in the middle of epoch 2
        if p.epoch == 2 and p.phase == "train" and p.batch == 3:
            stop.set()
    first = list(fit(cfg, run, stop.is_set, on_progress))
    assert [r["epoch"] for r in first] == [1]
    assert [r["epoch"] for r in run.metrics()] == [1]
    rest = list(fit(cfg, open_run(run.dir)))
    assert [r["epoch"] for r in rest] == [2, 3]
    assert _strip(first + rest) == straight


def test_stop_takes_effect_within_one_batch(cfg, tmp_path):
    run = new_run(cfg, run_dir=tmp_path / "r")
    batches = []
    stop = threading.Event()

    def on_progress(p):
        if p.phase == "train":
            batches.append(p.batch)
            stop.set()
    assert list(fit(cfg, run, stop.is_set, on_progress)) == []
    assert batches == [1]
    assert run.metrics() == [] and not run.last_ckpt.exists()


def test_diverging_loss_fails_with_a_message(cfg, tmp_path):
    bad = replace(cfg, lr=10.0, epochs=5)
    with pytest.raises(TrainingFailed, match="learning rate"):
        list(fit(bad, new_run(bad, run_dir=tmp_path / "r")))


def test_out_of_range_settings_are_rejected():
    for kw in ({"epochs": 0}, {"batch_size": 0}, {"lr": float("nan")}, {"dropout": 1.0},
               {"net": "net7"}, {"device": "tpu"}):
        with pytest.raises(ValueError):
            replace(TrainConfig(), **kw).validate()


def test_training_job_runs_in_the_background_and_records_status(cfg, tmp_path):
    run = new_run(cfg, run_dir=tmp_path / "r")
    job = TrainingJob(cfg, run).start()
    job.join(timeout=300)
    assert job.status == "done" and run.status()["state"] == "done"
    assert [r["epoch"] for r in job.history()] == [1, 2, 3]
    assert job.progress().epoch == 3


def test_training_job_failure_is_a_status_with_the_error(tmp_path):
    cfg = replace(PRESETS["net1"], data=str(tmp_path / "missing"), epochs=1)
    run = new_run(cfg, run_dir=tmp_path / "r")
    job = TrainingJob(cfg, run).start()
    job.join(timeout=60)
    assert job.status == "failed" and "no such folder" in job.error
    assert run.status()["state"] == "failed" and "no such folder" in run.status()["error"]


def test_a_job_without_a_free_slot_waits_visibly_as_queued(cfg, tmp_path):
    run = new_run(cfg, run_dir=tmp_path / "r")
    job = TrainingJob(cfg, run, slots=threading.Semaphore(0)).start()
    assert job.status == "queued" and run.status()["state"] == "queued"
    job.stop()
    job.join(timeout=10)
    assert job.status == "stopped" and run.metrics() == []


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from maskrec.train import lr_at
    const = TrainConfig(lr=0.01, epochs=12)
    assert {lr_at(const, t) for t in (0, 0.5, 3, 11.9)} == {0.01}
    cos = replace(const, schedule="cosine")
    assert lr_at(cos, 0) == pytest.approx(1e-4)  # warm-up starts at 1% of lr, never at 0
    assert lr_at(cos, 0.5) == pytest.approx(0.005)
    assert lr_at(cos, 1) == pytest.approx(0.01)  # peak after one epoch
    assert lr_at(cos, 6.5) == pytest.approx(0.005)  # half way down the cosine
    assert lr_at(cos, 12) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(replace(cos, epochs=5), 0.5) == pytest.approx(0.01)  # short runs warm up for a tenth
    falling = [lr_at(cos, 1 + k / 10) for k in range(111)]
    assert falling == sorted(falling, reverse=True)
    with pytest.raises(ValueError, match="schedule"):
        replace(const, schedule="step").validate()
