"""Training: launch a net of the registry (one run, or a sweep of recipes) in the background, watch live
charts, stop, resume, browse runs."""
from ui.start import through_navigation

through_navigation()  # before the slow imports below: see ui/start.py

import time
from dataclasses import replace

import pandas as pd
import streamlit as st
import torch

from maskrec.core import plots
from maskrec.config import PRESETS, sized_recipe
from maskrec.core.presentation import run_cells, short_data
from maskrec.train.runs import list_runs, new_run, open_run
from maskrec.train.runstate import epochs_done, shown, summary
from maskrec.jobs.registry import RUN
from maskrec.train.jobs import start_run
from maskrec.train.run import stop_point
from ui.common import dataset_picker, image_grid, memo, registry, stop_or_resume, thumb, train_images
from ui.sweeps import pick_sweep, sweep_form, sweep_monitor
from ui.train_form import network, settings

RUN_KEY = "run_select"
# the All runs table's columns (keys of runstate.summary): head, width in pixels (None: the content's;
# the data's folder names are cut to fit, the run's header above gives them whole) and help
ALL_RUNS = {"run": ("run", None, None), "net": ("net", None, None), "state": ("state", None, None),
            "epochs": ("epochs", None, None), "batch": ("batch", None, None), "lr": ("lr", None, None),
            "best_test_f1": ("best F1", None, "The best epoch's test F1"),
            "best_epoch": ("at", None, "The best epoch (by test F1)"),
            "test_auc": ("AUC", None, "The best epoch's test ROC AUC"),
            "minutes": ("min", None, "Minutes of training so far"), "data": ("data", 110, None)}
ALL_RUNS_ROWS = 20  # shown whole up to this many runs; more scroll (10 rows in view)
ROW_PX, SCROLLBAR_PX = 35, 16  # Streamlit's row height (the header's too); room for a sideways scrollbar
RECIPES = {"sized": "Sized to this dataset", "report": "Report recipe (for ~18k images)"}

st.title("Train")
data_path = dataset_picker()
on_data = f"`{short_data(data_path)}`" if data_path else "the data chosen in the sidebar"

with st.container(border=True):
    st.subheader("New run")
    kind = st.radio("What to start", ["One run", "Sweep"], horizontal=True, key="new_kind",
                    help="One run: train a net with the recipe below. Sweep: Optuna tries many recipes, "
                         "each an ordinary run judged on a validation split, and keeps the best.")
    if kind == "Sweep":
        sweep_form(data_path)
    else:
        c = st.columns(4)
        net = network(c[0])
        n_train = train_images(data_path) if data_path else None
        recipe = c[1].radio("Recipe", list(RECIPES), format_func=RECIPES.get, key="recipe",
                            help="The report's batch sizes were chosen for its ~18,000 train images; on a smaller "
                                 "set they leave few optimiser steps per epoch.")
        if recipe == "sized" and n_train:
            p, why = sized_recipe(net, n_train)
        else:
            p, why = PRESETS[net], "the report's recipe (section 2e/3e), made for ~18,000 train images"
        c[2].caption(f"**{RECIPES[recipe]}**: {why}.")
        values = settings(p, net)  # every knob of TrainConfig's table the form shows, filled from the recipe
        gpus = torch.cuda.device_count()
        if gpus > 1:
            nproc = st.number_input("GPUs (torchrun processes)", 1, gpus, gpus, key="nproc",
                                    help="More than 1: one torchrun process per GPU (DistributedDataParallel); "
                                         "the batch size stays the global one.")
        else:
            nproc = 1
            st.caption(f"Multi-GPU training (torchrun) needs several CUDA GPUs; this machine has {gpus}.")
        if st.button("Start training", type="primary", disabled=data_path is None, key="start_training"):
            try:
                cfg = replace(p, data=data_path, **values).validate()
            except ValueError as e:
                st.error(str(e))
            else:
                run = new_run(cfg)
                start_run(registry(), cfg, run, nproc=int(nproc))
                # A keyed selectbox keeps its own value over reruns; set it (before it is drawn below) so
                # the page follows the run just started instead of the one picked before.
                st.session_state[RUN_KEY] = run.id

if kind == "Sweep":
    st.subheader("Sweep")
    sweep_id = pick_sweep(empty=f"No sweeps yet. Press **Start sweep** (it searches the form's network's recipe on {on_data}).")
    if sweep_id is not None:
        sweep_monitor(sweep_id)
    st.subheader("Run")  # the run watched before the form switched stays in view (a trial is a run too)

runs = list_runs()
if not runs:
    st.info(f"No runs yet. Press **Start training** (it trains the form's network on {on_data}).")
    st.stop()

ids = [r.id for r in runs]
if st.session_state.get(RUN_KEY) not in ids:  # first visit, or its run folder was deleted
    st.session_state[RUN_KEY] = ids[0]
# The label must not change while a run trains (a changing label would reset the widget).
run_id = st.selectbox("Run", ids, key=RUN_KEY)


def resume_words(run, state: str | None) -> str:
    """What Resume keeps, said plainly: it goes on from the last finished epoch's checkpoint."""
    done, point = epochs_done(run), stop_point(run)
    if not run.last_ckpt.exists():
        return ("Stopped before epoch 1 ended: there is no checkpoint to resume from, so Resume is not offered; "
                "Start training begins a new run.") if state == "stopped" else ""
    if done >= run.config().epochs:
        return ""
    if point is not None:
        return (f"Resume continues from the end of epoch {done} (its checkpoint): the {point.batch} of {point.batches} "
                f"batches of epoch {point.epoch} done before Stop are trained again, in the same order with the "
                "same random draws, so the run ends as an unstopped one would.")
    return f"Resume continues from the end of epoch {done} (its checkpoint): epoch {done + 1} starts from its first batch."


def _eta(history, progress, total_epochs) -> str:
    if not history or progress is None or progress.epoch == 0:
        return "–"  # known once an epoch has ended (the metric's help says so)
    per_epoch = sum(r["seconds"] for r in history) / len(history)
    in_epoch = time.time() - progress.epoch_started
    left = per_epoch * (total_epochs - progress.epoch + 1) - in_epoch
    return f"{max(left, 0) / 60:.1f} min"


@st.fragment(run_every=1.0)
def monitor(run_id: str):
    run = open_run(run_id)
    cfg = run.config()
    job = registry().get(RUN, run_id)
    view = shown(run, job)  # the one answer to "what is this run doing?"
    state, error, history, live, prog = view.state, view.error, view.history, view.live, view.progress

    head = st.columns([3, 1, 1])
    head[0].markdown(f"**{run_id}** · {cfg.net} · batch {cfg.batch_size} · lr {cfg.lr} · "
                     f"data `{cfg.data or 'demo'}` · state **{state}**")
    kept = resume_words(run, state) if view.can_resume or state == "stopped" else None
    stop_or_resume(head[1], RUN, run_id, live, view.can_resume, resume_help=kept,
                   stop_help="Ends training within one batch; the finished epochs and the last one's checkpoint are kept.")
    if kept:
        st.caption(kept)
    if state == "failed":
        st.error(f"Training failed: {error or 'unknown error'}")
    elif state == "interrupted":
        st.warning(f"This run was interrupted (server stopped) after epoch {len(history)}; its finished epochs and "
                   "last checkpoint are safe. Press Resume to continue.")
    elif state == "queued":
        st.info(registry().queued_words(RUN, run_id) if job is not None and job.waiting else "Starting…")

    if prog is not None:
        if prog.phase == "load":
            st.progress(prog.batch / max(prog.batches, 1), text=f"Loading and decoding images {prog.batch}/{prog.batches}")
        else:
            st.progress(prog.batch / max(prog.batches, 1),
                        text=f"Epoch {prog.epoch}/{cfg.epochs} · {prog.phase} batch {prog.batch}/{prog.batches}")
    m = st.columns(4)
    m[0].metric("Epochs done", f"{len(history)}/{cfg.epochs}")
    m[1].metric("Last epoch time", f"{history[-1]['seconds']:.1f} s" if history else "–")
    m[2].metric("ETA", _eta(history, prog, cfg.epochs) if live else "–",
                help="time left, from the mean epoch so far: known once the first epoch has ended")
    best = max(history, key=lambda r: r["test_f1"], default=None)
    m[3].metric(f"Best test F1 (epoch {best['epoch']})" if best else "Best test F1", f"{best['test_f1']:.4f}" if best else "–")

    if history:
        # built once per new epoch, not on every one-second poll
        fig = memo(("curves", run_id, len(history)), lambda: plots.training_curves(history), max_entries=64)
        st.plotly_chart(fig, key=f"curves_{run_id}_{len(history)}")
    else:
        st.info("The charts appear as soon as epoch 1 ends.")

    errors = run.read_json("errors.json")
    if errors and errors.get("images"):
        st.subheader(f"Test images the model gets wrong (epoch {errors['epoch']}: "
                     f"{errors['n_wrong']} of {errors['n']})")
        wrong = errors["images"][:16]
        thumbs = [thumb(e["path"]) for e in wrong]
        image_grid(thumbs, [f"label {e['label']} · P(mask) {e['p_mask']:.2f}" for e in wrong], cols=8, width=96)


monitor(run_id)


@st.fragment(run_every=1.0)
def all_runs():
    # Redrawn with the run's header, from the same answer (shown(run, job)): a run training now
    # reads here as it does above, not as it was when the page last ran whole.
    reg = registry()
    rows = [run_cells({**(row := summary(r, reg.get(RUN, r.id))), "data": short_data(row["data"])}) for r in list_runs()]
    # The columns that tell runs apart, headed in words, narrow enough for the page's width (the loss
    # and error at the best epoch are on Evaluate -> Compare runs), and as tall as its rows: at the
    # default height a sideways scrollbar squeezed a short table to one row and a second scrollbar.
    # On a narrow window it scrolls sideways, its scrollbar below the last row, not over it.
    height = ROW_PX * (len(rows) + 1) + 2 + SCROLLBAR_PX if len(rows) <= ALL_RUNS_ROWS else "auto"
    st.dataframe(pd.DataFrame(rows, columns=list(ALL_RUNS)), hide_index=True, width="stretch", height=height,
                 column_config={k: st.column_config.TextColumn(label, width=w, help=h)
                                for k, (label, w, h) in ALL_RUNS.items()})


with st.expander("All runs"):
    all_runs()
