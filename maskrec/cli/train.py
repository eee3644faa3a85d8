"""``train --net NET --data DATA ...`` or ``train --resume RUN_DIR``: one line per epoch.

The same ``trainrun.train_run()`` as the Train page's job: it records how the run ended, this
command only says it. Under torchrun every process runs this command; rank 0 alone prints and
writes the run.
"""
from __future__ import annotations

import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from maskrec.models import checkpoint
from maskrec.train import distributed
from maskrec.config import PRESETS, TrainConfig, sized_recipe
from maskrec.core.fields import add_flags, flag_values
from maskrec.data import discover
from maskrec.train.runs import Run, new_run, open_run
from maskrec.train.runstate import RunState
from maskrec.models.build import build
from maskrec.train.loop import TrainingFailed, pick_device
from maskrec.train.splits import resolve_data
from maskrec.train.run import train_run
from maskrec.cli.common import UserError, fmt, progress_bar

def add_arguments(s):
    add_flags(s, TrainConfig)  # one option per row of TrainConfig's table: --net, --epochs, --precision...
    s.add_argument("--recipe", choices=["report", "sized"], default="report",
                   help="report: the report's presets (default); sized: the batch scaled to the train split "
                        "(the Train page's default, see docs/guide.md); explicit options override either")
    s.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<time>-<net>-<id>)")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or interrupted run (with --epochs: a new total)")


def run(a):
    run = None
    if a.resume:
        try:
            run = open_run(a.resume)
        except FileNotFoundError as e:
            raise UserError(str(e))
        cfg = run.config()
        if a.epochs:
            cfg = replace(cfg, epochs=a.epochs)
    else:
        if not a.net:
            raise UserError(f"train needs --net ({' or '.join(PRESETS)}), or --resume RUN_DIR")
        if a.net not in PRESETS:
            raise UserError(f"unknown net {a.net!r} (choose from {', '.join(PRESETS)})")
        try:
            over = flag_values(a, TrainConfig)  # the options given; the preset (or the sized recipe) fills the rest
        except ValueError as e:
            raise UserError(str(e))
        base = PRESETS[a.net]
        if a.recipe == "sized":
            base, why = sized_recipe(a.net, sum(resolve_data(replace(base, data=a.data or "")).counts()["train"].values()))
            print(f"recipe sized to the data: {why}")
        cfg = replace(base, **over)
        try:
            cfg.validate()
        except ValueError as e:
            raise UserError(str(e))
        if cfg.data:  # before a run folder exists, as for --init: data that cannot be used (a zip Python
            # cannot read, one class only...) is the user's error (a DataError: exit 2), not a failed run
            discover(cfg.data)
        if cfg.init:  # before a run folder exists: a wrong file is the user's error, not a failed run
            try:
                checkpoint.load_weights(build(cfg.net, dropout=cfg.dropout), cfg.init, cfg.net)
            except checkpoint.CheckpointError as e:
                raise UserError(str(e))
        for teacher in cfg.teachers():  # the same for the teachers: readable MaskRec checkpoints
            try:
                checkpoint.model(checkpoint.load(teacher), teacher)
            except checkpoint.CheckpointError as e:
                raise UserError(f"cannot teach with {teacher}: {e}")
    ctx = distributed.SINGLE
    if distributed.launched():  # under torchrun: join the job; rank 0 alone prints and writes the run
        ctx = distributed.setup(pick_device(cfg.device, distributed.local_rank()))
    ok = False
    try:
        rc = _train(a, cfg, run, ctx)
        ok = rc == 0  # every rank got here whole; after a failure a peer may never reach a barrier
        return rc
    finally:
        distributed.teardown(ok)


def _run_folder(a, cfg, run, ctx):
    """Rank 0 creates the run folder (or stores a resumed run's new epoch count) and every rank
    gets its path, so the processes of a torchrun job agree on one folder."""
    err = None
    if ctx.main:
        try:
            if run is None:
                run = new_run(cfg, run_dir=Path(a.out) if a.out else None)
            elif a.epochs:
                run.write_config(cfg)
        except FileExistsError as e:
            err = str(e)
    where, err = ctx.broadcast((str(run.dir) if run else None, err))
    if err:
        raise UserError(err)
    return Run(Path(where))


def _train(a, cfg, run, ctx):
    say = print if ctx.main else (lambda *args, **kw: None)
    resuming = run is not None
    run = _run_folder(a, cfg, run, ctx)
    if resuming:  # after the epoch last.pt committed, where fit goes on (recover finishes a save cut short)
        after = run.recover() if ctx.main else None
        say(f"resuming {run.dir}" + (f" after epoch {after} of {cfg.epochs}" if after is not None else ""))
    else:
        say(f"run {run.dir}: {cfg.net} epochs={cfg.epochs} batch={cfg.batch_size} lr={cfg.lr} "
            f"wd={cfg.weight_decay} dropout={cfg.dropout} seed={cfg.seed} data={cfg.data or 'demo'}"
            + (f" processes={ctx.world}" if ctx.enabled else ""))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if ctx.enabled:  # Ctrl-C reaches every rank: all stop at the same batch, the run stays resumable
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    bar = progress_bar("loading data")  # one bar, relabelled through the run's phases

    def on_progress(p):
        if ctx.main:
            bar(p.batch, p.batches, f"epoch {p.epoch} {p.phase}" if p.epoch else "loading data")

    val = bool(cfg.val_fraction)
    # With a validation split the epochs are judged on it and the test split only reports: it is printed
    # once, after the last epoch, so nobody watches test figures while deciding when a run is good enough.
    shown = "val" if val else "test"
    say(f"{'epoch':>5} {'train_loss':>10} {shown + '_loss':>9} {'train_err':>9} {shown + '_err':>8} "
        f"{'train_auc':>9} {shown + '_auc':>8} {'train_f1':>8} {shown + '_f1':>7} {'sec':>6}")

    def on_epoch(r):
        say(f"{r['epoch']:>5} {r['train_loss']:>10.4f} {r[shown + '_loss']:>9.4f} {r['train_error']:>9.4f} "
            f"{r[shown + '_error']:>8.4f} {fmt(r['train_auc']):>9} {fmt(r[shown + '_auc']):>8} "
            f"{r['train_f1']:>8.4f} {r[shown + '_f1']:>7.4f} {r['seconds']:>6.1f}", flush=True)
        if "warning" in r:
            say(f"warning: {r['warning']}")
    # rank 0 alone writes the run's state; train_run records how the run ended, here we only say it
    end = train_run(cfg, run, RunState(run, write=ctx.main), stop.is_set, on_progress, on_epoch, ctx)
    e = end.exc
    if isinstance(e, KeyboardInterrupt):
        print(f"\ninterrupted; resume with: python -m maskrec train --resume {run.dir}", file=sys.stderr)
        return 130
    if isinstance(e, TrainingFailed):
        say(f"error: training failed: {e}", file=sys.stderr)
        return 1
    if isinstance(e, ValueError):
        raise UserError(str(e))
    if e is not None:
        if not ctx.enabled:
            raise e
        # under torchrun this is usually a peer that died (the collective fails or times out)
        print(f"error: rank {ctx.rank} of {ctx.world}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    judge = "val_f1" if val else "test_f1"  # best.pt is picked on validation when there is one
    best = max(run.metrics(), key=lambda r: r[judge], default=None)
    if best:
        say(f"best {judge.replace('_f1', '')} F1 {best[judge]:.4f} at epoch {best['epoch']}; "
            f"checkpoints: {run.best_ckpt}, {run.last_ckpt}")
    last = run.metrics()[-1] if run.metrics() else None
    if val and last and last["epoch"] == cfg.epochs:  # the finished run's test figures, reported, never judged
        say(f"test split at the last epoch (threshold 0.5; reported only): loss {last['test_loss']:.4f} "
            f"error {last['test_error']:.4f} AUC {fmt(last['test_auc'])} F1 {last['test_f1']:.4f}")
