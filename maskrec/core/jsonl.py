"""Append-only JSONL records read from a point in time on, without reading what came before.

A camera's ``states.jsonl`` gains a line per camera every 5 s (17,280 a day), so after weeks of a shop
floor a request for "the last hour" must not parse the whole file. The files are appended in about time
order (a record's time is when its frame was captured; cameras lagging each other put lines a few seconds
out of order), so ``offset`` bisects the file's bytes on a record's time, ``SLACK_S`` before the time asked
for, and ``read`` parses from there on. What it returns is a superset of the records in [since, until):
the caller filters as it would the whole file. ``bench/jsonl_seek.py`` measures it against a whole read.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

SLACK_S = 600.0      # how far out of time order a line may be written (a camera lagging by minutes)
BLOCK = 64 * 1024    # below this many bytes the bisection stops and reading starts


def _time(line: bytes, key: str) -> float | None:
    try:
        return float(json.loads(line)[key])
    except (ValueError, KeyError, TypeError):
        return None  # a torn or foreign line: no time to steer by


def _first_time_after(fh: BinaryIO, pos: int, end: int, key: str) -> float | None:
    """The time of the first whole, readable line starting after byte ``pos`` (and before ``end``)."""
    fh.seek(pos)
    if pos:
        fh.readline()  # the rest of the line ``pos`` falls in
    while fh.tell() < end:
        line = fh.readline()
        if not line:
            return None
        t = _time(line, key)
        if t is not None:
            return t
    return None


def offset(path: str | Path, since: float, key: str = "t", slack_s: float = SLACK_S) -> int:
    """A byte offset of ``path`` before which every line's ``key`` is under ``since - slack_s`` (0: read
    it all). Lines out of time order by less than ``slack_s`` do not move it past a line that is wanted."""
    target = since - slack_s
    with open(path, "rb") as fh:
        lo, hi = 0, fh.seek(0, 2)
        while hi - lo > BLOCK:
            mid = (lo + hi) // 2
            t = _first_time_after(fh, mid, hi, key)
            if t is not None and t < target:
                lo = mid  # the lines up to mid's next one are older still
            else:
                hi = mid
    return lo


def read(path: str | Path, since: float | None = None, until: float | None = None, key: str = "t",
         slack_s: float = SLACK_S) -> list[dict]:
    """The records of ``path`` from about ``since`` to about ``until`` (all of them for None): every record
    with ``key`` in [since, until) and some just outside it; [] when there is no file; a torn line (the one
    being appended) is skipped. ``until`` stops the read ``slack_s`` after it, so only give it for a ``key``
    that grows with the file (a state's ``t``; not a person's ``first``)."""
    path = Path(path)
    if not path.is_file():
        return []
    start = offset(path, since, key, slack_s) if since is not None else 0
    out = []
    with open(path, "rb") as fh:
        fh.seek(start)
        if start:
            fh.readline()
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if until is not None and isinstance(rec, dict) and _num(rec.get(key)) > until + slack_s:
                break
            out.append(rec)
    return out


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("-inf")  # a record without a time never stops the read
