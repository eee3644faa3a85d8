import json
import subprocess
import sys

import pytest
from PIL import Image

from maskrec import faces
from maskrec.__main__ import main
from tests.conftest import REPO
from tests.test_faces import jpeg_108mp

NET1 = REPO / "checkpoints" / "net1.pt"


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow  # 3 s: out of the quick subset, which stays under 90 s (issue 36)
def test_help_and_user_errors_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "maskrec", "--help"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0 and "train" in r.stdout and "predict" in r.stdout
    r = subprocess.run([sys.executable, "-m", "maskrec", "scan", "/no/such/folder"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: no such folder") and "Traceback" not in r.stderr


HEAVY = ("torch", "sklearn", "onnxruntime", "cv2", "optuna")


# `python -m maskrec ARGV` run by runpy, as -m does, printing at exit every module it imported
# (-X importtime misses modules loaded by importlib.import_module, as the registry loads commands).
LIST_MODULES = ("import atexit, json, runpy, sys; "
                "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr)); "
                "runpy.run_module('maskrec', run_name='__main__', alter_sys=True)")


def imported_by(*argv) -> set[str]:
    r = subprocess.run([sys.executable, "-c", LIST_MODULES, *argv], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return set(json.loads(r.stderr.splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"], ["models"]], ids=["help", "models"])
def test_start_up_loads_no_heavy_library(argv):
    """The top-level parser reads the registry alone, and `models` counts weights off the tables:
    neither imports torch, scikit-learn, ONNX Runtime, OpenCV or Optuna, nor any other command."""
    mods = imported_by(*argv)
    assert "maskrec.cli.registry" in mods and "json" in mods  # the listing works: this test can fail
    assert not {m.split(".")[0] for m in mods} & set(HEAVY)
    commands = {m for m in mods if m.startswith("maskrec.cli.")} - {"maskrec.cli.main", "maskrec.cli.common",
                                                                     "maskrec.cli.registry"}
    assert commands == ({"maskrec.cli.models"} if argv == ["models"] else set())


def test_every_registered_command_has_its_module():
    from maskrec.cli import build_parser
    from maskrec.cli.registry import COMMANDS
    parser = build_parser()  # every command's own options: imports each module
    names = [c.name for c in COMMANDS]
    assert len(set(names)) == len(names)
    for c in COMMANDS:
        mod = sys.modules[c.module]
        assert callable(mod.add_arguments) and callable(mod.run)
        assert parser.parse_args([c.name, *{"demo-data": ["d"], "scan": ["d"], "evaluate": ["c", "--data", "d"],
                                            "threshold": ["c", "--data", "d"], "predict": ["c", "i"],
                                            "video": ["v", "--out", "o"], "export": ["c", "--format", "onnx", "o"],
                                            "review": ["d"], "relabel": ["d", "f", "--to", "0"],
                                            "soup": ["a", "b", "--out", "o"],
                                            }.get(c.name, [])]).func is mod.run


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


@pytest.mark.slow  # 5 s: out of the quick subset, which stays under 90 s (issue 36)
def test_train_recipe_and_precision_options(capsys, demo_dir, tmp_path):
    """--recipe sized scales the batch to the data as the Train page does; --precision is stated in
    the checkpoint; explicit options still win over the recipe."""
    from maskrec.models import checkpoint
    from maskrec.config import sized_recipe
    from maskrec.train.runs import open_run
    code, out, err = run_cli(capsys, "train", "--net", "net1", "--data", demo_dir, "--recipe", "sized", "--epochs", 1,
                             "--precision", "bf16", "--out", tmp_path / "a")
    assert code == 0, err
    assert "recipe sized to the data: batch 16 instead of the report's 512" in out
    cfg = open_run(tmp_path / "a").config()
    assert cfg.batch_size == sized_recipe("net1", 360)[0].batch_size == 16 and cfg.epochs == 1 and cfg.bf16 is True
    assert checkpoint.load(tmp_path / "a" / "last.pt")["precision"] == "bf16"
    code, _, err = run_cli(capsys, "train", "--net", "net1", "--data", demo_dir, "--recipe", "sized", "--epochs", 1,
                           "--batch-size", 40, "--precision", "fp32", "--out", tmp_path / "b")
    assert code == 0, err
    assert open_run(tmp_path / "b").config().batch_size == 40
    assert checkpoint.load(tmp_path / "b" / "last.pt")["precision"] == "fp32"


@pytest.mark.slow  # 2 s: out of the quick subset, which stays under 90 s (issue 36)
def test_train_with_a_validation_split_prints_validation_per_epoch_and_test_once_at_the_end(capsys, demo_dir, tmp_path):
    """The epochs are judged on validation; the test split only reports, once the run has ended."""
    code, out, err = run_cli(capsys, "train", "--net", "net1", "--data", demo_dir, "--epochs", 2, "--batch-size", 64,
                             "--val-fraction", 0.25, "--out", tmp_path / "v")
    assert code == 0, err
    header = next(ln for ln in out.splitlines() if ln.split()[:1] == ["epoch"])
    assert header.split() == ["epoch", "train_loss", "val_loss", "train_err", "val_err", "train_auc", "val_auc",
                              "train_f1", "val_f1", "sec"]
    recs = [json.loads(ln) for ln in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    epochs = [ln.split() for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert [float(e[8]) for e in epochs] == [round(r["val_f1"], 4) for r in recs]
    tail = out.strip().splitlines()[-1]
    assert tail.startswith("test split at the last epoch") and tail.endswith(f"F1 {recs[-1]['test_f1']:.4f}")
    lines = out.strip().splitlines()
    assert lines[0].startswith("run ") and not any(tok.startswith("test") for ln in lines[1:-1] for tok in ln.split())


@pytest.mark.slow  # 6 s: out of the quick subset, which stays under 90 s (issue 36)
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
    assert code == 1 and "error" in json.loads(out)

    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.pt")):
        code, out, err = run_cli(capsys, "export", ckpt, "--format", fmt, tmp_path / name)
        assert code == 0, err
        assert (tmp_path / name).stat().st_size > 100_000 and "max |difference|" in out


@pytest.mark.parametrize("argv,msg", [
    (["train", "--net", "net1", "--epochs", "0"], "epochs must be"),
    (["train", "--net", "resnet"], "unknown net"),
    (["train"], "needs --net"),
    (["train", "--resume", "/no/run"], "no run at"),
    (["train", "--net", "net1", "--init", "/no/ckpt.pt"], "cannot start net1 from /no/ckpt.pt: no checkpoint file"),
    (["evaluate", "/no/ckpt.pt", "--data", "."], "no checkpoint file"),
    (["train", "--net", "net2", "--distill", "/no/t.pt"], "cannot teach with /no/t.pt: no checkpoint file"),
    (["train", "--net", "net2", "--distill", "/no/t.pt", "--distill-weight", "0"], "distillation weight must be"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, msg):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and msg in err


@pytest.mark.parametrize("kind,said", [({"flag": 0x1}, "password-protected"), ({"method": 9}, "Deflate64")],
                         ids=["encrypted", "deflate64"])
def test_a_zip_python_cannot_read_exits_2_with_what_to_do_and_makes_no_run(capsys, tmp_path, kind, said):
    """scan, train and evaluate each exited 1 with zipfile's traceback, and train left a failed run."""
    from maskrec.config import runs_dir
    from tests.salted import report_layout, zip_python_cannot_read
    z = zip_python_cannot_read(tmp_path / "data.zip", report_layout(tmp_path / "data"), **kind)
    for argv in (["scan", z], ["train", "--net", "net1", "--data", z, "--out", tmp_path / "run"],
                 ["evaluate", NET1, "--data", z]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and said in err and "zip the folder again" in err and "Traceback" not in err, argv
    assert not (tmp_path / "run").exists() and not list(runs_dir().glob("*"))


# ------------------------------------------------------------------ predict: one bad input of many

@pytest.fixture
def inputs(tmp_path):
    """A good face crop, and each kind of broken input with the reason predict should give."""
    from maskrec.data.synth import render
    good = tmp_path / "good.jpg"
    render(0, seed=3)[0].save(good, quality=90)
    whole = good.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a picture")
    (tmp_path / "folder.jpg").mkdir()
    bad = {"cut.jpg": "truncated file", "empty.jpg": "empty file", "text.jpg": "not an image",
           "missing.jpg": "No such file or directory", "folder.jpg": "Is a directory"}
    return good, {tmp_path / name: why for name, why in bad.items()}


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_predict_goes_through_every_input_and_exits_1_if_any_failed(capsys, inputs, as_json):
    good, bad = inputs
    paths = [good, *bad, good]  # the good image after the bad ones is still processed
    code, out, err = run_cli(capsys, "predict", NET1, *paths, "--detector", "none", *(["--json"] * as_json))
    assert code == 1
    if as_json:  # one object per input, in order
        rows = [json.loads(ln) for ln in out.splitlines()]
        assert [r["image"] for r in rows] == [str(p) for p in paths]
        assert rows[0]["faces"] and rows[-1]["faces"]
        for row, why in zip(rows[1:-1], bad.values()):
            assert set(row) == {"image", "error"} and why in row["error"], row
    else:  # results on stdout, one "PATH: error: WHY" line per bad input on stderr
        assert [ln.split(": ")[0] for ln in out.splitlines()] == [str(good), str(good)]
        lines = err.splitlines()
        assert [ln.split(": error: ")[0] for ln in lines] == [str(p) for p in bad]
        assert all(why in ln for ln, why in zip(lines, bad.values())), lines


def test_predict_quotes_a_name_with_a_newline_so_each_result_stays_one_line(capsys, inputs):
    """A newline in a file name printed raw split one result over two lines, and bytes that are
    not UTF-8 could not be printed at all; such names are quoted with repr's escapes."""
    good, _ = inputs
    odd = good.with_name("two\nlines.jpg")
    odd.write_bytes(good.read_bytes())
    missing = good.with_name("gone\r\x1b[31m.jpg")
    code, out, err = run_cli(capsys, "predict", NET1, odd, missing, good, "--detector", "none")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(repr(str(odd)) + ": ") and lines[1].startswith(f"{good}: ")
    assert err.splitlines() == [f"{str(missing)!r}: error: No such file or directory"]
    code, out, _ = run_cli(capsys, "predict", NET1, odd, "--detector", "none", "--json")
    assert code == 0 and json.loads(out)["image"] == str(odd)


def test_predict_exits_0_when_all_worked_and_2_on_a_bad_checkpoint(capsys, inputs, tmp_path):
    good, _ = inputs
    code, out, _ = run_cli(capsys, "predict", NET1, good, good, "--detector", "none")
    assert code == 0 and len(out.splitlines()) == 2
    code, out, err = run_cli(capsys, "predict", tmp_path / "no.pt", good)
    assert code == 2 and out == "" and err.startswith("error: no checkpoint file")


def test_predict_and_evaluate_take_an_engine(capsys, inputs, demo_dir):
    """--engine picks the inference engine: the exact ones agree on P(mask); evaluate defaults to an
    exact one (the checkpoint's own scores), so asking for torch gives the same figures."""
    from maskrec.infer.engines import available
    good, _ = inputs
    p = {}
    for engine in [e for e in ("torch", "onnx") if e in available()]:
        code, out, _ = run_cli(capsys, "predict", NET1, good, "--detector", "none", "--json", "--engine", engine)
        assert code == 0
        p[engine] = json.loads(out)["faces"][0]["p_mask"]
    assert max(p.values()) - min(p.values()) <= 1e-3, p
    figures = []
    for extra in ([], ["--engine", "torch"]):
        code, out, _ = run_cli(capsys, "evaluate", NET1, "--data", demo_dir, "--json", *extra)
        assert code == 0
        figures.append(json.loads(out.splitlines()[-1]))
    assert figures[0]["f1"] == pytest.approx(figures[1]["f1"], abs=1e-9) and figures[0]["auc"] == pytest.approx(figures[1]["auc"], abs=1e-6)
    with pytest.raises(SystemExit) as e:  # argparse: not one of the registry's engines
        main(["predict", str(NET1), str(good), "--engine", "warp"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_predict_tta_averages_a_face_and_its_mirror(capsys, inputs, tmp_path):
    from PIL import Image, ImageOps
    good, _ = inputs
    mirror = tmp_path / "mirror.png"
    ImageOps.mirror(Image.open(good).convert("RGB")).save(mirror)
    plain = tmp_path / "plain.png"
    Image.open(good).convert("RGB").save(plain)  # lossless both: only the flip differs
    p = {}
    for name, path, extra in (("plain", plain, []), ("mirror", mirror, []), ("tta", plain, ["--tta"]),
                              ("no-tta", plain, ["--no-tta"])):
        code, out, _ = run_cli(capsys, "predict", NET1, path, "--detector", "none", "--json", "--engine", "torch", *extra)
        assert code == 0
        p[name] = json.loads(out)["faces"][0]["p_mask"]
    assert p["tta"] == pytest.approx((p["plain"] + p["mirror"]) / 2, abs=2e-3)
    assert p["no-tta"] == p["plain"]


@pytest.mark.skipif(bool(faces.available()[faces.DEFAULT]), reason=faces.available()[faces.DEFAULT] or "ok")
def test_predict_with_the_default_detector_reports_bad_inputs_too(capsys, inputs):
    good, bad = inputs
    code, out, _ = run_cli(capsys, "predict", NET1, good, *bad, "--json")
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert code == 1 and len(rows) == 1 + len(bad)
    assert isinstance(rows[0]["faces"], list) and all("error" in r for r in rows[1:])


def test_an_image_that_fails_in_detection_is_reported_and_the_next_still_runs(capsys, inputs, tmp_path,
                                                                              monkeypatch):
    good, _ = inputs
    odd = tmp_path / "odd.png"
    Image.new("RGB", (300, 100), "grey").save(odd)

    class Flaky:  # decodes fine, then fails inside the detector, as a cv2 error or MemoryError would
        name = "flaky"

        def detect(self, rgb):
            if rgb.shape[1] == 300:
                raise RuntimeError("simulated failure in detection")
            return [faces.Box(0, 0, rgb.shape[1], rgb.shape[0], 0.9)]
    monkeypatch.setattr(faces, "make_detector", lambda name, **kw: Flaky())
    code, out, _ = run_cli(capsys, "predict", NET1, odd, good, "--json", "--detector", "haar")
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert code == 1 and [r["image"] for r in rows] == [str(odd), str(good)]
    assert rows[0]["error"] == "RuntimeError: simulated failure in detection"
    assert len(rows[1]["faces"]) == 1


# ------------------------------------------------------------------------ predict: a 108 MP photo

def test_predict_reads_a_108_megapixel_photo_reduced_and_gives_boxes_in_its_pixels(capsys, tmp_path,
                                                                                   monkeypatch):
    photo = jpeg_108mp(tmp_path / "phone.jpg", orientation=6)  # shown upright: 9000 x 12000
    code, out, err = run_cli(capsys, "predict", NET1, photo, "--json", "--detector", "none")
    assert code == 0, out + err
    assert json.loads(out)["faces"][0]["box"] == [0, 0, 9000, 12000]

    seen = []

    class OneBox:
        name = "one-box"

        def detect(self, rgb):
            seen.append(rgb.shape)
            return [faces.Box(100, 50, 300, 250, 0.9)]
    monkeypatch.setattr(faces, "make_detector", lambda name, **kw: OneBox())
    code, out, err = run_cli(capsys, "predict", NET1, photo, "--json", "--detector", "haar")
    assert code == 0, out + err
    assert seen == [(3000, 2250, 3)]  # the detector got the 1/4-size decode
    assert json.loads(out)["faces"][0]["box"] == [400, 200, 1200, 1000]  # in the file's pixels


@pytest.mark.slow  # 5 s: out of the quick subset, which stays under 90 s (issue 36)
def test_threshold_is_picked_on_a_dataset_and_saved(capsys, demo_dir, tmp_path):
    import shutil

    from maskrec.infer.predictor import Predictor
    ckpt = tmp_path / "c.pt"
    shutil.copy(NET1, ckpt)
    code, out, err = run_cli(capsys, "threshold", ckpt, "--data", demo_dir, "--max-fpr", 0.1, "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["saved"] and r["fp"] / (r["fp"] + r["tn"]) <= 0.1
    from maskrec.models import checkpoint
    assert Predictor.load(ckpt).threshold == pytest.approx(r["threshold"])
    assert "bare faces called mask <= 0.1" in checkpoint.load(ckpt)["threshold_how"]
    assert checkpoint.load(ckpt)["operating_point"] == "saved"  # --max-fpr is the old name of --max-bare-mask
    code, out, _ = run_cli(capsys, "evaluate", ckpt, "--data", demo_dir, "--json")
    m = json.loads(out.splitlines()[-1])
    assert m["fp"] == r["fp"] and m["tp"] == r["tp"]  # evaluate now uses the saved threshold
    code, out, _ = run_cli(capsys, "threshold", ckpt, "--data", demo_dir, "--dry-run", "--json")
    assert code == 0 and not json.loads(out)["saved"]
    assert Predictor.load(ckpt).threshold == pytest.approx(r["threshold"])
