"""The benchmark measures what it claims: its baseline is the same computation done the slow way,
its ratios come from its own measurements, and the command runs end to end."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from maskrec import bench
from maskrec.config import PRESETS
from maskrec.runs import new_run
from maskrec.train import fit


def test_ratio_reads_better_as_larger_whichever_way_the_unit_runs():
    assert bench.row("x", "rate", 30.0, 10.0, "img/s", True)["ratio"] == pytest.approx(3.0)
    assert bench.row("x", "time", 10.0, 30.0, "s", False)["ratio"] == pytest.approx(3.0)
    r = bench.row("x", "time", 20.0, 30.0, "s", False, goal=3.0)
    assert r["met"] is False and r["ratio"] == pytest.approx(1.5)


def test_flop_count_matches_a_hand_count_of_net1():
    # 32x32: convs of the report's table (out, k) at 32,32,16,16,8,4... counted by hand from models.NET1
    from maskrec.models import spec
    s, c_in, size, total = spec("net1"), 3, 32, 0
    for row in s.convs:
        total += 2 * c_in * row.out * row.k * row.k * size * size
        c_in, size = row.out, size // 2 if row.pool else size
    total += 2 * c_in * size * size * 2
    assert bench.forward_flops("net1") == total


def test_naive_baseline_trains_the_same_model_as_fit(demo_dir, tmp_path):
    """Same seed, order, initial weights and preprocessing: with fit's speed switches off, the two
    pipelines differ only in where the pixels come from, so their test F1 must agree."""
    naive = bench.naive_train(str(demo_dir), "net1", 1, 64)
    cfg = replace(PRESETS["net1"], data=str(demo_dir), epochs=1, batch_size=64, channels_last=False, bf16=False)
    rec = list(fit(cfg, new_run(cfg, tmp_path / "run")))[-1]
    assert naive["test_f1"] == pytest.approx(rec["test_f1"], abs=0.01)


def test_scan_section_measures_both_sides(tmp_path):
    rows = bench.bench_scan(300, tmp_path)
    assert [r["what"] for r in rows] == ["scan 300 images (cold)", "scan 300 images (cached)"]
    for r in rows:
        assert r["ours"] > 0 and r["baseline"] > 0
        assert r["ratio"] == pytest.approx(r["baseline"] / r["ours"])
    assert len(list((tmp_path / "scan-300").rglob("*.jpg"))) == 300


def test_bench_command_quick_json(capsys):
    from maskrec.__main__ import main
    assert main(["bench", "--quick", "--only", "step", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["quick"] and [r["what"].split()[0] for r in res["rows"]] == ["net1", "net2", "matmul"]
    for r in res["rows"]:
        assert r["ours"] > 0 and r["baseline"] > 0
    for r in res["rows"][:2]:
        assert "GFLOP/s" in r["note"] and "of it" in r["note"]
    assert res["rows"][2]["unit"] == "GFLOP/s"  # the fp32 and bf16 ceilings the steps are judged against
    assert res["machine"]["cpu"] and isinstance(res["machine"]["flags"], list)


def test_bench_rejects_an_unknown_section(capsys):
    from maskrec.__main__ import main
    assert main(["bench", "--only", "warp"]) == 2
    assert "unknown bench section" in capsys.readouterr().err


def test_frame_section_times_a_frame_with_several_faces():
    """A frame benchmark that finds nobody times the detector alone; the row must say how many faces
    its frame holds, and on the dev scenes that is at least 4."""
    from tests.conftest import SCENES
    if not (SCENES / "images").is_dir():
        pytest.skip(f"dev scenes not found at {SCENES} (they live in ../shared, present in CI)")
    (r,) = bench.bench_frame(True, bench.REPO_ROOT / "checkpoints" / "net1.pt")
    assert r["faces"] >= 4 and f"{r['faces']} faces" in r["what"], r
    assert r["ours"] > 0 and r["baseline"] > 0


def _cpu_ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.mark.slow  # measured seconds; `pytest -m "not slow"` leaves it to CI
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU times from /proc (Linux)")
def test_training_beside_runs_a_training_load_for_the_block_only():
    """The busy rows are only worth something if the load really trains during the block: the
    child process must burn CPU inside it and be gone after it."""
    with bench.training_beside() as proc:
        t0 = _cpu_ticks(proc.pid)
        deadline = time.monotonic() + 30
        while _cpu_ticks(proc.pid) - t0 < 50 and time.monotonic() < deadline:  # half a CPU-second
            proc.poll()
            time.sleep(0.1)
        assert _cpu_ticks(proc.pid) - t0 >= 50 and proc.poll() is None
    assert proc.poll() is not None  # killed and reaped when the block ends


@pytest.mark.slow  # seconds: it scores the demo test split twice and times both
def test_tta_section_compares_flip_with_none_on_the_same_faces(demo_dir, monkeypatch):
    """The gain rows must be flip TTA's scores against the same Predictor's without it, and the cost
    rows flip's ms per face against none's (demo faces here; the dev sets in the real bench)."""
    import numpy as np

    from maskrec import engines
    from maskrec.data import discover, load_split
    from maskrec.inference import Predictor
    from maskrec.metrics import at_threshold
    ds = discover(demo_dir)
    monkeypatch.setattr(bench, "tta_sets", lambda: [("demo test", ds)])
    ckpt = bench.REPO_ROOT / "checkpoints" / "net1.pt"
    rows = bench.bench_tta(True, {"net1": ckpt})
    pred = Predictor.load(ckpt, engine=engines.choose())
    X, y, _ = load_split(ds, "test", pred.input_size)
    p = {tta: pred.predict_tensor(X, tta=tta) for tta in (False, True)}
    assert np.abs(p[True] - p[False]).max() > 1e-4  # the two sides really differ
    want = {tta: at_threshold(y.numpy(), p[tta], pred.threshold) for tta in (False, True)}
    (f1,) = [r for r in rows if r["unit"] == "f1" and "saved" in r["what"]]
    assert f1["baseline"] == pytest.approx(want[False]["f1"]) and f1["ours"] == pytest.approx(want[True]["f1"])
    (auc,) = [r for r in rows if r["unit"] == "auc"]
    assert auc["baseline"] == pytest.approx(want[False]["auc"]) and auc["ours"] == pytest.approx(want[True]["auc"])
    cost = [r for r in rows if r["unit"] == "ms/face"]
    assert len(cost) == 2 and all(r["ours"] > 0 and r["baseline"] > 0 for r in cost)
    assert all(r["ratio"] == pytest.approx(r["baseline"] / r["ours"]) for r in cost)
