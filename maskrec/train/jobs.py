"""Training in the background, for the app: a job per run, in this process or as a torchrun job,
and a job per recipe search (``sweep.SweepJob``).

The Train page keeps one :class:`JobRegistry` (shared by every browser session) and asks it to
start, find or stop jobs; it never touches a thread itself. Each job moves its run's
:class:`runstate.RunState` (the one writer of the run's state) and never touches Streamlit.
:func:`sweep_shown` answers "what is this sweep doing?" for the page, from its job or its folder.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import NamedTuple

from maskrec.train import distributed
from maskrec.config import REPO_ROOT, TrainConfig
from maskrec.jobs.background import BackgroundJob
from maskrec.core.process import pid_alive
from maskrec.train.runs import Run
from maskrec.train.runstate import RunState
from maskrec.train.sweep import Sweep, SweepJob, owner
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


class JobRegistry:
    """Every TrainingJob of this process, by run id, and every SweepJob, by sweep id. Shared by all
    browser sessions (the pages keep it in ``st.cache_resource``); ``max_parallel`` jobs (training
    runs and sweeps together: they share the slots) train at once, the rest queue visibly."""

    def __init__(self, max_parallel: int = 1):
        self._jobs: dict[str, TrainingJob] = {}
        self._sweeps: dict[str, SweepJob] = {}
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max_parallel)

    def start(self, cfg: TrainConfig, run: Run, nproc: int = 1) -> TrainingJob:
        """Train run in this process, or with nproc > 1 as a torchrun job of nproc processes."""
        with self._lock:
            old = self._jobs.get(run.id)
            if old is not None and old.alive:
                return old  # a second click or a second tab must not start the run twice
            job = TorchrunJob(cfg, run, self._slots, nproc) if nproc > 1 else TrainingJob(cfg, run, self._slots)
            self._jobs[run.id] = job
        return job.start()

    def get(self, run_id: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def active(self) -> list[TrainingJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.alive]

    def start_sweep(self, sw: Sweep) -> SweepJob:
        """Run sweep's remaining trials in the background (a new sweep, or a resume: run_sweep
        continues a sweep folder where it stopped)."""
        with self._lock:
            old = self._sweeps.get(sw.id)
            if old is not None and old.alive:
                return old  # a second click or a second tab must not run the sweep twice
            job = SweepJob(sw, self._slots)
            self._sweeps[sw.id] = job
        return job.start()

    def get_sweep(self, sweep_id: str) -> SweepJob | None:
        with self._lock:
            return self._sweeps.get(sweep_id)

    def active_sweeps(self) -> list[SweepJob]:
        with self._lock:
            return [j for j in self._sweeps.values() if j.alive]

    def training_now(self) -> list[str]:
        """What holds the slots now, in words ("run <id>", "sweep <id>"): what a queued job waits for."""
        with self._lock:
            jobs = [(f"run {k}", j) for k, j in self._jobs.items()] + [(f"sweep {k}", j) for k, j in self._sweeps.items()]
        return [name for name, j in jobs if j.alive and j.status == "running"]


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
    live one, the folder says (owner.json names a live process: elsewhere, a dead one: interrupted;
    no owner: done when every trial is finished, else stopped, resumable)."""
    cfg = sw.config()
    finished = sum(1 for t in sw.trials() if t["state"] in ("complete", "pruned"))
    pid = owner(sw)
    live = job is not None and job.alive
    trial = batch = error = None
    if live:
        state, error, prog = job.status, job.error, job.progress()
        if prog is not None and state == "running":
            trial, batch = prog.trial, prog.batch
            finished = max(finished, prog.finished)
    elif pid is not None and pid != os.getpid() and pid_alive(pid):
        state = "elsewhere"
    elif pid is not None and not (job is not None and pid == os.getpid()):
        state = "interrupted"  # its process died mid-trial; run_sweep retries that trial on resume
    elif job is not None and job.status == "failed":
        state, error = "failed", job.error
    else:
        state = "done" if finished >= cfg.trials else "stopped"  # stopped: by Stop, or its timeout
    can_resume = not live and state in ("stopped", "failed", "interrupted") and finished < cfg.trials
    return SweepShown(state, error, finished, cfg.trials, trial, batch, live, can_resume,
                      pid if state == "elsewhere" else None)
