"""Runs on disk: the disk is the database.

A run is a folder ``runs/<id>/`` holding ``config.json``, ``metrics.jsonl`` (one JSON object per
finished epoch), ``status.json``, ``errors.json`` (test images the model gets wrong), ``last.pt`` and
``best.pt`` (by test F1). Every file is written atomically, so a reload, a second tab, a server
restart or a kill -9 finds every finished epoch and a loadable checkpoint.

An epoch is committed by one rename, that of ``last.pt`` (:meth:`Run.save_epoch`): it carries the
epoch's metrics record, its error gallery and whether it is the best so far, and the files written
after it (errors.json, best.pt, the metrics line) are redone from it by :meth:`Run.recover` when a
kill cut the save short. A kill anywhere thus leaves either the previous epoch committed (resuming
trains this one again) or this one, whole; never a lost line, never a line without its checkpoint.

This module only stores: what a run's state means (a ``running`` run whose process is gone reads as
``interrupted``) and which moves are allowed is :mod:`maskrec.train.runstate`'s, which builds on it.
"""
from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from maskrec.models import checkpoint
from maskrec.core import process
from maskrec.core.atomic import atomic_write_text, clear_stale_temps
from maskrec.config import REPO_ROOT, TrainConfig, runs_dir

METRIC_KEYS = ("epoch", "train_loss", "test_loss", "train_error", "test_error", "train_auc",
               "test_auc", "train_f1", "test_f1", "seconds")
LIVE = ("queued", "running")  # states written by a process that may since have died (see runstate)
# what last.pt holds for resuming (and for recovering a cut save) that best.pt, a file for using, leaves out
LAST_ONLY = ("optimizer", "rng", "scaler", "train_model", "ema_n", "best", "errors")


def _clean(obj):
    """JSON has no NaN: write null instead, so every reader can parse the file."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def read_metrics(path: Path) -> list[dict]:
    """A metrics.jsonl's records, in order ([] without the file); a torn line is left out."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class Run:
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def last_ckpt(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best_ckpt(self) -> Path:
        return self.dir / "best.pt"

    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(json.loads((self.dir / "config.json").read_text()))

    def write_config(self, cfg: TrainConfig) -> None:
        atomic_write_text(self.dir / "config.json", json.dumps(cfg.to_dict(), indent=2))

    def metrics(self) -> list[dict]:
        """Finished epochs, in order. A torn last line (from an old crash) is ignored."""
        return read_metrics(self.dir / "metrics.jsonl")

    def append_metrics(self, record: dict) -> None:
        # Rewrite the whole (small) file atomically rather than append: a crash mid-write can
        # then never leave a torn line behind.
        lines = [json.dumps(_clean(r)) for r in self.metrics() if r.get("epoch", 0) < record["epoch"]]
        lines.append(json.dumps(_clean(record)))
        atomic_write_text(self.dir / "metrics.jsonl", "\n".join(lines) + "\n")

    def write_status(self, record: dict) -> None:
        """Write status.json. Only runstate.RunState calls this: it decides which moves are allowed."""
        atomic_write_text(self.dir / "status.json", json.dumps(_clean(record)))

    def status(self) -> dict:
        """status.json as its writer left it ({} when there is none). What it means now (a running
        run whose process is gone is interrupted) is for :func:`maskrec.train.runstate.read` to say."""
        return self.read_json("status.json", {})

    def save_epoch(self, ck: dict) -> None:
        """An epoch on disk. ``ck`` is its last.pt: the training state plus the epoch's record
        (``metrics``), error gallery (``errors``) and whether it is the best so far (``best``).
        Writing last.pt commits the epoch; what follows it, :meth:`recover` can redo from it alone."""
        checkpoint.save(self.last_ckpt, ck)  # the commit point
        self._follow(ck)

    def _follow(self, ck: dict) -> None:
        """The files a committed last.pt implies, the metrics line last: a reader that sees the line
        finds that epoch's gallery and best.pt, and a line present means the rest was written."""
        self.write_json("errors.json", ck["errors"])
        if ck["best"]:
            checkpoint.save(self.best_ckpt, {k: v for k, v in ck.items() if k not in LAST_ONLY})
        self.append_metrics(ck["metrics"])  # drops any line beyond this epoch, too

    def recover(self) -> int | None:
        """Finish a save that a kill cut short, from last.pt, and remove temp files of dead writers.
        Returns the epoch last.pt committed, where training goes on (0 without one; None when it
        cannot be read, which resuming will say). Called by the run's writer before it resumes, and
        by a scan for a run no live process owns (:meth:`settle`)."""
        clear_stale_temps(self.dir)
        if not self.last_ckpt.exists():
            return 0
        try:
            ck = checkpoint.load(self.last_ckpt)
        except checkpoint.CheckpointError:
            return None
        epochs = [r.get("epoch", 0) for r in self.metrics()]
        # Its line missing: the save stopped after the commit. A line beyond it cannot come from
        # save_epoch (the line follows its last.pt) but a copied or edited folder can hold one: it
        # goes, so the file says what resuming continues from.
        if "metrics" in ck and (ck["epoch"] not in epochs or max(epochs) > ck["epoch"]):
            # (a last.pt written before epochs were committed this way lacks errors and best: the
            # folder's gallery stays, best.pt is left as it is)
            self._follow({"errors": self.read_json("errors.json", {}), "best": False, **ck})
        return ck["epoch"]

    def settle(self) -> None:
        """What a scan of the runs does for this one: remove temp files of dead writers and, when
        its last save was cut short (last.pt newer than the metrics line that should follow it) and
        no live process owns the run, :meth:`recover` it. Two file times, most of the time."""
        clear_stale_temps(self.dir)
        lines = self.dir / "metrics.jsonl"
        try:
            cut = self.last_ckpt.stat().st_mtime_ns > (lines.stat().st_mtime_ns if lines.exists() else 0)
        except FileNotFoundError:  # no last.pt: nothing was committed
            return
        st = self.status()
        if cut and not (st.get("state") in LIVE and process.writer_alive(st.get("pid", -1), st.get("token"))):
            self.recover()

    def write_json(self, name: str, obj) -> None:
        atomic_write_text(self.dir / name, json.dumps(_clean(obj)))

    def read_json(self, name: str, default=None):
        try:
            return json.loads((self.dir / name).read_text())
        except (OSError, ValueError):
            return default


def new_run(cfg: TrainConfig, root: Path | None = None, run_dir: Path | None = None) -> Run:
    """Create a run folder (a given one, or runs/<time>-<net>-<random>) with its config. Its state is
    written by whoever trains it (its first RunState.to: queued, or running), not here."""
    if run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = (root or runs_dir()) / f"{stamp}-{cfg.net}-{secrets.token_hex(2)}"
    run_dir = Path(run_dir)
    if (run_dir / "config.json").exists():
        raise FileExistsError(f"{run_dir} already holds a run; use resume, or pick another folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(run_dir)
    run.write_config(cfg)
    return run


def list_runs(root: Path | None = None) -> list[Run]:
    """Every run folder under root, newest first, each settled (:meth:`Run.settle`): a run whose
    process was killed mid-save reads as that save finished."""
    root = root or runs_dir()
    if not root.exists():
        return []
    runs = [Run(d) for d in root.iterdir() if (d / "config.json").exists()]
    for run in runs:
        run.settle()
    return sorted(runs, key=lambda r: (r.dir / "config.json").stat().st_mtime, reverse=True)


def open_run(run_id_or_path: str | Path, root: Path | None = None) -> Run:
    p = Path(run_id_or_path)
    if not (p / "config.json").exists():
        p = (root or runs_dir()) / str(run_id_or_path)
    if not (p / "config.json").exists():
        raise FileNotFoundError(f"no run at {run_id_or_path}")
    return Run(p)



@dataclass(frozen=True)
class Shipped:
    """A shipped checkpoint's training record, read-only: ``checkpoints/<name>.metrics.jsonl`` beside
    ``<name>.pt`` (checkpoints/README.md), so that its curves can sit beside the runs' (Compare runs)."""
    checkpoint: Path

    @property
    def id(self) -> str:
        return f"shipped: {self.checkpoint.stem}"  # as the Evaluate page's checkpoint list names it

    def metrics(self) -> list[dict]:
        return read_metrics(self.checkpoint.with_suffix(".metrics.jsonl"))

    def config(self) -> TrainConfig:
        """The recipe it trained with, as the checkpoint carries it (loads the file: seconds on a cold disk)."""
        return TrainConfig.from_dict(checkpoint.load(self.checkpoint)["config"])


def shipped(folder: Path | None = None) -> list[Shipped]:
    """The shipped checkpoints whose training record ships beside them, by name."""
    folder = folder or REPO_ROOT / "checkpoints"
    return [Shipped(p) for p in sorted(folder.glob("*.pt")) if p.with_suffix(".metrics.jsonl").exists()]
