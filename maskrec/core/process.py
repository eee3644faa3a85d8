"""Which process wrote a file, and whether it still runs: what tells a live run or sweep from one
whose server was killed.

A writer records ``os.getpid()`` and :data:`TOKEN` (:func:`stamp`); a reader asks :func:`writer_alive`,
or :func:`owner_of` for an :class:`Owner`. The token matters because pids are reused: after a restart
this server may have the pid an earlier one wrote. Every job folder of the app is owned this way
(a run's status.json, a sweep's owner.json).
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from typing import NamedTuple

TOKEN = uuid.uuid4().hex  # identifies this process: a record with our pid but another token is not ours
STARTED = time.time()  # (near enough) when this process started: anything it wrote is newer


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts: it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def writer_alive(pid: int, token: str | None) -> bool:
    """Whether the process that wrote (pid, token) still runs: our pid with another token is an
    earlier process's record, dead whatever the pid says."""
    if pid == os.getpid():
        return token == TOKEN
    return pid > 0 and pid_alive(pid)


def stamp() -> dict:
    """What a writer records to own a file: this process's pid and token."""
    return {"pid": os.getpid(), "token": TOKEN}


class Owner(NamedTuple):
    """The process a record names (see :func:`stamp`)."""
    pid: int
    token: str | None  # None in a record written before tokens were

    @property
    def alive(self) -> bool:
        return writer_alive(self.pid, self.token)

    @property
    def mine(self) -> bool:
        return self.pid == os.getpid() and self.token == TOKEN


def owner_of(record) -> Owner | None:
    """The Owner a record names, None when it names no process."""
    pid = record.get("pid") if isinstance(record, dict) else None
    return Owner(pid, record.get("token")) if isinstance(pid, int) and pid > 0 else None


def end_process(proc: subprocess.Popen, grace_s: float = 30.0) -> int:
    """Ask a child process to end (SIGTERM: a server shuts down cleanly), kill it if it is still there
    after ``grace_s``, and reap it; its exit status. For the servers tests and benches start."""
    proc.terminate()
    try:
        return proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
