"""A user's review decisions on a dataset: keep, relabel or exclude a file, never touching their folder.

The decisions of one dataset are one CSV under ``MASKREC_HOME/overrides/`` (``csv_path(ds)``), one
line per decision, appended, so the file is also the history::

    path,action,label,when
    train/000123_1.jpg,relabel,0,2026-12-03T14:02:11+00:00
    test/000007_0.jpg,exclude,,2026-12-03T14:02:15+00:00

``path`` is relative to the dataset's root, ``action`` is keep | relabel | exclude, ``label`` is
0/1 for a relabel and empty otherwise; the last decision on a path wins, and ``undo`` removes a
path's lines. ``maskrec.data.discover`` applies them (``apply``), so the scan, the explorer,
training and evaluation all see the same labels; ``discover(..., overrides=False)`` is the folder
as it is, which the review shows.

Why the file is keyed by the dataset's source (its folder(s) as the user named them, resolved),
not by ``Dataset.fingerprint()``: the fingerprint covers every file's size, mtime and label, so it
changes when one image is added or touched, and when a decision is applied (a relabel changes a
label). Keyed by it, the decisions would be lost on the first new file, and the decided dataset
would no longer find its own decisions. A folder moved elsewhere starts with no decisions.

Writes are atomic and safe with two tabs or processes deciding at once: each takes an exclusive
``fcntl`` lock on a lock file beside the CSV, reads it, writes the new content to a temp file and
renames it over the old one, so a reader never sees half a file and no decision is lost.

    decide(ds, "train/000123_1.jpg", "relabel", 0)   # Decision
    load(ds)                                          # {path: Decision}; OverridesError on bad lines
    ds = apply(ds)                                    # labels relabelled, excluded files dropped
"""
from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import os
import re
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, NamedTuple

from maskrec.core.atomic import atomic_write_text
from maskrec.config import home
from maskrec.core.errors import DataError

ACTIONS = ("keep", "relabel", "exclude")
FIELDS = ("path", "action", "label", "when")
HEADER = ",".join(FIELDS) + "\n"


class Decision(NamedTuple):
    path: str  # relative to the dataset's root, "/"-separated
    action: str  # keep | relabel | exclude
    label: int | None  # the new label of a relabel, else None
    when: str  # ISO 8601 time


class Stamp(NamedTuple):
    """Which decisions a dataset carries (``Dataset.overrides``), for a run's config."""
    csv: str
    sha1: str  # of the CSV's bytes
    decisions: int  # paths decided (the last decision of each)

    def as_dict(self) -> dict:
        return self._asdict()


class OverridesError(DataError):
    """An overrides file with lines that cannot be used, or a decision that cannot be made."""


def identity(ds) -> str:
    """A stable name of the dataset: a hash of its resolved source folder(s) (see the docstring)."""
    source = getattr(ds, "source", "") or os.path.realpath(ds.root)
    return hashlib.sha1(source.encode()).hexdigest()[:16]


def csv_path(ds) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(ds.root).name)[:40] or "dataset"
    return home() / "overrides" / f"{name}-{identity(ds)}.csv"


def relative(ds, path: str | os.PathLike) -> str:
    """``path`` (absolute, relative to the dataset's root, or to the working directory) as the CSV
    names it; OverridesError when it is not a file inside the dataset. Links are not resolved: a
    dataset may be a folder of links (they would lead out of it)."""
    root = os.path.abspath(ds.root)
    p = str(path)
    candidates = [p] if os.path.isabs(p) else [os.path.join(root, p), os.path.abspath(p)]
    for c in candidates:
        rel = os.path.relpath(os.path.abspath(c), root)
        if not rel.startswith(os.pardir) and os.path.isfile(c):
            return Path(rel).as_posix()
    raise OverridesError(f"{path} is not a file of the dataset at {ds.root}")


def _check(ds, path: str, action: str, label: str | int | None) -> int | None:
    """The label of a decision, or ValueError saying why it is not one."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    label = "" if label is None else str(label).strip()
    if action == "relabel":
        if label not in ("0", "1"):
            raise ValueError(f"a relabel needs label 0 or 1, got {label!r}")
        out = int(label)
    elif label:
        raise ValueError(f"{action} takes no label, got {label!r}")
    else:
        out = None
    if not path or os.path.isabs(path) or Path(os.path.normpath(path)).parts[0] == os.pardir:
        raise ValueError(f"path {path!r} is not relative to the dataset's root")
    if not os.path.isfile(os.path.join(ds.root, path)):
        raise ValueError(f"no such file {path!r} in {ds.root}")
    return out


def _iso(when: str) -> None:
    try:
        datetime.fromisoformat(when)
    except ValueError:
        raise ValueError(f"time {when!r} is not an ISO time (e.g. 2026-12-03T14:02:11+00:00)") from None


def _parse(ds, text: str, where: Path) -> dict[str, Decision]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return {}
    problems = []
    if tuple(c.strip() for c in rows[0]) != FIELDS:
        problems.append(f"line 1: the header must be {HEADER.strip()!r}")
    out: dict[str, Decision] = {}
    for n, row in enumerate(rows[1:], start=2):  # line numbers as an editor shows them (one line a row)
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(FIELDS):
            problems.append(f"line {n}: {len(row)} fields, expected {len(FIELDS)} ({HEADER.strip()})")
            continue
        path, action, label, when = (c.strip() for c in row)
        try:
            lab = _check(ds, path, action, label)
            _iso(when)
        except ValueError as e:
            problems.append(f"line {n}: {e}")
            continue
        out[path] = Decision(path, action, lab, when)
    if problems:
        raise OverridesError(f"{where}: {len(problems)} bad line(s): " + "; ".join(problems))
    return out


def _read(ds) -> str:
    try:
        return csv_path(ds).read_text()
    except FileNotFoundError:
        return ""


def load(ds) -> dict[str, Decision]:
    """{path: its last decision}; OverridesError listing every bad line (number and why)."""
    return _parse(ds, _read(ds), csv_path(ds))


@contextmanager
def _locked(ds) -> Iterator[Path]:
    """The CSV's path, held under an exclusive lock (threads too: each open is its own lock holder)."""
    path = csv_path(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _line(d: Decision) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([d.path, d.action, "" if d.label is None else d.label, d.when])
    return buf.getvalue()


def decide(ds, path: str | os.PathLike, action: str, label: int | None = None) -> Decision:
    """Record one decision (appended; atomic, see the docstring). OverridesError for a path outside
    the dataset or a bad action/label."""
    rel = relative(ds, path)
    try:
        lab = _check(ds, rel, action, label)
    except ValueError as e:
        raise OverridesError(str(e)) from None
    d = Decision(rel, action, lab, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    with _locked(ds) as p:
        old = _read(ds)
        atomic_write_text(p, (old or HEADER) + ("" if not old or old.endswith("\n") else "\n") + _line(d))
    return d


def undo(ds, path: str | os.PathLike) -> bool:
    """Remove every decision on path; True when there was one. The file's other lines stay as written."""
    try:
        rel = relative(ds, path)
    except OverridesError:  # the file may be gone since: its lines can still go
        rel = Path(str(path)).as_posix()
    with _locked(ds) as p:
        old = _read(ds)
        lines = old.splitlines(keepends=True)
        keep = lines[:1] + [ln for ln in lines[1:] if next(csv.reader([ln]), [""])[0].strip() != rel]
        if len(keep) == len(lines):
            return False
        atomic_write_text(p, "".join(keep))
    return True


def export_csv(ds) -> bytes:
    """The CSV as it is on disk (the header alone when nothing was decided)."""
    return (_read(ds) or HEADER).encode()


def stamp(ds) -> Stamp | None:
    """Which decisions ``apply`` would use: None when there are none."""
    text = _read(ds)
    n = len(_parse(ds, text, csv_path(ds))) if text else 0
    return Stamp(str(csv_path(ds)), hashlib.sha1(text.encode()).hexdigest(), n) if n else None


def apply(ds):
    """The dataset with its decisions applied: relabelled items carry the new label, excluded
    items (and their scene views) are gone; the decisions are named in ``ds.overrides``. The same
    dataset when nothing was decided."""
    text = _read(ds)
    decisions = _parse(ds, text, csv_path(ds)) if text else {}
    if not decisions:
        return ds
    root = os.path.abspath(ds.root)
    items, gone = [], set()
    for it in ds.items:
        d = decisions.get(Path(os.path.relpath(os.path.abspath(it.path), root)).as_posix())
        if d is not None and d.action == "exclude":
            gone.add(it.path)
        elif d is not None and d.action == "relabel":
            items.append(it._replace(label=d.label))
        else:
            items.append(it)
    return replace(ds, items=items, views=[(p, vs) for p, vs in ds.views if p not in gone],
                   overrides=Stamp(str(csv_path(ds)), hashlib.sha1(text.encode()).hexdigest(), len(decisions)))


def summary(ds) -> dict:
    """Counts of the decisions in force: {"keep", "relabel", "exclude", "to_mask", "to_bare", "total", "csv"}."""
    decisions = load(ds).values()
    out = {a: sum(d.action == a for d in decisions) for a in ACTIONS}
    out["to_mask"] = sum(d.action == "relabel" and d.label == 1 for d in decisions)
    out["to_bare"] = sum(d.action == "relabel" and d.label == 0 for d in decisions)
    return {**out, "total": len(decisions), "csv": str(csv_path(ds))}
