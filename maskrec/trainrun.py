"""One owner for a training run's life: :func:`train_run` trains a run and turns how it ended, every
exception included, into the run's state, once. The CLI's ``train``, the Train page's job and each
trial of a sweep call it and only decide what to show::

    end = train_run(cfg, run, RunState(run), should_stop, on_progress, on_epoch=print)
    end.state   # "done" | "stopped" | "failed"; end.error: the text status.json and the page show

How an end reads (:func:`failure_text`):

- Ctrl-C (KeyboardInterrupt): stopped, resumable; ``end.exc`` says it was Ctrl-C;
- ``TrainingFailed`` (diverged), ``ValueError`` (the data or the settings: ``DataError``) and
  ``OSError`` (files, a full disk): failed with the message alone, which says what to change;
- anything else: failed with the last frames of its traceback (a bug to report); under torchrun
  prefixed with the rank, as it is usually a peer that died (the collective failed or timed out).
"""
from __future__ import annotations

import traceback
from typing import Callable, NamedTuple

from . import distributed
from .config import TrainConfig
from .runs import Run
from .runstate import RunState
from .train import BatchProgress, TrainingFailed, fit

USER_ERRORS = (TrainingFailed, ValueError, OSError)  # said plainly, without a traceback
TRACEBACK_LIMIT = 8


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
    state.to("running")
    try:
        for rec in fit(cfg, run, should_stop, on_progress):
            if on_epoch(rec):
                state.to("stopped")
                return Ended("stopped")
    except KeyboardInterrupt as e:  # Ctrl-C in the CLI: the finished epochs and last.pt are kept
        state.to("stopped")
        return Ended("stopped", None, e)
    except Exception as e:
        text = failure_text(e, ctx)
        state.to("failed", text)
        return Ended("failed", text, e)
    return Ended(state.finish())
