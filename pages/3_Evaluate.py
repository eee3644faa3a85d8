"""Evaluate a checkpoint (curves, confusion matrix, threshold picker, mistakes), compare runs, and look
at a sweep's trials (Optuna's figures)."""
from ui.start import through_navigation

through_navigation()  # before the slow imports below: see ui/start.py

from pathlib import Path

import pandas as pd
import streamlit as st

from maskrec import plots
from maskrec.checkpoint import CheckpointError
from maskrec.data import DataError
from maskrec.evaluate import score
from maskrec.inference import Predictor, set_threshold
from maskrec.metrics import at_threshold, best_f1_threshold, curves, mistakes, threshold_for_fpr
from maskrec.config import demo_dir
from maskrec.presentation import data_mismatch, preselect_runs, short_data
from maskrec.runs import list_runs
from maskrec.runstate import read, summary
from ui.common import checkpoint_choices, dataset_picker, image_grid, memo, memo_has, progress_callback, thumb
from ui.sweeps import sweeps_tab

st.title("Evaluate")
data_path = dataset_picker()
tab_eval, tab_compare, tab_sweeps = st.tabs(["Judge a checkpoint", "Compare runs", "Sweeps"])

with tab_sweeps:  # first in the script: the Judge tab may st.stop() on a bad checkpoint or dataset
    sweeps_tab()


def judge(y, p, paths, split, saved_t, net, trained_on, ckpt) -> None:
    """Threshold picker, metrics, curves, confusion matrix and mistakes of one checkpoint's scores."""
    why = data_mismatch(trained_on, data_path, demo=str(demo_dir()))
    if why:
        st.warning(why, icon=":material/info:")
    c = curves(y, p)
    how = st.radio("Threshold", ["Saved in checkpoint", "Best F1", "Target false-positive rate", "Manual"],
                   horizontal=True, key="threshold_how")
    if how == "Best F1":
        t = best_f1_threshold(y, p)
    elif how == "Target false-positive rate":
        fpr = st.slider("Largest share of bare faces called covered", 0.0, 0.2, 0.01, 0.005)
        t = threshold_for_fpr(y, p, fpr)
    elif how == "Manual":
        t = st.slider("P(mask) threshold", 0.0, 1.0, float(saved_t), 0.005)
    else:
        t = saved_t
    m = at_threshold(y, p, t)
    st.caption(f"{net} on the {split} split of `{data_path}` · n = {m['n']} · threshold {t:.3f} "
               f"(saved: {saved_t:.3f})")
    k = st.columns(6)
    for col, name in zip(k, ["f1", "auc", "accuracy", "precision", "recall", "fpr"]):
        v = m[name]
        col.metric(name.upper() if len(name) <= 3 else name.capitalize(), "–" if v is None else f"{v:.4f}")
    if st.button(f"Save threshold {t:.3f} into this checkpoint", disabled=abs(t - saved_t) < 1e-9,
                 help="Recognition uses the threshold saved in the checkpoint."):
        set_threshold(ckpt, t, how)
        st.success(f"Saved threshold {t:.3f} into {ckpt}.")
    st.plotly_chart(plots.roc_pr(c, m["auc"], t))
    a, b = st.columns([2, 1])
    a.plotly_chart(plots.f1_vs_threshold(c, t))
    b.plotly_chart(plots.confusion(m))
    wrong = mistakes(y, p, t)
    st.subheader(f"Mistakes at this threshold: {len(wrong)} (most confident first)")
    shown = wrong[:24]
    image_grid([thumb(paths[i]) for i in shown],
               [f"label {int(y[i])} · P(mask) {p[i]:.2f}" for i in shown], cols=8, width=96)


def scores(ckpt: str, data: str, progress):
    pred = Predictor.load(ckpt, exact=True)  # the checkpoint's own scores (fastest fp32 engine), not int8's
    res = score(pred, data, progress)
    return res.y, res.p, res.paths, res.split, pred.threshold, pred.net, pred.config.get("data")


with tab_eval:
    choices = checkpoint_choices()
    if not choices:
        st.info("No checkpoint yet: train a run on the Train page first.")
    elif data_path is None:
        st.info("Choose a dataset in the sidebar.")
    else:
        label = st.selectbox("Checkpoint", list(choices), key="ckpt_choice")
        ckpt = choices[label]
        bar = st.progress(0.0, text="Scoring…")
        # keyed by mtime: saving a threshold rewrites the file and must show at once
        key = ("scores", ckpt, Path(ckpt).stat().st_mtime, data_path)
        # An empty slot where the figures go replaces the last checkpoint's figures at once, so they
        # do not stay on screen (greyed) while this one decodes; a cached result redraws in place.
        cached = memo_has(key)
        slot = st.container() if cached else st.empty()
        try:
            y, p, paths, split, saved_t, net, trained_on = memo(
                key, lambda: scores(ckpt, data_path, progress_callback(bar, f"Scoring {label}: decoding")))
        except (CheckpointError, DataError) as e:
            bar.empty()
            st.error(str(e))
            st.stop()
        bar.empty()
        with slot if cached else slot.container():  # either way a container at the same place
            judge(y, p, paths, split, saved_t, net, trained_on, ckpt)

with tab_compare:
    runs = [r for r in list_runs() if r.metrics()]
    if not runs:
        st.info("No finished epochs yet: train a run first.")
    else:
        ids = [r.id for r in runs]
        chosen = st.multiselect("Runs", ids, default=preselect_runs([(r.id, read(r).get("state")) for r in runs]),
                                help="Opens on the finished runs, newest first.")
        picked = [r for r in runs if r.id in chosen]
        if picked:
            rows = [summary(r) for r in picked]
            table = pd.DataFrame([{**row, "data": short_data(row["data"])} for row in rows])
            first = ["run", "net", "data"]  # what tells runs apart, before the numbers
            st.dataframe(table[first + [c for c in table.columns if c not in first]], hide_index=True, width="stretch")
            st.caption("data: " + " · ".join(f"`{d}`" for d in dict.fromkeys(row["data"] for row in rows)))
            hist = {r.id: r.metrics() for r in picked}
            a, b = st.columns(2)
            a.plotly_chart(plots.compare_runs(hist, "test_f1"))
            b.plotly_chart(plots.compare_runs(hist, "test_loss"))
            a.plotly_chart(plots.compare_runs(hist, "test_auc"))
            b.plotly_chart(plots.compare_runs(hist, "test_error"))
