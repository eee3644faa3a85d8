"""Where a run's state is decided: one small state machine, one writer, one reader for the pages.

::

    queued ──> running ──> done
       │          ├──────> stopped      (a stop asked for; resumable while epochs are left)
       │          └──────> failed       (with the error text)
       └──> stopped | failed             (stopped while waiting for a slot, or a bad start)
    stopped | failed | interrupted ──> queued | running     (Resume)
    done ──> queued | running                               (the CLI's --resume with more --epochs)

``interrupted`` is never written: it is how :func:`read` reports a ``running`` or ``queued`` run
whose process is gone (server killed, machine rebooted) with epochs left; gone after its last
epoch was saved, the run reads ``done``. A new run folder has no state until its
owner's first move (queued by the page's job, running by the CLI); one that never got one reads
``failed`` ("no status file"), or ``interrupted`` when it holds finished epochs.

Whoever runs a training (the page's background job, the CLI, rank 0 of a torchrun job) holds one
:class:`RunState` and moves it with :meth:`RunState.to`; it keeps the state in memory under a lock
and writes ``status.json`` (with its pid, see :mod:`maskrec.core.process`) through
:meth:`runs.Run.write_status`. A full disk keeps the in-memory state right (the page shows it) and
leaves the old file whole. Everyone else reads the disk with :func:`read`. The Train page asks
:func:`shown` what to draw for a run, and :func:`summary` for its row in a table of runs.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from maskrec.core import process
from maskrec.train.runs import LIVE, Run

STATES = ("queued", "running", "done", "stopped", "failed", "interrupted")

TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"queued", "running"}),  # a new run, or a CLI run that starts at once
    "queued": frozenset({"running", "stopped", "failed"}),
    "running": frozenset({"done", "stopped", "failed"}),
    "stopped": frozenset({"queued", "running"}),
    "failed": frozenset({"queued", "running"}),
    "interrupted": frozenset({"queued", "running"}),
    "done": frozenset({"queued", "running"}),
}
FINAL = ("done", "stopped", "failed")  # how a training that ran can end


class BadTransition(RuntimeError):
    pass


def read(run: Run) -> dict:
    """The stored status of run (``state``, and ``error`` when it failed); a ``running`` or
    ``queued`` state whose process is gone reads as ``interrupted``."""
    st = run.status()
    if "state" not in st:
        return {"state": "interrupted" if run.metrics() else "failed", "error": "no status file"}
    if st["state"] in LIVE and not process.writer_alive(st.get("pid", -1), st.get("token")):
        # killed after its last epoch was saved (before it could write done): nothing is left to do
        return {**st, "state": "done" if complete(run) else "interrupted"}
    return st


def epochs_done(run: Run) -> int:
    """The last finished epoch on disk: where resuming goes on (once :meth:`Run.recover` has
    finished a save cut short, which a scan of the runs and every resume do)."""
    hist = run.metrics()
    return hist[-1].get("epoch", len(hist)) if hist else 0


def complete(run: Run) -> bool:
    """Every epoch of the run's config is on disk."""
    return epochs_done(run) >= run.config().epochs


def end_state(run: Run) -> str:
    """How a training that returned without error ended: "done" when every epoch of its config is on
    disk, else "stopped". A stop that lands after the last epoch's training (during its test pass,
    which always completes) leaves a complete run: that is done, with nothing left to resume."""
    return "done" if complete(run) else "stopped"


def resumable(run: Run, state: str | None = None) -> bool:
    """Whether Resume can continue run (its state given, or read from disk): it ended early and has a
    checkpoint to continue from."""
    state = state or read(run).get("state")
    return state in ("stopped", "interrupted", "failed") and run.last_ckpt.exists() and not complete(run)


class RunState:
    """The one writer of a run's state. ``write=False`` (torchrun ranks other than 0) keeps the
    state in memory only, so exactly one process writes the file."""

    def __init__(self, run: Run, write: bool = True):
        self.run, self._write = run, write
        self._lock = threading.Lock()
        st = read(run) if (run.dir / "status.json").exists() else {}
        self._state: str | None = st.get("state")
        self._error: str | None = st.get("error")

    @property
    def state(self) -> str | None:
        with self._lock:
            return self._state

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    def snapshot(self) -> tuple[str | None, str | None]:
        with self._lock:
            return self._state, self._error

    def to(self, state: str, error: str | None = None) -> None:
        """Move to state (a transition the machine allows, else BadTransition) and write it."""
        with self._lock:
            if state != self._state and state not in TRANSITIONS[self._state]:
                raise BadTransition(f"run {self.run.id}: {self._state} -> {state} is not a transition")
            self._state, self._error = state, error
            if not self._write:
                return
            rec = {"state": state, **process.stamp(), "updated": time.time(),
                   **({"error": error} if error else {})}
            try:
                self.run.write_status(rec)
            except OSError:
                # Disk full: the in-memory state still informs the pages; on disk the run reads
                # 'running' until this process ends, then 'interrupted' - never a torn file.
                pass

    def finish(self) -> str:
        """The training returned: done or stopped, by what is on disk (:func:`end_state`)."""
        state = end_state(self.run)
        self.to(state)
        return state

    def adopt(self) -> str | None:
        """Take over what another process (rank 0 of a torchrun job) wrote, once it has exited: its
        final state when it wrote one, else None (it died first)."""
        st = read(self.run)
        if st.get("state") not in FINAL:
            return None
        with self._lock:
            self._state, self._error = st["state"], st.get("error")
        return self._state


@dataclass(frozen=True)
class Shown:
    """What the Train page draws for one run."""
    state: str | None
    error: str | None
    history: list[dict]
    live: bool  # a job of this process is working on it (Stop is offered)
    progress: Any  # train.BatchProgress of a live in-process job, else None
    can_resume: bool


def shown(run: Run, job=None) -> Shown:
    """The one answer to "what is this run doing?" for the page: a job of this process knows best
    (its state is current even when the disk is full); without one, the disk says."""
    if job is not None:
        state, error = job.state.snapshot()
        history, live = job.history(), job.alive
        progress = job.progress() if live else None
    else:
        st = read(run)
        state, error, history, live, progress = st.get("state"), st.get("error"), run.metrics(), False, None
    return Shown(state, error, history, live, progress, not live and resumable(run, state))


def summary(run: Run, job=None) -> dict:
    """One row of a table of runs, from what :func:`shown` says (so it agrees with the run's header
    while it trains): config essentials, state, epochs done, the best epoch by test F1. Numbers stay
    numbers, None where there is none yet (presentation.run_cells makes them table cells)."""
    view = shown(run, job)
    return row(run.id, run.config(), view.state, view.history)


def row(name: str, cfg, state: str | None, hist: list[dict]) -> dict:
    """:func:`summary`'s row from its parts: also that of a shipped checkpoint's record (runs.Shipped)."""
    best = max(hist, key=lambda r: r.get("test_f1") or 0.0, default={})
    return {"run": name, "net": cfg.net, "state": state,
            "epochs": f"{len(hist)}/{cfg.epochs}", "batch": cfg.batch_size, "lr": cfg.lr,
            "best_test_f1": best.get("test_f1"), "best_epoch": best.get("epoch"),
            "test_auc": best.get("test_auc"), "test_error": best.get("test_error"),
            "test_loss": best.get("test_loss"), "minutes": round(sum(r.get("seconds", 0) for r in hist) / 60, 1),
            "data": cfg.data or "demo"}
