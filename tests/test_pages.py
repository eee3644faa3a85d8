"""Every page in Streamlit's AppTest: renders without exception, and its key widgets work."""
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from maskrec.config import PRESETS
from maskrec.train.runs import list_runs, new_run
from maskrec.train.loop import fit
from tests.conftest import REPO

APP = str(REPO / "streamlit_app.py")


@pytest.fixture(autouse=True)
def small_demo(monkeypatch):
    monkeypatch.setenv("MASKREC_DEMO_N", "240")
    monkeypatch.chdir(REPO)


def page(name: str) -> AppTest:
    """The entry point for home; a page file on its own otherwise (AppTest loses button clicks on
    pages reached through st.navigation + switch_page, so widgets are tested page by page)."""
    at = AppTest.from_file(APP if name == "home" else str(REPO / "pages" / f"{name}.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def field(at: AppTest, label: str):
    """The Train page's number field with this label (its key carries the recipe's value, so that
    switching recipe or dataset refills it)."""
    found = [w for w in at.number_input if w.label == label]
    assert len(found) == 1, [w.label for w in at.number_input]
    return found[0]


@pytest.mark.slow  # 7 s: out of the quick subset, which stays under 90 s (issue 36)
def test_navigation_reaches_every_page():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for name in ("1_Dataset", "2_Train", "3_Evaluate", "4_Recognize", "5_Cameras"):
        at.switch_page(f"pages/{name}.py")
        at.run()
        assert not at.exception, (name, at.exception)
        assert at.title[0].value


def test_home_lists_every_page():
    at = page("home")
    text = " ".join(m.value for m in at.markdown)
    for word in ("Dataset", "Train", "Evaluate", "Recognize", "Cameras"):
        assert word in text


def test_dataset_page_on_the_demo_data():
    at = page("1_Dataset")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "240" and metrics["Skipped files"] == "0"
    assert metrics["Pairs leaking train↔test"] == "0"  # the demo faces are all different (test_health)
    at.radio(key="net_view").set_value(64).run()
    assert not at.exception
    assert any("64×64" in m.value for m in at.markdown)


def test_dataset_page_writes_a_whole_median_as_a_whole_number(tmp_path, monkeypatch):
    """Image sides are whole pixels: a median of 48.0 (the mean of the middle two) reads 48, like the
    min and max beside it."""
    from tests.conftest import save_image
    for i, w in enumerate((40, 48, 48, 56)):  # an even count: the median is a mean, 48.0
        save_image(tmp_path / "data" / ("with_mask" if i % 2 else "without_mask") / f"{i}.png", size=(w, 40))
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(tmp_path))
    at = page("1_Dataset")
    at.sidebar.radio(key="dataset_source").set_value("Folder on the server").run()
    at.sidebar.text_input(key="dataset_folder").input(str(tmp_path / "data")).run()
    assert not at.exception, at.exception
    (sizes,) = [m.value for m in at.markdown if "median" in m.value]
    assert "Width min / median / max: 40 / 48 / 56 px" in sizes, sizes
    assert "Height min / median / max: 40 / 40 / 40 px" in sizes, sizes


def test_dataset_page_refuses_a_folder_outside_the_data_roots(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(tmp_path / "allowed"))
    at = page("1_Dataset")
    at.sidebar.radio(key="dataset_source").set_value("Folder on the server").run()
    at.sidebar.text_input(key="dataset_folder").input("/etc").run()
    assert any("outside the allowed data folders" in e.value for e in at.sidebar.error)


@pytest.mark.slow  # 2 s: out of the quick subset, which stays under 90 s (issue 36)
def test_train_page_starts_a_run_and_shows_its_charts():
    at = page("2_Train")
    assert any("No runs yet" in i.value for i in at.info)
    field(at, "Epochs").set_value(2)
    field(at, "Batch size").set_value(64)
    at.button(key="start_training").click().run()
    assert not at.exception, at.exception
    runs = list_runs()
    assert len(runs) == 1 and runs[0].config().epochs == 2
    from ui.common import registry  # the same cached registry the page used
    job = registry().get("run", runs[0].id)
    job.join(timeout=300)
    assert job.status == "done", job.error
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Epochs done"] == "2/2"
    assert len(at.get("plotly_chart")) >= 1


def test_train_pages_runs_table_reads_a_training_run_as_its_header_does_with_no_none():
    """Issue 19: a second run at epoch 5 of 10 was listed under "All runs" as 0/10 with None in every
    metric cell; the table reads what the header reads, and leaves a cell with no number empty."""
    import os
    import time

    from maskrec.train.runstate import RunState
    cfg = replace(PRESETS["net1"], epochs=10)
    first, second = new_run(cfg), new_run(cfg)
    for run, epochs in ((first, 10), (second, 0)):
        state = RunState(run)  # this live process trains them, as far as the page can tell
        state.to("running")
        for e in range(1, epochs + 1):
            run.append_metrics({"epoch": e, "test_f1": 0.8, "test_auc": 0.9, "test_error": 0.1, "test_loss": 0.3,
                                "train_loss": 0.3, "train_f1": 0.8, "seconds": 1.0})
        if epochs == 10:
            state.to("done")
    os.utime(first.dir / "config.json", (time.time() - 60, time.time() - 60))  # the second is the newest

    def table(at):
        (df,) = [d.value for d in at.dataframe if "epochs" in d.value.columns]
        assert not df.isna().any().any() and not {"None", "nan"} & set(df.astype(str).values.ravel()), df
        return {r["run"]: r for r in df.to_dict("records")}
    at = page("2_Train")
    assert {m.label: m.value for m in at.metric}["Epochs done"] == "0/10"
    row = table(at)[second.id]
    assert (row["state"], row["epochs"], row["best_test_f1"], row["test_auc"]) == ("running", "0/10", "", "")
    for e in range(1, 6):
        second.append_metrics({"epoch": e, "test_f1": 0.6 + 0.01 * e, "test_auc": 0.9, "test_error": 0.1,
                               "test_loss": 0.3, "train_loss": 0.3, "train_f1": 0.8, "seconds": 1.0})
    at.run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Epochs done"] == "5/10"
    rows = table(at)
    assert (rows[second.id]["state"], rows[second.id]["epochs"], rows[second.id]["best_test_f1"]) == ("running", "5/10", "0.6500")
    assert (rows[first.id]["state"], rows[first.id]["epochs"]) == ("done", "10/10")


@pytest.mark.slow  # 5 s: out of the quick subset, which stays under 90 s (issue 36)
def test_evaluate_page_judges_a_run_and_saves_a_threshold(demo_dir, monkeypatch):
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(demo_dir.parent))
    cfg = replace(PRESETS["net1"], data=str(demo_dir), epochs=1, batch_size=64, val_fraction=0.3)
    run = new_run(cfg)
    list(fit(cfg, run))
    shipped = (REPO / "checkpoints" / "net1.pt").read_bytes()
    at = page("3_Evaluate")
    # point the sidebar at the small set the run used, then pick the run's checkpoint
    at.sidebar.radio(key="dataset_source").set_value("Folder on the server").run()
    at.sidebar.text_input(key="dataset_folder").input(str(demo_dir)).run()
    at.selectbox(key="ckpt_choice").set_value(f"run: {run.id} (best)").run()
    assert not at.exception, at.exception
    assert {m.label for m in at.metric} >= {"F1", "AUC", "Accuracy", "Unsure"}
    assert any("test** figures" in i.value for i in at.info)  # the test split is said to be for reporting
    at.radio(key="threshold_how").set_value("Best F1").run()
    save = [b for b in at.button if b.label.startswith("Save threshold")][0]
    assert save.disabled  # never saved from test figures
    at.selectbox(key="eval_split").set_value("val").run()
    assert not at.exception, at.exception and not any("test** figures" in i.value for i in at.info)
    at.radio(key="threshold_how").set_value("Cap on bare faces called mask").run()
    save = [b for b in at.button if b.label.startswith("Save threshold")][0]
    assert not save.disabled
    save.click().run()
    assert any(f"into {run.best_ckpt}" in s.value for s in at.success)
    from maskrec.infer.predictor import Predictor
    pred = Predictor.load(run.best_ckpt)
    assert pred.op.name == "capped" and pred.op.picked_on["bare_as_mask"]["rate"] <= 0.03
    at.run()  # the saved point is listed and measured beside the others
    tables = [d.value for d in at.dataframe if "operating point" in d.value.columns]
    assert tables and "capped" in set(tables[0]["operating point"])
    assert (REPO / "checkpoints" / "net1.pt").read_bytes() == shipped


def test_recognize_page_renders():
    page("4_Recognize")


def test_dataset_page_takes_an_uploaded_zip(demo_dir):
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(demo_dir.rglob("*.jpg"))[:80]:
            z.write(f, "upload/" + str(f.relative_to(demo_dir)))
    at = page("1_Dataset")
    at.sidebar.radio(key="dataset_source").set_value("Upload a .zip").run()
    assert "1024 MB" in at.sidebar.file_uploader(key="dataset_zip").proto.label  # the limit is said in the UI
    at.sidebar.file_uploader(key="dataset_zip").upload("data.zip", buf.getvalue(), "application/zip").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "80"


def test_dataset_page_explains_a_zip_that_escapes(tmp_path):
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../evil.jpg", b"x")
    at = page("1_Dataset")
    at.sidebar.radio(key="dataset_source").set_value("Upload a .zip").run()
    at.sidebar.file_uploader(key="dataset_zip").upload("evil.zip", buf.getvalue(), "application/zip").run()
    assert not at.exception
    assert any("outside the target folder" in w.value for w in at.sidebar.warning)


@pytest.mark.parametrize("kind,said", [({"flag": 0x1}, "password-protected"), ({"method": 9}, "Deflate64")],
                         ids=["encrypted", "deflate64"])
@pytest.mark.slow  # 2 s: out of the quick subset, which stays under 90 s (issue 36)
def test_dataset_page_warns_about_a_zip_python_cannot_read_and_keeps_no_copy(tmp_path, kind, said):
    """An encrypted or Deflate64 upload drew a red exception; each refused upload stayed in cache/uploads."""
    from maskrec.config import cache_dir
    from tests.salted import report_layout, zip_python_cannot_read
    z = zip_python_cannot_read(tmp_path / "data.zip", report_layout(tmp_path / "data"), **kind)
    at = page("1_Dataset")
    at.sidebar.radio(key="dataset_source").set_value("Upload a .zip").run()
    at.sidebar.file_uploader(key="dataset_zip").upload("data.zip", z.read_bytes(), "application/zip").run()
    assert not at.exception, at.exception
    assert any(said in w.value and "zip the folder again" in w.value for w in at.sidebar.warning)
    assert not list((cache_dir() / "uploads").glob("*"))


def _start_run_and_wait(at):
    """Press Start training, wait for the job the page started, and redraw the page."""
    at.button(key="start_training").click().run()
    assert not at.exception, at.exception
    (run,) = list_runs()
    from ui.common import registry  # the same cached registry the page used
    job = registry().get("run", run.id)
    job.join(timeout=300)
    assert not job.alive, "the run hangs"
    at.run()
    assert not at.exception, at.exception
    return job


def test_train_page_refuses_out_of_range_settings_and_starts_nothing():
    at = page("2_Train")
    field(at, "Epochs").set_value(0)
    field(at, "Batch size").set_value(-5)
    field(at, "Learning rate").set_value(50.0)
    field(at, "Weight decay").set_value(2.0)
    at.button(key="start_training").click().run()
    assert not at.exception, at.exception
    (err,) = [e.value for e in at.error]
    for word in ("epochs must be 1..10000, got 0", "batch size must be 1..65536, got -5",
                 "learning rate must be in (0, 10], got 50.0", "weight decay must be in [0, 1], got 2.0"):
        assert word in err, err
    assert list_runs() == []
    at.selectbox[0].set_value("net2").run()
    field(at, "Dropout").set_value(1.0)
    at.button(key="start_training").click().run()
    assert any("dropout must be in [0, 1), got 1.0" in e.value for e in at.error)
    assert list_runs() == []


def test_train_page_shows_a_diverging_run_as_failed_with_the_reason():
    at = page("2_Train")
    field(at, "Epochs").set_value(20)
    field(at, "Batch size").set_value(64)
    field(at, "Learning rate").set_value(10.0)
    job = _start_run_and_wait(at)
    assert job.status == "failed"
    (err,) = [e.value for e in at.error]
    assert err.startswith("Training failed") and "diverged" in err and "lower the learning rate" in err
    assert "Traceback" not in err


def test_train_page_explains_an_empty_test_split(tmp_path, monkeypatch):
    from tests.conftest import save_image
    data = tmp_path / "data" / "d"
    for i in range(8):
        save_image(data / "train" / f"{i:06d}_{i % 2}.jpg")
    (data / "test").mkdir()
    (data / "test" / "000100_0.jpg").write_text("not an image")
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(tmp_path / "data"))
    at = page("2_Train")
    at.sidebar.radio(key="dataset_source").set_value("Folder on the server").run()
    at.sidebar.text_input(key="dataset_folder").input(str(data)).run()
    field(at, "Epochs").set_value(1)
    job = _start_run_and_wait(at)
    assert job.status == "failed"
    (err,) = [e.value for e in at.error]
    assert "the test split has no usable images" in err and "Traceback" not in err


def test_train_page_sizes_the_first_run_to_the_data_and_keeps_the_report_recipe_one_click_away():
    from maskrec.config import sized_recipe
    at = page("2_Train")
    n_train = 180  # MASKREC_DEMO_N=240, a quarter held out for test
    sized, _ = sized_recipe("net1", n_train)
    assert at.radio(key="recipe").value == "sized"
    assert field(at, "Batch size").value == sized.batch_size < PRESETS["net1"].batch_size
    said = " ".join(c.value for c in at.caption)
    assert f"batch {sized.batch_size} instead of the report's 512" in said and "180 train images" in said
    at.radio(key="recipe").set_value("report").run()
    assert field(at, "Batch size").value == 512 and "report's recipe" in " ".join(c.value for c in at.caption)
    at.radio(key="recipe").set_value("sized").run()
    at.button(key="start_training").click().run()
    assert not at.exception, at.exception
    (run,) = list_runs()
    from ui.common import registry
    registry().get("run", run.id).stop()  # what is tested is the config the defaults start, not the training
    registry().get("run", run.id).join(timeout=120)
    assert run.config().batch_size == sized.batch_size and run.config().epochs == sized.epochs


# ------------------------------------------------------------------ the sweep (Train: New run -> Sweep; Evaluate: Sweeps)

@pytest.fixture
def fast_fit(monkeypatch):
    """Every trial's training in milliseconds (tests/test_sweep.py's stand-in for fit): the pages are
    what is tested here, in-process, so the stand-in reaches the sweep's job thread too."""
    from maskrec.train import run as trainrun
    from tests.test_sweep import Calls, _fake_fit
    calls = Calls()
    monkeypatch.setattr(trainrun, "fit", _fake_fit(calls))
    return calls


def sweep_mode(at: AppTest) -> AppTest:
    at.radio(key="new_kind").set_value("Sweep").run()
    assert not at.exception, at.exception
    return at


def cells(at: AppTest) -> tuple[list[list[str]], list[str]]:
    """The trials table's cells and columns (the one table with a "trial" column)."""
    (df,) = [d.value for d in at.dataframe if "trial" in d.value.columns]
    return df.astype(str).values.tolist(), list(df.columns)


@pytest.mark.slow  # 8 s: out of the quick subset, which stays under 90 s (issue 36)
def test_train_page_starts_a_sweep_and_shows_its_trials(fast_fit):
    from maskrec.train.sweep import list_sweeps
    at = sweep_mode(page("2_Train"))
    assert any("No sweeps yet" in i.value for i in at.info)
    field(at, "Trials").set_value(3)
    field(at, "Most epochs per trial").set_value(2)
    at.selectbox(key="sweep_pruner").set_value("none")
    at.button(key="start_sweep").click().run()
    assert not at.exception, at.exception
    (sw,) = list_sweeps()
    cfg = sw.config()
    assert (cfg.trials, cfg.epochs, cfg.pruner, cfg.val_fraction, cfg.drawn_masks) == (3, 2, "none", 0.15, 0.0)
    assert cfg.data  # the sidebar's dataset (the demo data)
    from ui.common import registry  # the same cached registry the page used
    job = registry().get("sweep", sw.id)
    job.join(timeout=120)
    assert job.status == "done", job.error
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sweep_select").value == sw.id
    assert any("state **finished**" in m.value for m in at.markdown)
    assert {m.label: m.value for m in at.metric}["Trials finished"] == "3/3"
    assert any(s.value.startswith("Sweep finished: 3 trials. Best validation F1") for s in at.success)
    rows, cols = cells(at)
    assert len(rows) == 3 and cols[:6] == ["best", "trial", "state", "val F1", "val AUC", "epochs"]
    assert all(r[4] for r in rows if r[3])  # an AUC beside every F1
    assert [r[0] for r in rows].count("★") == 1 and all("None" not in r and "nan" not in r for r in rows)
    assert [b.label for b in at.button if b.label in ("Stop", "Resume")] == []  # nothing to stop or resume
    assert len(fast_fit) == 3


def test_train_page_refuses_a_bad_sweep_and_starts_nothing(fast_fit):
    from maskrec.train.sweep import list_sweeps
    at = sweep_mode(page("2_Train"))
    field(at, "Trials").set_value(0)
    field(at, "Validation share").set_value(0.0)
    at.button(key="start_sweep").click().run()
    (err,) = [e.value for e in at.error]
    assert "trials must be 1..10000, got 0" in err and "validation share in (0, 0.9), got 0.0" in err, err
    field(at, "Trials").set_value(3)
    field(at, "Validation share").set_value(0.15)
    field(at, "Drawn-masks share").set_value(2.0)
    at.button(key="start_sweep").click().run()
    assert any("drawn masks must be a share in [0, 1], got 2.0" in e.value for e in at.error)
    assert list_sweeps() == [] and fast_fit == []


def test_train_page_resumes_a_stopped_sweep(fast_fit, demo_dir):
    from maskrec.train.sweep import SweepConfig, new_sweep, run_sweep
    sw = new_sweep(SweepConfig(net="net1", data=str(demo_dir), trials=3, epochs=2, pruner="none"))
    trials = run_sweep(sw)
    next(trials)  # one trial, then let go: a sweep stopped with two trials left
    trials.close()
    at = sweep_mode(page("2_Train"))
    assert any("state **stopped**" in m.value for m in at.markdown)
    assert {m.label: m.value for m in at.metric}["Trials finished"] == "1/3"
    assert len(cells(at)[0]) == 1
    (resume,) = [b for b in at.button if b.label == "Resume"]
    resume.click().run()
    assert not at.exception, at.exception
    from ui.common import registry
    job = registry().get("sweep", sw.id)
    job.join(timeout=120)
    assert job.status == "done", job.error
    at.run()
    assert any("state **finished**" in m.value for m in at.markdown)
    assert len(cells(at)[0]) == 3 and [t["state"] for t in sw.trials()] == ["complete"] * 3


def _plotly_titles(at: AppTest) -> list[str]:
    import json
    return [json.loads(c.proto.spec).get("layout", {}).get("title", {}).get("text") for c in at.get("plotly_chart")]


@pytest.mark.slow  # 3 s: out of the quick subset, which stays under 90 s (issue 36)
def test_evaluate_page_shows_a_sweeps_trials_and_optunas_figures(fast_fit):
    from maskrec.train.sweep import SweepConfig, best, new_sweep, run_sweep
    sw = new_sweep(SweepConfig(net="net1", trials=6, epochs=3))
    list(run_sweep(sw))
    at = page("3_Evaluate")
    assert at.selectbox(key="eval_sweep").value == sw.id
    rows, cols = cells(at)
    assert len(rows) == 6 and "run" in cols
    b = best(sw)
    starred = [r for r in rows if r[0] == "★"]
    assert len(starred) == 1 and starred[0][1] == str(b["trial"])
    run_id = Path(b["run"]).name
    assert any(f"pick **run: {run_id} (best)**" in s.value for s in at.success)
    titles = _plotly_titles(at)
    assert {"Validation F1 per trial", "Validation F1 against each parameter"} <= set(titles), titles


def test_evaluate_page_says_when_no_trial_of_a_sweep_has_completed(fast_fit):
    import json
    from maskrec.train.sweep import SweepConfig, new_sweep
    sw = new_sweep(SweepConfig(net="net1", trials=3, epochs=4))
    (sw.dir / "trials.json").write_text(json.dumps([  # as a sweep whose trials were all pruned leaves it
        {"number": 0, "state": "pruned", "value": None, "params": {"lr": 0.001, "epochs": 4}, "run": None,
         "epochs": 1, "retry_of": None, "seconds": None}]))
    at = page("3_Evaluate")
    assert any("No trial has completed yet" in i.value for i in at.info)
    assert len(cells(at)[0]) == 1
    assert not any(t and t.startswith("Validation F1") for t in _plotly_titles(at))


def test_train_page_offers_every_net_of_the_registry_with_its_preset():
    """The Network box reads the registry (its presets); resnet18's recipe fills the form, augmentation
    and the cosine schedule included, and is what Start training launches."""
    from maskrec.models.build import REGISTRY
    at = page("2_Train")
    assert at.selectbox[0].options == list(REGISTRY)
    at.selectbox[0].set_value("resnet18").run()
    at.radio(key="recipe").set_value("report").run()
    assert not at.exception, at.exception
    p = PRESETS["resnet18"]
    assert field(at, "Batch size").value == p.batch_size and field(at, "Epochs").value == p.epochs
    assert field(at, "Dropout").disabled and at.checkbox(key="augment_resnet18").value is True
    assert at.selectbox(key="schedule_resnet18").value == "cosine"
    at.button(key="start_training").click().run()
    assert not at.exception, at.exception
    (run,) = list_runs()
    from ui.common import registry
    registry().get("run", run.id).stop()  # what is tested is the config the page starts, not the training
    registry().get("run", run.id).join(timeout=120)
    cfg = run.config()
    assert (cfg.net, cfg.batch_size, cfg.augment, cfg.schedule, cfg.weight_decay) == ("resnet18", 64, True, "cosine", 5e-4)
