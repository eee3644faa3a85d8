import json
import os
import subprocess
import sys

import pytest

from maskrec.config import TrainConfig
from maskrec.runs import list_runs, new_run


def test_run_folder_roundtrip_and_listing(tmp_path):
    cfg = TrainConfig(epochs=3)
    run = new_run(cfg, root=tmp_path)
    assert run.config() == cfg
    run.append_metrics({"epoch": 1, "test_f1": float("nan")})
    run.append_metrics({"epoch": 2, "test_f1": 0.5})
    assert [r["epoch"] for r in run.metrics()] == [1, 2]
    assert run.metrics()[0]["test_f1"] is None  # NaN is stored as null, still valid JSON
    assert [r.id for r in list_runs(tmp_path)] == [run.id]


def test_a_torn_metrics_line_is_ignored(tmp_path):
    run = new_run(TrainConfig(), root=tmp_path)
    (run.dir / "metrics.jsonl").write_text(json.dumps({"epoch": 1}) + "\n{\"epoch\": 2, \"tra")
    assert run.metrics() == [{"epoch": 1}]


def test_a_new_run_holds_its_config_and_no_state(tmp_path):
    """Its state is its trainer's to write (the job's queued, the CLI's running), once."""
    run = new_run(TrainConfig(), root=tmp_path)
    assert sorted(p.name for p in run.dir.iterdir()) == ["config.json"] and run.status() == {}


def test_a_running_status_from_a_dead_process_reads_as_interrupted(tmp_path):
    from maskrec.runstate import RunState, read
    run = new_run(TrainConfig(), root=tmp_path)
    RunState(run).to("running")
    assert read(run)["state"] == "running"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    st = json.loads((run.dir / "status.json").read_text())
    st["pid"], st["token"] = int(dead.stdout), "another-process"
    (run.dir / "status.json").write_text(json.dumps(st))
    assert run.status()["state"] == "running"  # the file as written: the folder does not judge it
    assert read(run)["state"] == "interrupted"
    st["pid"] = os.getpid()  # our pid, another process's token: an earlier server's (pids are reused)
    (run.dir / "status.json").write_text(json.dumps(st))
    assert read(run)["state"] == "interrupted"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from maskrec.atomic import atomic_write, atomic_write_text
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    def fail(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match="No space left"):  # the writer's error reaches the caller
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
