"""The bounded work queue: inference on a fixed pool of threads, at most ``workers + queue``
requests admitted at once; one more is refused at once (``Busy``: the server answers 503 with
Retry-After) rather than waited for, so memory and latency stay bounded whatever clients do.

    pool = WorkPool(workers=2, queue=8)
    with pool.reserve() as slot:       # Busy when full; the slot is held while the body is read
        body = await read(request)
        result = await slot.run(decode_and_detect, body)   # on a worker thread

A request reserves its slot before it reads its upload, so only admitted requests hold a body. The
slot goes back when its job has run (or was cancelled before it started), or on leaving the ``with``
if nothing was submitted; a client that hangs up never frees a slot its job still uses.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable


class Busy(Exception):
    """Every slot is taken: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy: every worker and queue slot is taken; retry after {retry_after} s")
        self.retry_after = retry_after


class WorkPool:
    def __init__(self, workers: int, queue: int):
        self.workers, self.queue = workers, queue
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="maskrec-serve")
        self._lock = threading.Lock()
        self._held = 0         # admitted requests: reading their body, queued or running
        self._running = 0
        self._job_s = 0.5      # a running mean of a job's seconds, for Retry-After

    @property
    def held(self) -> int:
        return self._held

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        """Admitted but not running yet (reading their upload, or queued for a worker)."""
        with self._lock:
            return self._held - self._running

    def retry_after(self) -> int:
        """Whole seconds until a slot is likely free: the requests ahead, at the mean job time."""
        with self._lock:
            return max(1, math.ceil(self._job_s * self._held / self.workers))

    def reserve(self) -> "Slot":
        with self._lock:
            full = self._held >= self.capacity
            if not full:
                self._held += 1
        if full:
            raise Busy(self.retry_after())
        return Slot(self)

    def _release(self, _future=None) -> None:
        with self._lock:
            self._held -= 1

    def _timed(self, fn: Callable, args: tuple):
        with self._lock:
            self._running += 1
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running -= 1
                self._job_s = 0.8 * self._job_s + 0.2 * (time.perf_counter() - t)

    def shutdown(self) -> None:
        """Queued jobs are dropped, running ones finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Slot:
    """One admitted request's place in the pool; run one job with it, or leave it unused."""

    def __init__(self, pool: WorkPool):
        self._pool = pool
        self._state = "held"  # -> "submitted" (the job's end releases it) or "released"

    def submit(self, fn: Callable, *args) -> Future:
        """``fn(*args)`` on a worker thread; the slot is released when it has run or was cancelled."""
        if self._state != "held":
            raise RuntimeError(f"this slot is {self._state}")
        self._state = "submitted"
        try:
            fut = self._pool._executor.submit(self._pool._timed, fn, args)
        except RuntimeError:  # shut down: nothing will run it
            self._state = "released"
            self._pool._release()
            raise
        fut.add_done_callback(self._pool._release)
        return fut

    async def run(self, fn: Callable, *args):
        """``submit`` awaited from the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def release(self) -> None:
        if self._state == "held":
            self._state = "released"
            self._pool._release()

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
