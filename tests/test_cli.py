import json
import subprocess
import sys

import pytest

from maskrec.__main__ import main
from tests.conftest import REPO


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_and_user_errors_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "maskrec", "--help"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0 and "train" in r.stdout and "predict" in r.stdout
    r = subprocess.run([sys.executable, "-m", "maskrec", "scan", "/no/such/folder"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: no such folder") and "Traceback" not in r.stderr


def test_models(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    assert "net1  input 32x32  weights 402,770" in out and "net2  input 64x64  weights 1,814,866" in out


def test_demo_data_and_scan(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "demo-data", tmp_path / "d", "--n", 60, "--seed", 2)
    assert code == 0 and "wrote 60 demo images" in out
    code, out, _ = run_cli(capsys, "scan", tmp_path / "d", "--json")
    s = json.loads(out)
    assert code == 0 and s["total"] == 60 and s["layout"] == "report"
    assert sum(s["counts"]["test"].values()) == 15


def test_train_evaluate_predict_export(capsys, demo_dir, tmp_path):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--net", "net1", "--data", demo_dir, "--epochs", 2,
                             "--batch-size", 64, "--seed", 1, "--out", run_dir)
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert [ln.split()[0] for ln in lines] == ["1", "2"]
    ckpt = run_dir / "best.pt"

    code, out, _ = run_cli(capsys, "train", "--resume", run_dir, "--epochs", 3)
    assert code == 0 and "resuming" in out
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3

    code, out, _ = run_cli(capsys, "evaluate", ckpt, "--data", demo_dir, "--json")
    m = json.loads(out.splitlines()[-1])
    assert code == 0 and m["n"] == 120 and m["split"] == "test"
    assert {"f1", "auc", "accuracy", "precision", "recall", "n"} <= set(m)

    images = sorted((demo_dir / "test").glob("*.jpg"))[:3]
    code, out, _ = run_cli(capsys, "predict", ckpt, *images, "--json", "--detector", "none")  # demo images are face crops
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert code == 0 and [r["image"] for r in rows] == [str(p) for p in images]
    face = rows[0]["faces"][0]
    assert face["label"] in ("mask", "no_mask") and 0 <= face["p_mask"] <= 1 and len(face["box"]) == 4

    (tmp_path / "bad.jpg").write_text("nope")
    code, out, _ = run_cli(capsys, "predict", ckpt, tmp_path / "bad.jpg", "--json")
    assert code == 2 and "error" in json.loads(out)

    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.pt")):
        code, out, err = run_cli(capsys, "export", ckpt, "--format", fmt, tmp_path / name)
        assert code == 0, err
        assert (tmp_path / name).stat().st_size > 100_000 and "max |difference|" in out


@pytest.mark.parametrize("argv,msg", [
    (["train", "--net", "net1", "--epochs", "0"], "epochs must be"),
    (["train", "--net", "resnet"], "unknown net"),
    (["train"], "needs --net"),
    (["train", "--resume", "/no/run"], "no run at"),
    (["evaluate", "/no/ckpt.pt", "--data", "."], "no checkpoint file"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, msg):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and msg in err
