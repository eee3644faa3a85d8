"""Training in the background, for the app: a job per run, in this process or as a torchrun job,
and a job per recipe search (``sweep.SweepJob``).

The Train page asks the one job registry (:class:`maskrec.jobs.registry.Registry`, shared by every
browser session and every kind of job) to start (:func:`start_run`, :func:`start_sweep`), find,
stop or :func:`resume` them; it never touches a thread itself. Each job moves its run's
:class:`runstate.RunState` (the one writer of the run's state) and never touches Streamlit.
:func:`sweep_shown` answers "what is this sweep doing?" for the page, from its job or its folder.
"""
from __future__ import annotations

import signal
import subprocess
import threading
from typing import NamedTuple

from maskrec.train import distributed
from maskrec.config import REPO_ROOT, TrainConfig
from maskrec.jobs.background import BackgroundJob
from maskrec.jobs.registry import RUN, SWEEP, Registry
from maskrec.train.runs import Run, open_run
from maskrec.train.runstate import RunState, shown
from maskrec.train.sweep import Sweep, SweepJob, open_sweep, owner
from maskrec.train.loop import BatchProgress
from maskrec.train.run import train_run


class TrainingJob(BackgroundJob):
    """Runs ``trainrun.train_run`` on a daemon thread (``jobs.BackgroundJob``). Never touches
    Streamlit; pages poll it.

    ``history()`` and ``progress()`` hand out copies under a lock, ``stop()`` sets an Event that
    fit() polls before every batch, and train_run turns a failure into state "failed" with the error
    text. ``slots`` makes extra jobs wait visibly as "queued". ``state`` is the run's RunState:
    ``status`` and ``error`` read it.
    """

    def __init__(self, cfg: TrainConfig, run: Run, slots: threading.Semaphore | None = None):
        super().__init__(f"train-{run.id}", slots)
        self.cfg, self.run = cfg, run
        self.state = RunState(run)
        self._history: list[dict] = list(run.metrics())

    @property
    def status(self) -> str | None:
        return self.state.state

    @property
    def error(self) -> str | None:
        return self.state.error

    def start(self) -> "TrainingJob":
        self.state.to("queued")
        return super().start()

    def history(self) -> list[dict]:
        with self._lock:
            return list(self._history)

    def _set(self, status: str, error: str | None = None) -> None:
        self.state.to(status, error)

    def _run(self) -> None:
        train_run(self.cfg, self.run, self.state, self._stop.is_set, self._set_progress, self._add_epoch)

    def _add_epoch(self, rec: dict) -> None:
        with self._lock:
            self._history.append(rec)


class TorchrunJob(TrainingJob):
    """A TrainingJob whose training runs as ``torchrun --nproc_per_node N -m maskrec train --resume
    RUN_DIR`` on this machine (one process per GPU). The run folder is the database: history and
    the final state are read from it (rank 0 writes them, through its own RunState); ``stop()``
    sends SIGTERM to torchrun, which passes it to every rank, and the ranks stop together at the
    next batch, resumable. Output goes to ``torchrun.log`` in the run folder; how it was launched
    to ``launch.json``."""

    _run = BackgroundJob._run  # the launcher's failures (torchrun cannot start) as any job's; the ranks map theirs

    def __init__(self, cfg: TrainConfig, run: Run, slots: threading.Semaphore | None = None, nproc: int = 2):
        super().__init__(cfg, run, slots)
        self.nproc = nproc
        self._proc: subprocess.Popen | None = None
        self._signalled = False

    def stop(self) -> None:
        self._stop.set()
        self._signal()

    def _signal(self) -> None:
        with self._lock:  # once: a second SIGTERM would cut torchrun's graceful shutdown short
            if self._proc is not None and not self._signalled and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                self._signalled = True

    def history(self) -> list[dict]:
        return self.run.metrics()

    def progress(self) -> BatchProgress | None:
        return None  # batch progress stays inside the ranks; epochs show through history()

    def _work(self) -> None:
        cmd = distributed.torchrun_command(self.run.dir, self.nproc)
        self.run.write_json("launch.json", {"nproc": self.nproc, "command": cmd})
        with open(self.run.dir / "torchrun.log", "ab") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
            with self._lock:
                self._proc = proc
            if self._stop.is_set():  # stopped while starting
                self._signal()
            code = proc.wait()
        if self.state.adopt() is None:  # torchrun or a rank died before rank 0 could say how it ended
            tail = (self.run.dir / "torchrun.log").read_text(errors="replace").strip().splitlines()[-15:]
            self._set("failed", f"torchrun exited with code {code}:\n" + "\n".join(tail))


def launched_nproc(run: Run) -> int:
    """How many processes trained this run last (1 unless a TorchrunJob launched it)."""
    return int((run.read_json("launch.json") or {}).get("nproc", 1))


def start_run(reg: Registry, cfg: TrainConfig, run: Run, nproc: int = 1) -> TrainingJob:
    """Train run in the background (through the registry's slots): in this process, or with
    nproc > 1 as a torchrun job of nproc processes. The live job when the run already has one."""
    return reg.start(RUN, run.id, lambda slots: TorchrunJob(cfg, run, slots, nproc) if nproc > 1
                     else TrainingJob(cfg, run, slots))


def start_sweep(reg: Registry, sw: Sweep) -> SweepJob:
    """Run sweep's remaining trials in the background (a new sweep, or a resume: run_sweep
    continues a sweep folder where it stopped). The live job when the sweep already has one."""
    return reg.start(SWEEP, sw.id, lambda slots: SweepJob(sw, slots))


def resume(reg: Registry, kind: str, ident: str):
    """Resume a run or a sweep (kind RUN or SWEEP) where it stopped, when it can be (not twice from
    two tabs, nor one with nothing left to do): its new job, else None."""
    job = reg.get(kind, ident)
    if kind == RUN:
        run = open_run(ident)
        return start_run(reg, run.config(), run, launched_nproc(run)) if shown(run, job).can_resume else None
    sw = open_sweep(ident)
    return start_sweep(reg, sw) if sweep_shown(sw, job).can_resume else None


class SweepShown(NamedTuple):
    """What the Train page draws for a sweep (immutable: read once per poll)."""
    state: str  # queued | running | done | stopped | failed | interrupted | elsewhere (another process runs it)
    error: str | None
    finished: int  # complete or pruned trials
    trials: int  # asked for
    trial: int | None  # the trial training now
    batch: BatchProgress | None  # that trial's progress
    live: bool  # a job of this process runs it
    can_resume: bool
    pid: int | None  # the owning process, for "elsewhere"


def sweep_shown(sw: Sweep, job: SweepJob | None = None) -> SweepShown:
    """The one answer to "what is this sweep doing?": a job of this process knows best; without a
    live one, the folder says (owner.json names a live process: elsewhere; a dead one, or an earlier
    process with this pid, which its token tells: interrupted; no owner: done when every trial is
    finished, else stopped, resumable)."""
    cfg = sw.config()
    finished = sum(1 for t in sw.trials() if t["state"] in ("complete", "pruned"))
    held = owner(sw)
    live = job is not None and job.alive
    trial = batch = error = None
    if live:
        state, error, prog = job.status, job.error, job.progress()
        if prog is not None and state == "running":
            trial, batch = prog.trial, prog.batch
            finished = max(finished, prog.finished)
    elif held is not None and held.alive and not held.mine:
        state = "elsewhere"
    elif held is not None and not (job is not None and held.mine):
        state = "interrupted"  # its process died mid-trial; run_sweep retries that trial on resume
    elif job is not None and job.status == "failed":
        state, error = "failed", job.error
    else:
        state = "done" if finished >= cfg.trials else "stopped"  # stopped: by Stop, or its timeout
    can_resume = not live and state in ("stopped", "failed", "interrupted") and finished < cfg.trials
    return SweepShown(state, error, finished, cfg.trials, trial, batch, live, can_resume,
                      held.pid if state == "elsewhere" else None)
