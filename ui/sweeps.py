"""The recipe search on the pages: the Train page's sweep form and live panel, the Evaluate page's
Sweeps tab. Widgets and drawing only; the sweep runs in ``sweep.SweepJob`` (through the shared
job registry), what a sweep is doing is ``trainjobs.sweep_shown``, and the table's cells are
``presentation.sweep_rows``.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from maskrec import plots
from maskrec.config import PRESETS
from maskrec.presentation import sweep_rows, sweep_state_words, sweep_summary
from maskrec.sweep import DEFAULT_EPOCHS, PRUNERS, VAL_FRACTION, SweepConfig, best, figures, list_sweeps, new_sweep, open_sweep
from maskrec.trainjobs import sweep_shown
from ui.common import memo, registry

SWEEP_KEY = "sweep_select"
BEST_ROW = "background-color: rgba(255, 196, 0, 0.18)"


def sweep_form(data_path: str | None) -> None:
    """The New-run box's Sweep form: Start sweep makes the folder and queues its job."""
    c = st.columns(4)
    net = c[0].selectbox("Network", list(PRESETS), key="sweep_net",
                         help="Every trial trains this net with a recipe Optuna picks.")
    # No min/max (as in the run form): SweepConfig.validate() says what is out of range.
    trials = c[1].number_input("Trials", value=20, key="sweep_trials",
                               help="Complete or pruned trials to run; a failed one is retried.")
    epochs = c[2].number_input("Most epochs per trial", value=DEFAULT_EPOCHS.get(net, 20), key=f"sweep_epochs_{net}",
                               help="Each trial draws its epochs from half of this up to this.")
    minutes = c[3].number_input("Timeout (minutes, 0 = none)", value=0.0, step=5.0, key="sweep_timeout",
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
            registry().start_sweep(sw)
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
    job = registry().get_sweep(sweep_id)
    view = sweep_shown(sw, job)
    head = st.columns([4, 1])
    head[0].markdown(f"**{sweep_id}** · {sweep_summary(cfg)} · state **{sweep_state_words(view.state)}**")
    if view.live and head[1].button("Stop", key=f"stop_sweep_{sweep_id}",
                                    help="Ends the training trial within one batch; Resume retries it where it stopped."):
        job.stop()
    if view.can_resume and head[1].button("Resume", key=f"resume_sweep_{sweep_id}",
                                          help="Runs the trials left; a stopped trial continues its run folder."):
        registry().start_sweep(sw)
    if view.state == "failed":
        st.error(f"The sweep failed: {view.error or 'unknown error'}")
    elif view.state == "interrupted":
        st.warning("This sweep was interrupted (its process stopped) while a trial trained; finished trials are safe. "
                   "Press Resume: the trial that was training continues its run folder.")
    elif view.state == "elsewhere":
        st.info(f"Another process (pid {view.pid}, e.g. `python -m maskrec sweep`) runs this sweep; "
                "this panel follows its trials as they finish.")
    elif view.state == "queued":
        others = registry().training_now()
        st.info(f"Queued: {others[0]} is training; the sweep starts when it ends." if others else "Starting…")
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
