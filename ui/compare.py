"""Evaluate's Compare runs tab: the runs' curves side by side, and the shipped checkpoints' (their
training records ship beside them: ``runs.shipped``), so Net1 and Net2 compare before any training.
Widgets and drawing only; a row of the table is ``runstate.summary`` / ``runstate.row``."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from maskrec.core import plots
from maskrec.core.presentation import preselect_runs, short_data
from maskrec.train.runs import list_runs, shipped
from maskrec.train.runstate import read, row, summary
from ui.common import memo

SHIPPED_STATE = "shipped"


def _shipped_rows() -> dict[str, tuple[dict, list[dict]]]:
    """Label -> (table row, history) of each shipped record; a checkpoint is read once per file change."""
    out = {}
    for s in shipped():
        stamp = s.checkpoint.stat().st_mtime_ns
        cfg = memo(("shipped_config", str(s.checkpoint), stamp), s.config, max_entries=64)
        hist = s.metrics()
        out[s.id] = (row(s.id, cfg, SHIPPED_STATE, hist), hist)
    return out


def compare_tab() -> None:
    runs = [r for r in list_runs() if r.metrics()]
    ships = _shipped_rows()
    if not runs and not ships:
        st.info("No finished epochs yet: train a run first.")
        return
    ids = [r.id for r in runs] + list(ships)
    picked_runs = preselect_runs([(r.id, read(r).get("state")) for r in runs])
    # Net1 against Net2 as shipped until two runs of one's own can be compared
    default = picked_runs if len(picked_runs) >= 2 else picked_runs + list(ships)
    chosen = st.multiselect("Runs", ids, default=default,
                            help="Opens on the finished runs, newest first; the shipped checkpoints' training "
                                 "records (shipped: …) are offered beside them, drawn dashed.")
    by_id = {r.id: r for r in runs}
    rows = [summary(by_id[i]) if i in by_id else ships[i][0] for i in chosen]
    if not rows:
        return
    table = pd.DataFrame([{**r, "data": short_data(r["data"])} for r in rows])
    first = ["run", "net", "data"]  # what tells runs apart, before the numbers
    st.dataframe(table[first + [c for c in table.columns if c not in first]], hide_index=True, width="stretch")
    st.caption("data: " + " · ".join(f"`{d}`" for d in dict.fromkeys(r["data"] for r in rows)))
    if any(i in ships for i in chosen):
        st.caption("shipped: the training records of the checkpoints in `checkpoints/` (its README.md), each "
                   "tested on the test split of the data it trained on: beside runs on other data, they compare "
                   "recipes and how training went, not scores.")
    hist = {i: by_id[i].metrics() if i in by_id else ships[i][1] for i in chosen}
    dashed = frozenset(ships)
    a, b = st.columns(2)
    a.plotly_chart(plots.compare_runs(hist, "test_f1", dashed))
    b.plotly_chart(plots.compare_runs(hist, "test_loss", dashed))
    a.plotly_chart(plots.compare_runs(hist, "test_auc", dashed))
    b.plotly_chart(plots.compare_runs(hist, "test_error", dashed))
