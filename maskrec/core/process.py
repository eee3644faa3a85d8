"""Which process wrote a file, and whether it still runs: what tells a live run or sweep from one
whose server was killed.

A writer records ``os.getpid()`` and :data:`TOKEN`; a reader asks :func:`writer_alive`. The token
matters because pids are reused: after a restart this server may have the pid an earlier one wrote.
"""
from __future__ import annotations

import os
import time
import uuid

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
