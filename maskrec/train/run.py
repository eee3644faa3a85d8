"""One owner for a training run's life: :func:`train_run` trains a run and turns how it ended, every
exception included, into the run's state, once. The CLI's ``train``, the Train page's job and each
trial of a sweep call it and only decide what to show::

    end = train_run(cfg, run, RunState(run), should_stop, on_progress, on_epoch=print)
    end.state   # "done" | "stopped" | "failed"; end.error: the text status.json and the page show
    stop_point(run)   # after a stop inside an epoch: StopPoint(epoch=2, batch=38, batches=47)

How an end reads (:func:`failure_text`):

- Ctrl-C (KeyboardInterrupt): stopped, resumable; ``end.exc`` says it was Ctrl-C;
- ``TrainingFailed`` (diverged), ``ValueError`` (the data or the settings: ``DataError``) and
  ``OSError`` (files, a full disk): failed with the message alone, which says what to change;
- anything else: failed with the last frames of its traceback (a bug to report); under torchrun
  prefixed with the rank, as it is usually a peer that died (the collective failed or timed out).

Resuming continues from the last finished epoch (its last.pt): the batches of the next epoch done
before a stop are trained again, in the same order with the same random draws (restored from
last.pt), so the weights end as an unstopped run's (tests/test_train.py). Where the stop landed is
kept in ``stopped_at.json`` (:func:`stop_point`): the page says how much is trained again.
"""
from __future__ import annotations

import traceback
from typing import Callable, NamedTuple

from maskrec.train import distributed
from maskrec.config import TrainConfig
from maskrec.train.runs import Run
from maskrec.train.runstate import RunState, complete, epochs_done
from maskrec.train.loop import BatchProgress, TrainingFailed, fit

USER_ERRORS = (TrainingFailed, ValueError, OSError)  # said plainly, without a traceback
TRACEBACK_LIMIT = 8
STOP_FILE = "stopped_at.json"


class StopPoint(NamedTuple):
    """Where a stop landed inside an epoch: ``batch`` of its ``batches`` were trained."""
    epoch: int
    batch: int
    batches: int


def stop_point(run: Run) -> StopPoint | None:
    """The stop that cut the epoch resuming trains next, None when none did (a stop between epochs,
    a kill, a failure: nothing of that epoch is known to be done)."""
    d = run.read_json(STOP_FILE) or {}
    if d.get("epoch") != epochs_done(run) + 1:
        return None
    return StopPoint(d["epoch"], d["batch"], d["batches"])


def _note_stop(run: Run, last: BatchProgress | None, ctx: distributed.Context) -> None:
    """Keep where a stop landed (rank 0 only), or forget an older one when it landed between epochs."""
    if not ctx.main:
        return
    if last is not None and last.phase == "train":
        run.write_json(STOP_FILE, {"epoch": last.epoch, "batch": last.batch, "batches": last.batches})
    else:
        (run.dir / STOP_FILE).unlink(missing_ok=True)


class Ended(NamedTuple):
    """How a training ended (immutable: the page's job hands it to the page thread)."""
    state: str  # done | stopped | failed
    error: str | None = None
    exc: BaseException | None = None  # what ended it early: the exception, or Ctrl-C's KeyboardInterrupt


def failure_text(e: BaseException, ctx: distributed.Context = distributed.SINGLE) -> str:
    """The error text a failed run keeps (see the module's docstring)."""
    if isinstance(e, TrainingFailed):
        return str(e)  # a sentence already: "training diverged: ...; lower the learning rate"
    said = f"{type(e).__name__}: {e}"
    if isinstance(e, USER_ERRORS):
        return said
    if ctx.enabled:
        return f"rank {ctx.rank}: {said}"
    return f"{said}\n{''.join(traceback.format_exception(e, limit=TRACEBACK_LIMIT))}"


def train_run(cfg: TrainConfig, run: Run, state: RunState, should_stop: Callable[[], bool] = lambda: False,
              on_progress: Callable[[BatchProgress], None] = lambda p: None,
              on_epoch: Callable[[dict], bool | None] = lambda rec: None,
              ctx: distributed.Context | None = None) -> Ended:
    """Train cfg into run (resuming from its last.pt), moving state to running and then to how it
    ended. ``on_epoch(rec)`` is called once each epoch is on disk; returning True ends the training
    there, stopped (a sweep's pruner). Never raises for a failed training: the end says it."""
    ctx = ctx or distributed.current()
    last: list[BatchProgress] = []  # the latest batch done: where a stop lands

    def progress(p: BatchProgress) -> None:
        last[:] = [p]
        on_progress(p)
    state.to("running")
    try:
        for rec in fit(cfg, run, should_stop, progress):
            if on_epoch(rec):
                state.to("stopped")
                return Ended("stopped")
    except KeyboardInterrupt as e:  # Ctrl-C in the CLI: the finished epochs and last.pt are kept
        _note_stop(run, last[0] if last else None, ctx)
        state.to("stopped")
        return Ended("stopped", None, e)
    except Exception as e:
        text = failure_text(e, ctx)
        state.to("failed", text)
        return Ended("failed", text, e)
    if not complete(run):  # fit returned early: a stop, noted before the state says so
        _note_stop(run, last[0] if last else None, ctx)
    return Ended(state.finish())
