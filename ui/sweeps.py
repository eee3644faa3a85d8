"""The recipe search on the pages: the Train page's sweep form and live panel, the Evaluate page's
Sweeps tab. Widgets and drawing only; the sweep runs in ``sweep.SweepJob`` (through the one job
registry: ``train.jobs.start_sweep``), what a sweep is doing is ``train.jobs.sweep_shown``, the table's cells are
``presentation.sweep_rows``, and how long a sweep takes here (the form's estimate and its first
values) is ``budget``'s.
"""
from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from maskrec.train import budget
from maskrec.core import plots
from maskrec.train.budget import EpochTime
from maskrec.config import PRESETS
from maskrec.core.presentation import sweep_rows, sweep_state_words, sweep_summary
from maskrec.train.sweep import (
    DEFAULT_EPOCHS,
    PRUNERS,
    VAL_FRACTION,
    SweepConfig,
    best,
    figures,
    list_sweeps,
    new_sweep,
    open_sweep,
)
from maskrec.jobs.registry import SWEEP
from maskrec.train.jobs import start_sweep, sweep_shown
from ui.common import memo, registry, stop_or_resume

SWEEP_KEY = "sweep_select"
BEST_ROW = "background-color: rgba(255, 196, 0, 0.18)"


def _epoch_time(net: str, data_path: str, val: float) -> EpochTime | None:
    """This machine's epoch of a trial of net on the data, for the estimate: the runs on disk (read
    again every 30 s), else a few steps timed once per net (seconds, so under a spinner) scaled to
    the data's size. None when neither can be had (data that cannot be read: Start says why)."""
    def rates():
        with st.spinner(f"Timing a few training steps of {net} on this machine for the estimate…"):
            try:
                return budget.timed_rates(net)
            except (OSError, ValueError, subprocess.SubprocessError):
                return None
    rec = memo(("recorded_epoch", net, data_path), lambda: budget.recorded_epoch(net, data_path), ttl=30)
    if rec is not None:
        return rec
    try:
        sizes = memo(("split_sizes", data_path), lambda: budget.split_sizes(data_path), ttl=30)
    except (OSError, ValueError):
        return None
    r = memo(("timed_rates", net), rates)
    return budget.timed_epoch(r, sizes, val if 0 < val < 0.9 else VAL_FRACTION) if r else None


def estimate_words(trials: int, epochs: int, timeout_min: float, t: EpochTime, net: str) -> str:
    """The estimate beside Start sweep, with where its epoch time comes from."""
    total = budget.estimate_minutes(trials, epochs, t.seconds)
    low = max(1, epochs // 2)
    where = (f"the median of {t.recorded} epochs of {net} runs on this data here" if t.recorded else
             f"timed just now from a few training steps of {net} on this machine: rough (reading the images "
             f"is left out) until a run of {net} on this data has finished an epoch")
    words = (f"**Estimate: about {total:.0f} min** if every trial trains all its epochs: {trials} trials × "
             f"{low}–{epochs} epochs ({budget.trial_epochs(epochs):g} on average) × {t.seconds:.0f} s per epoch, "
             f"{where}. Pruning can only shorten it.")
    if timeout_min and total > timeout_min:
        trial = budget.trial_epochs(epochs) * t.seconds / 60
        words += (f" The timeout ends it sooner: no trial starts after {timeout_min:g} min, and the one "
                  f"training then finishes (a trial takes about {trial:.0f} min).")
    return words


def sweep_form(data_path: str | None) -> None:
    """The New-run box's Sweep form: Start sweep makes the folder and queues its job. Its trials and
    epochs start at a sweep that ends in about budget.BUDGET_MINUTES here, and the estimate below
    them follows what is typed."""
    c = st.columns(4)
    net = c[0].selectbox("Network", list(PRESETS), key="sweep_net",
                         help="Every trial trains this net with a recipe Optuna picks.")
    val = st.session_state.get("sweep_val", VAL_FRACTION)
    t = _epoch_time(net, data_path, val) if data_path else None
    # What fits the budget, worked out once per net and dataset in this session: a run finishing in the
    # background changes the epoch time, and must not reset what was typed.
    fitted = st.session_state.setdefault(f"sweep_fit_{net}_{data_path}", budget.fit_budget(net, t.seconds) if t
                                         else (20, DEFAULT_EPOCHS.get(net, 20)))
    # No min/max (as in the run form): SweepConfig.validate() says what is out of range.
    trials = c[1].number_input("Trials", value=fitted[0], key=f"sweep_trials_{net}_{fitted[0]}",
                               help="Complete or pruned trials to run; a failed one is retried. The first value "
                                    f"fits the budget (about {budget.BUDGET_MINUTES} min) on this machine.")
    epochs = c[2].number_input("Most epochs per trial", value=fitted[1], key=f"sweep_epochs_{net}_{fitted[1]}",
                               help="Each trial draws its epochs from half of this up to this.")
    minutes = c[3].number_input("Timeout (minutes, 0 = none)", value=float(budget.BUDGET_MINUTES), step=5.0,
                                format="%.0f", key="sweep_timeout",
                                help="No trial starts after it; the one training finishes.")
    c = st.columns(4)
    pruner = c[0].selectbox("Pruner", PRUNERS, key="sweep_pruner",
                            help="median: stop a trial below the median of earlier ones at that epoch; "
                                 "halving: successive halving; none: every trial trains its epochs.")
    val = c[1].number_input("Validation share", value=VAL_FRACTION, format="%.2f", key="sweep_val",
                            help="Held out of the train split (by group); trials are judged on it, never on test.")
    seed = c[2].number_input("Seed", value=0, key="sweep_seed", help="The sampler's and every trial's seed.")
    drawn = c[3].number_input("Drawn-masks share", value=0.0, format="%.2f", key="sweep_drawn",
                              help="A share of the bare train faces also trains with a mask drawn on; the same for every trial.")
    if t is not None and trials >= 1 and epochs >= 0:  # else Start says what is out of range
        st.markdown(estimate_words(int(trials), int(epochs) or DEFAULT_EPOCHS.get(net, 20), float(minutes), t, net))
    elif data_path and t is None:
        st.caption("No estimate: this machine's epoch time could not be measured (no run of this net on this data "
                   "has finished an epoch, and timing a few steps failed).")
    if st.button("Start sweep", type="primary", disabled=data_path is None, key="start_sweep"):
        try:
            cfg = SweepConfig(net=net, data=data_path, trials=int(trials), epochs=int(epochs), timeout=float(minutes) * 60,
                              pruner=pruner, seed=int(seed), val_fraction=float(val), drawn_masks=float(drawn)).validate()
            # the knobs every trial's TrainConfig gets as they are: refused now, not at the first trial
            replace(PRESETS[net], data=data_path, seed=cfg.seed, val_fraction=cfg.val_fraction,
                    drawn_masks=cfg.drawn_masks).validate()
        except ValueError as e:
            st.error(str(e))
        else:
            sw = new_sweep(cfg)
            start_sweep(registry(), sw)
            st.session_state[SWEEP_KEY] = sw.id  # follow the sweep just started (set before the box is drawn)


def pick_sweep(key: str = SWEEP_KEY, empty: str = "No sweeps yet.") -> str | None:
    """A select box of the sweeps on disk, newest first; None (and an info box) when there is none."""
    ids = [s.id for s in list_sweeps()]
    if not ids:
        st.info(empty)
        return None
    if st.session_state.get(key) not in ids:  # first visit, or its folder was deleted
        st.session_state[key] = ids[0]
    return st.selectbox("Sweep", ids, key=key)


def trials_table(sw, b: dict | None) -> None:
    rows = sweep_rows(sw.trials(), b["trial"] if b else None)
    df = pd.DataFrame(rows)
    styled = df.style.apply(lambda r: [BEST_ROW if r["best"] else ""] * len(r), axis=1)
    st.dataframe(styled, hide_index=True, width="stretch")


@st.fragment(run_every=1.0)
def sweep_monitor(sweep_id: str) -> None:
    """The selected sweep, polled every second: from its job while one runs here, else from its folder."""
    sw = open_sweep(sweep_id)
    cfg = sw.config()
    job = registry().get(SWEEP, sweep_id)
    view = sweep_shown(sw, job)
    head = st.columns([4, 1])
    head[0].markdown(f"**{sweep_id}** · {sweep_summary(cfg)} · state **{sweep_state_words(view.state)}**")
    stop_or_resume(head[1], SWEEP, sweep_id, view.live, view.can_resume,
                   stop_help="Ends the training trial within one batch; Resume retries it where it stopped.",
                   resume_help="Runs the trials left; a stopped trial continues its run folder.")
    if view.state == "failed":
        st.error(f"The sweep failed: {view.error or 'unknown error'}")
    elif view.state == "interrupted":
        st.warning("This sweep was interrupted (its process stopped) while a trial trained; finished trials are safe. "
                   "Press Resume: the trial that was training continues its run folder.")
    elif view.state == "elsewhere":
        st.info(f"Another process (pid {view.pid}, e.g. `python -m maskrec sweep`) runs this sweep; "
                "this panel follows its trials as they finish.")
    elif view.state == "queued":
        st.info(registry().queued_words(SWEEP, sweep_id) if job is not None and job.waiting else "Starting…")
    b = best(sw)
    if view.state == "done":
        st.success(f"Sweep finished: {view.finished} trials." +
                   (f" Best validation F1 {b['value']:.4f} (trial {b['trial']}, run {Path(b['run']).name}); "
                    "compare the trials on Evaluate → Sweeps." if b else ""))
    if view.batch is not None:
        p = view.batch
        what = f"loading and decoding images {p.batch}/{p.batches}" if p.phase == "load" else \
            f"epoch {p.epoch} · {p.phase} batch {p.batch}/{p.batches}"
        st.progress(p.batch / max(p.batches, 1), text=f"Trial {view.trial}: {what}")
    m = st.columns(3)
    m[0].metric("Trials finished", f"{view.finished}/{view.trials}")
    m[1].metric("Training now", f"trial {view.trial}" if view.trial is not None else "–")
    m[2].metric(f"Best validation F1 (trial {b['trial']})" if b else "Best validation F1", f"{b['value']:.4f}" if b else "–")
    if sw.trials():
        trials_table(sw, b)
        if b:
            st.caption(f"★ best so far: run `{Path(b['run']).name}`. Every trial is a run: pick it in "
                       "the Run list (One run) to see its curves.")
    else:
        st.info("The table of trials fills as they finish.")


def sweeps_tab() -> None:
    """Evaluate's Sweeps tab: a sweep's trials, and Optuna's figures of them."""
    sweep_id = pick_sweep("eval_sweep", "No sweeps yet: start one on the Train page (New run → Sweep).")
    if sweep_id is None:
        return
    sw = open_sweep(sweep_id)
    st.caption(sweep_summary(sw.config()))
    trials = sw.trials()
    b = best(sw)
    if not trials:
        st.info("No trial has finished yet.")
        return
    trials_table(sw, b)
    if b is None:
        st.info("No trial has completed yet: the figures appear once one has (pruned and failed trials have no value).")
        return
    run_id = Path(b["run"]).name
    st.success(f"Best: trial {b['trial']}, validation F1 {b['value']:.4f}, run **{run_id}**. To judge it on the "
               f"test split, pick **run: {run_id} (best)** in the *Judge a checkpoint* tab.")
    stamp = (sw.dir / "trials.json").stat().st_mtime
    figs = memo(("sweep_figures", sweep_id, stamp), lambda: plots.sweep_figures(figures(sw)), max_entries=32)
    for title, fig in figs:
        st.plotly_chart(fig, key=f"sweep_{title}")
    drawn = {t for t, _ in figs}
    missing = [t.lower() for _, t in plots.SWEEP_TITLES if t not in drawn]
    if missing:
        st.caption(f"Not drawn yet: {', '.join(missing)} (Optuna needs more complete trials that differ).")
