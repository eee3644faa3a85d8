"""maskrec.core.presentation (what the pages show) and the words on maskrec.core.plots' figures."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from maskrec.core import plots
from maskrec.core.presentation import (
    crop_captions,
    data_mismatch,
    face_tags,
    metric_words,
    number,
    preselect_runs,
    short_data,
)

RUNS = [("r6", "running"), ("r5", "done"), ("r4", "stopped"), ("r3", "done"), ("r2", "done"), ("r1", "failed")]


def test_compare_opens_on_the_finished_runs_newest_first():
    assert preselect_runs(RUNS) == ["r5", "r3", "r2"]  # not the newest run, which is still training


def test_compare_opens_on_at_least_two_runs():
    assert preselect_runs([("b", "running"), ("a", "done")]) == ["a", "b"]
    assert preselect_runs([("c", "running"), ("b", "stopped"), ("a", "done")]) == ["a", "b"]  # ended before live
    assert preselect_runs([("a", "running")]) == ["a"]
    assert preselect_runs([]) == []


def test_compare_caps_how_many_lines_it_opens_on():
    many = [(f"r{i}", "done") for i in range(10, 0, -1)]
    assert preselect_runs(many) == ["r10", "r9", "r8", "r7", "r6", "r5"]


@pytest.mark.parametrize("key, words", [("test_f1", "test F1"), ("test_loss", "test loss (NLL)"),
                                        ("test_auc", "test ROC AUC"), ("train_error", "train error")])
def test_metric_keys_read_as_words(key, words):
    assert metric_words(key) == words


@pytest.mark.parametrize("v, text", [(111.0, "111"), (111, "111"), (110.5, "110.5"), (1234.0, "1,234"),
                                     (None, "–")])
def test_numbers_read_as_people_write_them(v, text):
    assert number(v) == text


def test_judging_on_the_training_data_says_nothing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert data_mismatch(str(a), str(a)) is None
    assert data_mismatch(f"{a}{os.pathsep}{b}", str(b)) is None  # one of its training sets
    assert data_mismatch(str(a), str(tmp_path / "x" / ".." / "a")) is None  # the same folder, spelled otherwise
    assert data_mismatch(None, str(a / "demo"), demo=str(a / "demo")) is None  # trained on the demo data


def test_a_checkpoint_moved_from_another_machine_matches_by_folder_name(tmp_path):
    assert data_mismatch("/elsewhere/datasets/facemask-dev", str(tmp_path / "facemask-dev")) is None


def test_judging_on_other_data_says_what_it_trained_on(tmp_path):
    demo = tmp_path / "data" / "demo"
    why = data_mismatch(f"/work/shared/datasets/facemask-dev{os.pathsep}/tmp/ship/scenes/trainval", str(demo),
                        demo=str(demo))
    assert "`/work/shared/datasets/facemask-dev`" in why and "demo data" in why and "lower" in why
    why = data_mismatch(None, str(tmp_path / "photos"), demo=str(demo))
    assert "trained on the built-in demo data" in why and str(tmp_path / "photos") in why


def test_a_dataset_in_a_table_cell_is_its_folder_names():
    assert short_data(f"/work/shared/datasets/facemask-dev{os.pathsep}/tmp/ship/scenes/trainval/") == \
        "facemask-dev + trainval"
    assert short_data(None) == short_data("demo") == "demo"


def _faces(n):
    return [SimpleNamespace(label="mask" if i % 2 else "no_mask", p_mask=0.9 if i % 2 else 0.1) for i in range(n)]


def test_faces_are_numbered_alike_on_the_photo_and_in_the_list():
    faces = _faces(3)
    assert face_tags(faces) == ["1 no mask 0.10", "2 mask 0.90", "3 no mask 0.10"]
    assert crop_captions(faces) == ["1 · no mask 0.10", "2 · mask 0.90", "3 · no mask 0.10"]


def test_a_crowd_gets_numbers_only_on_the_photo():
    faces = _faces(38)
    assert face_tags(faces) == [str(i) for i in range(1, 39)]
    assert crop_captions(faces)[37] == "38 · mask 0.90"


# ------------------------------------------------------------------------------- plots in words

def test_compare_runs_has_a_title_and_axis_names_in_words():
    hist = {"a": [{"epoch": 1, "test_f1": 0.5}, {"epoch": 2, "test_f1": 0.7}]}
    fig = plots.compare_runs(hist, "test_f1")
    assert fig.layout.title.text == "test F1 per epoch"
    assert fig.layout.yaxis.title.text == "test F1" and fig.layout.xaxis.title.text == "epoch"


def test_the_confusion_matrix_names_its_axes():
    fig = plots.confusion({"tn": 5, "fp": 1, "fn": 2, "tp": 7})
    assert fig.layout.xaxis.title.text == "predicted" and fig.layout.yaxis.title.text == "actual"


def test_input_size_markers_sit_above_the_plot_apart():
    """The 32 px and 64 px labels: above the plotting area (not on the bars) and not at one height."""
    rows = [{"width": w, "height": w, "label": w % 2, "path": f"x/{w}.jpg"} for w in range(20, 200, 7)]
    for fig in (plots.size_histogram(rows, "width"), plots.size_scatter(rows)):
        labels = [a for a in fig.layout.annotations if a.text.endswith(" px")]
        xs = [a for a in labels if a.xref == "x"]
        assert len(xs) == 2
        assert all(a.yref == "paper" and a.y >= 1 for a in xs)
        assert xs[0].yshift != xs[1].yshift or xs[0].xanchor != xs[1].xanchor


# ------------------------------------------------------------------ sweeps

TRIALS = [
    {"number": 0, "state": "complete", "value": 0.91234, "params": {"lr": 0.00123, "weight_decay": 1.5e-05, "batch_size": 64,
     "epochs": 4, "augment_strength": 0.01, "label_smoothing": 0.05, "ema": 0.0, "mixup": 0.2}, "run": "/h/runs/r0",
     "epochs": 4, "retry_of": None, "seconds": 3.0, "val_auc": 0.97654},
    {"number": 1, "state": "pruned", "value": None, "params": {"lr": 0.0021, "weight_decay": 0.0003, "batch_size": 32,
     "epochs": 3, "augment_strength": 0.8, "label_smoothing": 0.0, "ema": 0.995, "mixup": 0.0}, "run": "/h/runs/r1",
     "epochs": 1, "retry_of": None, "seconds": None, "val_auc": 0.8},
    {"number": 2, "state": "failed", "value": None, "params": {}, "run": None, "epochs": 0, "retry_of": None, "seconds": None},
    {"number": 3, "state": "complete", "value": 0.95, "params": {"lr": 0.0021, "weight_decay": 0.0003, "batch_size": 32,
     "epochs": 3, "augment_strength": 0.8, "label_smoothing": 0.0, "ema": 0.995, "mixup": 0.0}, "run": "/h/runs/r1",
     "epochs": 3, "retry_of": 1, "seconds": 2.0},
]


def test_sweep_rows_say_each_trial_with_empty_cells_never_none():
    from maskrec.core.presentation import sweep_rows
    rows = sweep_rows(TRIALS, best_trial=3)
    assert [r["trial"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["best"] for r in rows] == ["", "", "", "★"]
    assert [r["val F1"] for r in rows] == ["0.9123", "", "", "0.9500"]
    assert [r["val AUC"] for r in rows] == ["0.9765", "", "", ""]  # only beside an F1; none on record for trial 3
    assert [r["epochs"] for r in rows] == ["4/4", "1/3", "", "3/3"]  # trained / drawn: the pruned one stopped early
    assert rows[3]["state"] == "complete (retry of 1)" and rows[2]["run"] == "" and rows[0]["run"] == "r0"
    assert rows[0]["learning rate"] == "0.00123" and rows[0]["weight decay"] == "1.5e-05" and rows[0]["batch"] == "64"
    assert (rows[0]["augment"], rows[0]["EMA"], rows[0]["mixup"]) == ("off", "off", "0.2")
    assert (rows[1]["augment"], rows[1]["EMA"], rows[1]["mixup"]) == ("0.80", "0.995", "off")
    assert "dropout" not in rows[0]  # Net1's trials search no dropout: no empty column for it
    for r in rows:
        assert all(isinstance(v, str) and v != "None" for v in r.values()), r
    assert [r["best"] for r in sweep_rows(TRIALS)] == [""] * 4
    assert sweep_rows([]) == []


def test_sweep_summary_says_what_was_asked():
    from maskrec.core.presentation import sweep_summary
    from maskrec.train.sweep import SweepConfig
    said = sweep_summary(SweepConfig(net="net2", trials=1, epochs=0, pruner="none", timeout=600, drawn_masks=0.3,
                                     data="/x/facemask-dev"))
    assert said == ("net2 · 1 trial · at most 40 epochs each · pruner none · validation share 0.15 · seed 0 · "
                    "drawn masks 0.3 · timeout 10 min · data facemask-dev")


def test_sweep_figures_are_titled_in_words_and_the_slice_plot_fits_the_page():
    import optuna
    from maskrec.core.plots import SWEEP_TITLES, sweep_figures
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    names = ["lr", "weight_decay", "batch_size", "augment_strength", "label_smoothing", "ema"]
    st.optimize(lambda t: sum(t.suggest_float(n, 0, 1) for n in names), n_trials=6)
    import optuna.visualization as vis
    raw = {"history": vis.plot_optimization_history(st), "slice": vis.plot_slice(st)}
    figs = sweep_figures(raw)
    assert [t for t, _ in figs] == [t for k, t in SWEEP_TITLES if k in raw]  # importance absent: left out
    assert all(f.layout.title.text == t for t, f in figs)
    s = dict(figs)["Validation F1 against each parameter"]
    assert raw["slice"].layout.width == 300 * len(names)  # Optuna's: one 300 px panel each, wider than a page
    assert s.layout.width is None
    boxes = []
    for i in range(len(names)):
        sfx = "" if i == 0 else str(i + 1)
        x, y = s.layout[f"xaxis{sfx}"].domain, s.layout[f"yaxis{sfx}"].domain
        assert 0 <= x[0] < x[1] <= 1 and 0 <= y[0] < y[1] <= 1
        boxes.append((x, y))
    for i, (xa, ya) in enumerate(boxes):  # panels do not overlap
        for xb, yb in boxes[i + 1:]:
            assert xa[1] <= xb[0] or xb[1] <= xa[0] or ya[1] <= yb[0] or yb[1] <= ya[0]
    assert len({round(y[0], 6) for _, y in boxes}) == 2  # six panels: two rows of four
    assert s.layout.yaxis.title.text == "validation F1" and s.layout.yaxis5.title.text == "validation F1"
    assert raw["slice"].layout.title.text != "Validation F1 against each parameter"  # a copy was titled
    xs = {s.layout[k].title.text for k in s.layout if k.startswith("xaxis")}
    assert {"learning rate", "weight decay", "batch", "augment"} <= xs and "lr" not in xs  # as the table says them
    h = dict(figs)["Validation F1 per trial"]
    assert {t.name for t in h.data} >= {"validation F1", "best so far"} and h.layout.xaxis.dtick == 1


def test_run_cells_are_strings_and_empty_where_a_run_has_no_number_yet():
    from maskrec.core.presentation import run_cells
    row = {"run": "r1", "state": "queued", "epochs": "0/10", "batch": 64, "lr": 0.001, "best_test_f1": None,
           "best_epoch": None, "test_auc": float("nan"), "test_loss": 0.31234, "minutes": 0.0, "data": "demo"}
    assert run_cells(row) == {"run": "r1", "state": "queued", "epochs": "0/10", "batch": "64", "lr": "0.001",
                              "best_test_f1": "", "best_epoch": "", "test_auc": "", "test_loss": "0.3123",
                              "minutes": "0.0", "data": "demo"}


@pytest.mark.parametrize("name,text", [
    ("street.jpg", "street.jpg"), ("my photo (1).jpg", "my photo (1).jpg"),
    ("# title.png", r"\# title.png"), ("- item.png", r"\- item.png"), ("1. first.png", r"1\. first.png"),
    ("www.example.com.png", r"www\.example.com.png"), ("a\nb.png", "a b.png"), ("$x$ :red[y]", r"\$x\$ \:red\[y\]")])
def test_a_name_shown_in_markdown_reads_as_typed(name, text):
    from maskrec.core.presentation import md_text
    assert md_text(name) == text
