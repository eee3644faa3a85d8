"""The one registry of the background jobs of this process: training runs, sweeps, the suspect
finder and video jobs, keyed by (kind, id), sharing one pool of ``MASKREC_MAX_JOBS`` slots.

Two heavy jobs on 2 cores only slow each other, whatever their kind: a job beyond the slots waits
as "queued" (``BackgroundJob.waiting``) and starts when one ends. The app keeps one Registry for the
whole server (the pages hold it in ``st.cache_resource``); each kind's module builds its job (a
:class:`~maskrec.jobs.background.BackgroundJob`) and hands the registry a factory, so that a second
click or a second tab finds the job that runs instead of starting the work twice::

    reg = Registry()                                     # MASKREC_MAX_JOBS slots (default 1)
    job = reg.start(SUSPECTS, key, lambda slots: SuspectJob(ds, slots=slots), label="the suspect finder")
    reg.get(SUSPECTS, key); reg.stop(SUSPECTS, key)      # what the pages poll; Stop
    reg.queued_words(SUSPECTS, key)                      # "Queued: waiting for a free slot (...)"

Stopping is the same for every kind (:meth:`Registry.stop`: the job's stop Event, asked between
steps); resuming is starting again with the same key once the old job has ended (for runs and
sweeps, ``maskrec.train.jobs.resume``). Who owns a job's folder on disk (a run's status.json, a
sweep's owner.json) is said by pid + token (:mod:`maskrec.core.process`), so a page of another
process, or this one after a restart, tells a live owner from a dead one.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, NamedTuple, TypeVar

from maskrec.jobs.background import BackgroundJob

MAX_JOBS_ENV = "MASKREC_MAX_JOBS"
# the kinds of job the app runs (their modules: train.jobs, train.suspects, video.job)
RUN, SWEEP, SUSPECTS, VIDEO = "run", "sweep", "suspects", "video"

J = TypeVar("J", bound=BackgroundJob)


def max_jobs(env: dict | None = None) -> int:
    """How many jobs work at once: MASKREC_MAX_JOBS, default 1 (ValueError for one below 1 or not
    a number: with no slot every job would wait forever)."""
    raw = (os.environ if env is None else env).get(MAX_JOBS_ENV, "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{MAX_JOBS_ENV} must be a whole number of at least 1, got {raw!r}")
    return n


class _Entry(NamedTuple):
    job: BackgroundJob
    label: str  # how a queued job's page names it: "run <id>", "the suspect finder", "video <name>"


class Registry:
    """Every background job of this process by (kind, id), and the slots they share. Thread-safe:
    every browser session of the server uses the same one."""

    def __init__(self, max_parallel: int | None = None):
        self.max_parallel = max_jobs() if max_parallel is None else max_parallel
        self.slots = threading.Semaphore(self.max_parallel)
        self._jobs: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def start(self, kind: str, ident: str, make: Callable[[threading.Semaphore], J], label: str | None = None) -> J:
        """The live job of (kind, ident), else a new one, ``make(slots)``, started: it queues until
        a slot is free. A second click or a second tab thus never starts the work twice."""
        with self._lock:
            old = self._jobs.get((kind, ident))
            if old is not None and old.job.alive:
                return old.job
            job = make(self.slots)
            self._jobs[(kind, ident)] = _Entry(job, label or f"{kind} {ident}")
        return job.start()

    def claim(self, kind: str, ident: str, make: Callable[[threading.Semaphore], J],
              label: str | None = None) -> tuple[J, bool]:
        """The job of (kind, ident) whatever its state, else a new one listed but not started, and
        whether this call made it (the caller then prepares its input and starts it). Listed
        before it starts, an overlapping caller finds it (reads "queued") instead of nothing."""
        with self._lock:
            old = self._jobs.get((kind, ident))
            if old is not None:
                return old.job, False
            job = make(self.slots)
            self._jobs[(kind, ident)] = _Entry(job, label or f"{kind} {ident}")
            return job, True

    def get(self, kind: str, ident: str | None) -> BackgroundJob | None:
        with self._lock:
            entry = self._jobs.get((kind, ident))
        return entry.job if entry else None

    def forget(self, kind: str, ident: str) -> None:
        """Drop a job that never started (its input could not be saved): the next try makes a new one."""
        with self._lock:
            self._jobs.pop((kind, ident), None)

    def active(self, kind: str | None = None) -> list[BackgroundJob]:
        """The jobs (of one kind, or all) whose thread still works or waits."""
        with self._lock:
            return [e.job for (k, _), e in self._jobs.items() if e.job.alive and kind in (None, k)]

    def stop(self, kind: str, ident: str) -> bool:
        """Ask the job to stop (a queued one leaves the queue, a working one stops at its next step);
        False when there is none."""
        job = self.get(kind, ident)
        if job is None:
            return False
        job.stop()
        return True

    def holding(self) -> list[str]:
        """What holds the slots now, in words ("run <id>", "sweep <id>", "the suspect finder"):
        what a queued job waits for."""
        with self._lock:
            entries = list(self._jobs.values())
        return [e.label for e in entries if e.job.alive and e.job.status == "running"]

    def queued_words(self, kind: str, ident: str) -> str:
        """What a queued job's page says, in plain words: it waits for a free slot, and for what."""
        with self._lock:
            me = self._jobs.get((kind, ident))
        others = [name for name in self.holding() if me is None or name != me.label]
        busy = f": {', '.join(others)} {'is' if len(others) == 1 else 'are'} running" if others else ""
        return f"Queued: waiting for a free slot ({MAX_JOBS_ENV}={self.max_parallel}){busy}."
