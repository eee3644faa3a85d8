"""A background job: work on a daemon thread that never touches Streamlit; pages poll it.

The mechanics every job of the app shares (training runs, sweeps, the suspect finder, video jobs;
:mod:`maskrec.jobs.registry` keeps them and hands out the slots): a stop
Event the work asks between steps, the latest progress handed out under a lock, a shared
Semaphore of ``slots`` that makes extra jobs wait visibly as "queued" (two heavy jobs on 2 cores
only slow each other), and any failure turned into status "failed" with the error text instead
of a thread that dies silently. A subclass writes ``_work`` and, where the state must also go
somewhere else (a run's status file), ``_set``; one whose work maps its own failures, ``_run``.
"""
from __future__ import annotations

import threading
import traceback


class BackgroundJob:
    # errors that come from the user's input or the disk: said plainly, without a traceback
    USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
    TRACEBACK_LIMIT = 8

    def __init__(self, name: str, slots: threading.Semaphore | None = None):
        self._slots = slots
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = None
        self._status, self._error = "queued", None
        self._waiting = threading.Event()  # set while the thread waits for a slot (all taken)
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def waiting(self) -> bool:
        """Whether the job is queued for a slot now: started, and every slot is taken. (A job not
        started yet reads "queued" too, but is not waiting.)"""
        return self._waiting.is_set()

    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    def progress(self):
        with self._lock:
            return self._progress

    def _set_progress(self, p) -> None:
        with self._lock:
            self._progress = p

    def _set(self, status: str, error: str | None = None) -> None:
        with self._lock:  # the same lock as progress: a reader never sees a half-made change
            self._status, self._error = status, error

    def _work(self) -> None:
        raise NotImplementedError

    def _user_message(self, e: BaseException) -> str:
        return f"{type(e).__name__}: {e}"

    def _main(self) -> None:
        if self._slots is not None and not self._slots.acquire(blocking=False):
            self._waiting.set()
            try:
                while not self._slots.acquire(timeout=0.2):
                    if self._stop.is_set():
                        self._set("stopped")
                        return
            finally:
                self._waiting.clear()
        try:
            self._run()
        finally:
            if self._slots is not None:
                self._slots.release()

    def _run(self) -> None:
        """The work, and any failure as status "failed". A job whose work already turns its own
        failures into a state (``trainjobs.TrainingJob``: ``trainrun.train_run``) replaces this."""
        try:
            self._set("running")
            self._work()
        except self.USER_ERRORS as e:
            self._set("failed", self._user_message(e))
        except Exception as e:  # anything else: keep the traceback for the report
            self._set("failed", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=self.TRACEBACK_LIMIT)}")
