"""Plotly figures for the pages (plain functions of plain data; no Streamlit here)."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from maskrec.core.presentation import SWEEP_PARAMS, metric_words

INPUT_SIZES = (32, 64)  # Net1 and Net2 input sides, marked on size plots
COLORS = {1: "#2ca02c", 0: "#d62728", "train": "#1f77b4", "test": "#ff7f0e"}
LABEL_NAMES = {1: "covered (1)", 0: "bare (0)"}
# Legends sit above the plot on the left: Plotly's toolbar (modebar) appears on hover at the top
# right, over whatever is there. A figure with a title puts its legend under the plot instead.
TOP_LEGEND = dict(orientation="h", y=1.02, yanchor="bottom", x=0, xanchor="left")
MARKED_LEGEND = {**TOP_LEGEND, "y": 1.11}  # above the input-size labels, which sit on top of the plot
UNDER_LEGEND = dict(orientation="h", y=-0.2, yanchor="top", x=0, xanchor="left")
CURVES = (("loss", "Loss (NLL)"), ("error", "Error"), ("auc", "ROC AUC"), ("f1", "F1"))


def training_curves(history: list[dict], title: str = "") -> go.Figure:
    """2x2: loss, error, ROC AUC, F1 per epoch, train and test."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in CURVES],
                        horizontal_spacing=0.08, vertical_spacing=0.16)
    epochs = [r["epoch"] for r in history]
    for k, (key, _) in enumerate(CURVES):
        for split in ("train", "test"):
            fig.add_trace(go.Scatter(x=epochs, y=[r.get(f"{split}_{key}") for r in history],
                                     mode="lines+markers", name=split, legendgroup=split,
                                     showlegend=k == 0, line=dict(color=COLORS[split])),
                          row=k // 2 + 1, col=k % 2 + 1)
    fig.update_xaxes(dtick=1 if len(epochs) <= 20 else None)
    fig.update_xaxes(title_text="epoch", row=2)  # the top row's label would collide with the titles below
    fig.update_layout(height=580, title=title or None, margin=dict(l=40, r=20, t=60, b=40),
                      legend={**TOP_LEGEND, "y": 1.08})  # above the subplot titles, left of the toolbar
    return fig


def compare_runs(histories: dict[str, list[dict]], key: str = "test_f1", dashed: frozenset[str] = frozenset()) -> go.Figure:
    """One line per run of one metric per epoch; the run ids go in a legend under the plot (they are
    long, and several of them above it would push into the title). The runs named in ``dashed``
    (the shipped checkpoints' records) are drawn dashed."""
    fig = go.Figure()
    for name, hist in histories.items():
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in hist], y=[r.get(key) for r in hist],
                                 mode="lines+markers", name=name, line_dash="dash" if name in dashed else None))
    words = metric_words(key)
    fig.update_layout(height=380, title=f"{words} per epoch", xaxis_title="epoch", yaxis_title=words,
                      margin=dict(l=50, r=20, t=50, b=40), showlegend=True, legend=UNDER_LEGEND)
    return fig


def _mark_inputs(fig: go.Figure, axis: str) -> None:
    """Dashed lines at the nets' input sides, labelled outside the plotting area so that the labels
    cover no bar or point: above it for x (32 px left of its line, 64 px right of its own, so the
    two never meet however close the lines), right of it for y (32 px below its line, 64 px above)."""
    for s, side in zip(INPUT_SIZES, ("low", "high")):
        line = dict(line_dash="dash", line_color="grey")
        label = dict(text=f"{s} px", showarrow=False, font=dict(size=11, color="grey"))
        if axis == "x":
            fig.add_vline(x=s, **line)
            fig.add_annotation(x=s, xref="x", y=1, yref="paper", yanchor="bottom",
                               xanchor="right" if side == "low" else "left", **label)
        else:
            fig.add_hline(y=s, **line)
            fig.add_annotation(x=1, xref="paper", y=s, yref="y", xanchor="left",
                               yanchor="top" if side == "low" else "bottom", **label)


def size_histogram(rows: list[dict], field: str) -> go.Figure:
    fig = go.Figure()
    for label in (1, 0):
        vals = [r[field] for r in rows if r["label"] == label]
        fig.add_trace(go.Histogram(x=vals, name=LABEL_NAMES[label], marker_color=COLORS[label], opacity=0.65, nbinsx=40))
    fig.update_layout(barmode="overlay", height=300, xaxis_title=f"{field} (px)", yaxis_title="images",
                      margin=dict(l=40, r=20, t=55, b=40), legend=MARKED_LEGEND)
    _mark_inputs(fig, "x")
    return fig


def aspect_histogram(rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    for label in (1, 0):
        vals = [r["width"] / r["height"] for r in rows if r["label"] == label]
        fig.add_trace(go.Histogram(x=vals, name=LABEL_NAMES[label], marker_color=COLORS[label], opacity=0.65, nbinsx=40))
    fig.update_layout(barmode="overlay", height=300, xaxis_title="aspect ratio (width / height)",
                      yaxis_title="images", margin=dict(l=40, r=20, t=30, b=40), legend=TOP_LEGEND)
    return fig


def size_scatter(rows: list[dict], max_points: int = 6000) -> go.Figure:
    rng = np.random.default_rng(0)
    if len(rows) > max_points:  # keep the browser responsive on big folders
        rows = [rows[i] for i in rng.choice(len(rows), max_points, replace=False)]
    fig = go.Figure()
    for label in (1, 0):
        sub = [r for r in rows if r["label"] == label]
        fig.add_trace(go.Scattergl(x=[r["width"] for r in sub], y=[r["height"] for r in sub], mode="markers",
                                   name=LABEL_NAMES[label], marker=dict(color=COLORS[label], size=5, opacity=0.5),
                                   text=[r["path"].rsplit("/", 1)[-1] for r in sub]))
    fig.update_layout(height=420, xaxis_title="width (px)", yaxis_title="height (px)",
                      margin=dict(l=40, r=50, t=55, b=40), legend=MARKED_LEGEND)
    _mark_inputs(fig, "x")
    _mark_inputs(fig, "y")
    return fig


def class_balance(counts: dict) -> go.Figure:
    fig = go.Figure()
    for label in (1, 0):
        fig.add_trace(go.Bar(x=["train", "test"], y=[counts["train"][label], counts["test"][label]],
                             name=LABEL_NAMES[label], marker_color=COLORS[label]))
    fig.update_layout(barmode="group", height=300, yaxis_title="images", margin=dict(l=40, r=20, t=30, b=40),
                      legend=TOP_LEGEND)
    return fig


def roc_pr(c: dict, auc: float | None, threshold: float | None = None) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=[f"ROC (AUC {auc:.4f})" if auc is not None else "ROC",
                                                        "Precision-recall"])
    fig.add_trace(go.Scatter(x=c["fpr"], y=c["tpr"], mode="lines", name="ROC"), row=1, col=1)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line_dash="dot", line_color="grey",
                             showlegend=False), row=1, col=1)
    fig.add_trace(go.Scatter(x=c["recall"], y=c["precision"], mode="lines", name="PR"), row=1, col=2)
    fig.update_xaxes(title_text="false-positive rate", row=1, col=1)
    fig.update_yaxes(title_text="true-positive rate", row=1, col=1)
    fig.update_xaxes(title_text="recall", row=1, col=2)
    fig.update_yaxes(title_text="precision", row=1, col=2)
    fig.update_layout(height=380, showlegend=False, margin=dict(l=40, r=20, t=40, b=40))
    return fig


def f1_vs_threshold(c: dict, threshold: float) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=c["pr_thresholds"], y=c["f1"], mode="lines", name="F1"))
    fig.add_trace(go.Scatter(x=c["pr_thresholds"], y=c["precision"][:-1], mode="lines", name="precision"))
    fig.add_trace(go.Scatter(x=c["pr_thresholds"], y=c["recall"][:-1], mode="lines", name="recall"))
    fig.add_vline(x=threshold, line_dash="dash", annotation_text=f"threshold {threshold:.3f}")
    fig.update_layout(height=340, xaxis_title="threshold on P(mask)", margin=dict(l=40, r=20, t=30, b=40),
                      legend=TOP_LEGEND)
    return fig


def confusion(m: dict) -> go.Figure:
    z = [[m["tn"], m["fp"]], [m["fn"], m["tp"]]]
    fig = go.Figure(go.Heatmap(z=z, x=["bare (0)", "covered (1)"], y=["bare (0)", "covered (1)"],
                               text=z, texttemplate="%{text}", colorscale="Blues", showscale=False))
    fig.update_layout(height=300, yaxis_autorange="reversed", xaxis_title="predicted", yaxis_title="actual",
                      margin=dict(l=60, r=20, t=30, b=50))
    return fig


def compliance_chart(rows, clock: bool = False, height: int = 260) -> go.Figure:
    """Stacked bars of people with and without a mask per second. rows: (second, with, without);
    ``clock``: seconds are epoch times (the live chart), else seconds into the video."""
    x = [datetime.fromtimestamp(r[0]) if clock else r[0] for r in rows]
    fig = go.Figure([go.Bar(x=x, y=[r[1] for r in rows], name="with mask", marker_color=COLORS[1]),
                     go.Bar(x=x, y=[r[2] for r in rows], name="without mask", marker_color=COLORS[0])])
    fig.update_layout(barmode="stack", height=height, bargap=0.1, legend=TOP_LEGEND,
                      margin=dict(l=40, r=10, t=30, b=40), yaxis_title="people",
                      xaxis_title="time" if clock else "second of the video")
    fig.update_yaxes(rangemode="tozero", dtick=1 if max((r[1] + r[2] for r in rows), default=0) <= 8 else None)
    return fig


SWEEP_TITLES = (("history", "Validation F1 per trial"), ("slice", "Validation F1 against each parameter"),
                ("importance", "Parameter importance"))


def _grid_subplots(fig: go.Figure, cols: int, row_height: int = 260) -> None:
    """Lay a one-row subplot figure (Optuna's slice plot: one panel per parameter, 300 px each, wider
    than a page) out as rows of ``cols`` panels that fit the page's width."""
    n = sum(1 for k in fig.layout if k.startswith("xaxis"))
    rows = -(-n // cols)
    gap_x, gap_y = 0.06, 0.5 / max(rows * 2, 1) if rows > 1 else 0.0
    w, h = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    for i in range(n):
        r, c = divmod(i, cols)
        suffix = "" if i == 0 else str(i + 1)
        x0, y1 = c * (w + gap_x), 1 - r * (h + gap_y)
        fig.layout[f"xaxis{suffix}"].domain = [x0, x0 + w]
        fig.layout[f"yaxis{suffix}"].domain = [max(y1 - h, 0), y1]
        fig.layout[f"yaxis{suffix}"].showticklabels = c == 0
        fig.layout[f"yaxis{suffix}"].title = dict(text="validation F1" if c == 0 else None)
    fig.update_layout(width=None, height=row_height * rows + 80)


PARAM_WORDS = {key: words for key, words, _ in SWEEP_PARAMS}  # as the trials table heads its columns
HISTORY_TRACES = {"Objective Value": "validation F1", "Best Value": "best so far"}


def sweep_figures(figs: dict) -> list[tuple[str, go.Figure]]:
    """Optuna's figures of a sweep (``sweep.figures``) titled in words, in reading order; the slice
    plot laid out in rows of four; axes, legends and parameters named as the trials table names them."""
    out = []
    for key, title in SWEEP_TITLES:
        fig = figs.get(key)
        if fig is None:
            continue
        fig = go.Figure(fig)  # a copy: the caller's cached figure stays as Optuna drew it
        if key == "history":
            for t in fig.data:
                t.name = HISTORY_TRACES.get(t.name, t.name)
            n = max((len(t.x) for t in fig.data if t.x is not None), default=0)
            fig.update_xaxes(title_text="trial", dtick=1 if n <= 20 else None)  # trials are whole numbers
            fig.update_layout(height=380, legend=UNDER_LEGEND)  # the title holds the top left
        elif key == "slice":
            for k in fig.layout:
                if k.startswith("xaxis") and fig.layout[k].title.text:
                    fig.layout[k].title.text = PARAM_WORDS.get(fig.layout[k].title.text, fig.layout[k].title.text)
            fig.update_xaxes(nticks=4)
            for k in fig.layout:  # a log axis (learning rate) labels every minor tick: 2 and 5 of each decade are enough
                if k.startswith("xaxis") and fig.layout[k].type == "log":
                    fig.layout[k].dtick = "D2"
            _grid_subplots(fig, cols=4)
        else:
            for t in fig.data:
                if t.y is not None:
                    t.y = [PARAM_WORDS.get(v, v) for v in t.y]
            fig.update_xaxes(title_text="importance for validation F1 (fANOVA)")
            fig.update_yaxes(title_text="parameter")
            fig.update_layout(height=320)
        fig.update_layout(title=dict(text=title), margin=dict(l=10, r=10, t=50, b=10))
        out.append((title, fig))
    return out
