"""Evaluate a checkpoint (curves, confusion matrix, threshold picker, mistakes), compare runs, and look
at a sweep's trials (Optuna's figures)."""
from ui.start import through_navigation

through_navigation()  # before the slow imports below: see ui/start.py

from pathlib import Path

import pandas as pd
import streamlit as st

from maskrec.core import plots
from maskrec.models.checkpoint import CheckpointError
from maskrec.data import DataError
from maskrec.infer.evaluate import score
from maskrec.infer.evaluate import SPLITS
from maskrec.infer.predictor import Predictor, set_operating_point
from maskrec.core.metrics import at_threshold, best_f1_threshold, curves, in_band, mistakes
from maskrec.infer.operating import MAX_BARE_AS_MASK, OperatingPoint, by_cost, capped, rates
from maskrec.config import demo_dir
from maskrec.core.presentation import data_mismatch
from ui.common import (checkpoint_choices, dataset_picker, image_grid, memo, memo_has, progress_callback, remember,
                       remembered, thumb)
from ui.compare import compare_tab
from ui.sweeps import sweeps_tab

st.title("Evaluate")
data_path = dataset_picker()
tab_eval, tab_compare, tab_sweeps = st.tabs(["Judge a checkpoint", "Compare runs", "Sweeps"])

with tab_sweeps:  # first in the script: the Judge tab may st.stop() on a bad checkpoint or dataset
    sweeps_tab()


def rate_words(r: dict) -> str:
    lo, hi = r["ci95"]
    return f"{r['k']}/{r['n']} = {r['rate']:.1%} ({lo:.1%}–{hi:.1%})"


def points_table(y, p, ops: dict) -> pd.DataFrame:
    """Each operating point the checkpoint carries, measured on these scores: both error rates and
    the unsure share, each with its 95% Wilson interval."""
    rows = []
    for name, op in ops.items():
        r = rates(y, p, op.threshold, op.band)
        rows.append({"operating point": name, "threshold": round(op.threshold, 4),
                     "unsure band": f"{op.band[0]:.3f}–{op.band[1]:.3f}" if op.band else "none",
                     "bare called mask (95% CI)": rate_words(r["bare_as_mask"]),
                     "masked missed (95% CI)": rate_words(r["masked_missed"]),
                     "unsure (95% CI)": rate_words(r["unsure"]), "picked": op.how})
    return pd.DataFrame(rows)


def judge(y, p, paths, split, pred, trained_on, ckpt) -> None:
    """Operating points, threshold picker, metrics, curves, confusion matrix and mistakes of one
    checkpoint's scores."""
    why = data_mismatch(trained_on, data_path, demo=str(demo_dir()))
    if why:
        st.warning(why, icon=":material/info:")
    if not split.startswith("val"):
        st.info("These are **test** figures: report them, but pick a threshold on a validation split "
                "(the Split box above), or the figures you report stop being honest.", icon=":material/info:")
    net, ops = pred.net, pred.operating_points
    st.markdown(f"**Operating points of this checkpoint** (recognition uses **{pred.default_op}** unless told), "
                f"measured on these {len(y)} faces:")
    st.dataframe(points_table(y, p, ops), hide_index=True, width="stretch")
    c = curves(y, p)
    kinds = [f"Operating point: {n}" for n in ops] + ["Cap on bare faces called mask", "Cost of each error",
                                                        "Best F1", "Manual"]
    how = st.radio("Threshold", kinds, horizontal=True, key="threshold_how")
    op = None
    if how.startswith("Operating point: "):
        op = ops[how.removeprefix("Operating point: ")]
    elif how == "Cap on bare faces called mask":
        cap = st.slider("Largest share of bare faces called mask", 0.0, 0.2, MAX_BARE_AS_MASK, 0.005)
        op = capped(y, p, cap, "street" if split == "val-scenes" else "capped", f"{split} split of {data_path}")
    elif how == "Cost of each error":
        a, b = st.columns(2)
        c_bare = a.number_input("Cost of a bare face called mask", 0.0, 1000.0, 10.0, 1.0)
        c_miss = b.number_input("Cost of a masked face called bare", 0.0, 1000.0, 1.0, 1.0)
        if c_bare + c_miss > 0:
            op = by_cost(y, p, c_bare, c_miss, "cost", f"{split} split of {data_path}")
    elif how == "Best F1":
        t = best_f1_threshold(y, p)
        op = OperatingPoint("best-f1", t, None, f"best F1 on the {split} split of {data_path}")
    if op is None:
        t = st.slider("P(mask) threshold", 0.0, 1.0, float(pred.threshold), 0.005)
        op = OperatingPoint("manual", t, None, "set by hand")
    t = op.threshold
    m, r = at_threshold(y, p, t), rates(y, p, t, op.band)
    st.caption(f"{net} on the {split} split of `{data_path}` · n = {m['n']} · threshold {t:.3f}"
               + (f" · unsure band {op.band[0]:.3f}–{op.band[1]:.3f}" if op.band else ""))
    k = st.columns(6)
    for col, name in zip(k, ["f1", "auc", "accuracy", "precision", "recall"]):
        v = m[name]
        col.metric(name.upper() if len(name) <= 3 else name.capitalize(), "–" if v is None else f"{v:.4f}")
    k[5].metric("Unsure", f"{r['unsure']['rate']:.1%}")
    st.markdown(f"Bare faces called mask: **{rate_words(r['bare_as_mask'])}** · masked faces missed: "
                f"**{rate_words(r['masked_missed'])}** (95% Wilson intervals)")
    if not how.startswith("Operating point: "):
        name = st.text_input("Save as operating point", op.name, key=f"op_name::{how}",
                             help="Saved into the checkpoint under this name (an existing one is replaced).")
        if st.button(f"Save threshold {t:.3f} as operating point {name!r} (recognition's default)",
                     disabled=not split.startswith("val") or not name.strip(),
                     help="Only on a validation split: a threshold picked on test figures makes them optimistic."):
            set_operating_point(ckpt, OperatingPoint(name.strip(), t, op.band, op.how, rates(y, p, t, op.band)))
            st.success(f"Saved operating point {name.strip()!r} (threshold {t:.3f}) into {ckpt}.")
    st.plotly_chart(plots.roc_pr(c, m["auc"], t))
    a, b = st.columns([2, 1])
    a.plotly_chart(plots.f1_vs_threshold(c, t))
    # faces inside the point's unsure band are neither right nor wrong: out of the matrix and the mistakes
    unsure = in_band(p, op.band)
    b.plotly_chart(plots.confusion(at_threshold(y[~unsure], p[~unsure], t) if unsure.any() else m))
    if unsure.any():
        b.caption(f"{int(unsure.sum())} of {len(p)} faces are unsure (inside the band): "
                  "left out of the matrix and the mistakes")
    wrong = mistakes(y, p, t, op.band)
    st.subheader(f"Mistakes at this threshold: {len(wrong)} (most confident first"
                 + (", unsure faces left out)" if unsure.any() else ")"))
    shown = wrong[:24]
    image_grid([thumb(paths[i]) for i in shown],
               [f"label {int(y[i])} · P(mask) {p[i]:.2f}" for i in shown], cols=8, width=96)


def scores(ckpt: str, data: str, split: str, progress):
    pred = Predictor.load(ckpt, exact=True)  # the checkpoint's own scores (fastest fp32 engine), not int8's
    res = score(pred, data, progress, split=split)
    return res.y, res.p, res.paths, res.split, pred, pred.config.get("data")


with tab_eval:
    choices = checkpoint_choices()
    if not choices:
        st.info("No checkpoint yet: train a run on the Train page first.")
    elif data_path is None:
        st.info("Choose a dataset in the sidebar.")
    else:
        c_ck, c_split = st.columns([3, 2])
        remembered("ckpt_choice", choices)  # kept while the dataset is being changed, and across pages
        label = c_ck.selectbox("Checkpoint", list(choices), key="ckpt_choice", on_change=remember, args=("ckpt_choice",))
        ckpt = choices[label]
        split = c_split.selectbox(
            "Split", SPLITS, key="eval_split",
            format_func=lambda v: {"auto": "test (report only)", "val": "validation (pick here)",
                                   "val-scenes": "validation, scene faces (the street point)",
                                   "val-crops": "validation, web crops", "test-scenes": "test, scene faces",
                                   "test-crops": "test, web crops"}[v],
            help="Pick thresholds on the validation split the checkpoint's run carved; the test split only reports.")
        bar = st.progress(0.0, text="Scoring…")
        # keyed by mtime: saving a threshold rewrites the file and must show at once
        key = ("scores", ckpt, Path(ckpt).stat().st_mtime, data_path, split)
        # An empty slot where the figures go replaces the last checkpoint's figures at once, so they
        # do not stay on screen (greyed) while this one decodes; a cached result redraws in place.
        cached = memo_has(key)
        slot = st.container() if cached else st.empty()
        try:
            y, p, paths, split, pred, trained_on = memo(
                key, lambda: scores(ckpt, data_path, split, progress_callback(bar, f"Scoring {label}: decoding")))
        except (CheckpointError, DataError) as e:
            bar.empty()
            st.error(str(e))
            st.stop()
        bar.empty()
        with slot if cached else slot.container():  # either way a container at the same place
            judge(y, p, paths, split, pred, trained_on, ckpt)

with tab_compare:
    compare_tab()  # the runs' curves side by side, and the shipped nets' (ui/compare.py)
