"""What several commands share: the user-error type, the progress bar, Ctrl-C handling and the
help texts of options that more than one command takes. Cheap to import (no torch): ``main``
imports it before it knows the command."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm


class UserError(Exception):
    """A bad command line or an unusable input: ``main`` prints its one-line message, exit 2."""


ENGINE_HELP = ("inference engine (default: the fastest that runs here; evaluate and threshold default to "
               "an exact fp32 one, so they report the checkpoint's own scores)")
SPLIT_HELP = ("auto: the test split, or all images of a dataset without one; val: the validation split "
              "the checkpoint's run carved out of --data's train split (train --val-fraction); a -scenes "
              "suffix keeps the faces of annotated scenes only, -crops the rest (web crops)")
SPLITS = ("auto", "val", "val-scenes", "val-crops", "test-scenes", "test-crops")  # = maskrec.infer.evaluate.SPLITS


def add_engine_argument(p: argparse.ArgumentParser, engines: Iterable[str]) -> None:
    """``--engine`` with the names of ``maskrec.infer.engines.ENGINES`` (passed in by the command, which
    imports the engines; this module stays torch-free)."""
    p.add_argument("--engine", choices=list(engines), help=ENGINE_HELP)


def add_split_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=SPLITS, default="auto", help=SPLIT_HELP)


def fmt(v) -> str:
    return "  n/a " if v is None else f"{v:.4f}"


def check_file_name(flag: str, path: str) -> None:
    """Before any work: a file to write whose name the filesystem cannot hold (a component over its
    NAME_MAX, 255 bytes on most) is a UserError, not an OSError from deep inside the run."""
    limit = _name_max(Path(path).absolute().parent)
    for part in Path(path).parts:
        size = len(os.fsencode(part))
        if size > limit:
            shown = part if len(part) <= 40 else f"{part[:20]}…{part[-12:]}"
            raise UserError(f"{flag}: the name {shown!r} is {size:,} bytes long; a file or folder name "
                            f"may have at most {limit} bytes here")


def _name_max(folder: Path) -> int:
    """NAME_MAX of the filesystem ``folder`` is on (of its nearest existing folder), else 255."""
    for f in (folder, *folder.parents):
        try:
            return os.pathconf(f, "PC_NAME_MAX")
        except (OSError, ValueError, AttributeError):  # not there, a name too long itself, no pathconf
            continue
    return 255


def progress_bar(label: str):
    """A ``progress(done, total)`` callback that draws a tqdm bar on stderr, cleared once done
    reaches total. tqdm draws nothing when stderr is not a terminal (``disable=None``), so piped
    output and logs stay clean. A third argument relabels it: ``bar(done, total, "epoch 2 train")``
    starts the bar over under the new label (one bar through a run's phases)."""
    bar, shown = None, label

    def update(done: int, total: int, relabel: str | None = None):
        nonlocal bar, shown
        if bar is not None and relabel is not None and relabel != shown:
            bar.close()
            bar = None
        shown = relabel or shown
        if bar is None:
            if done >= total:
                return  # nothing left to show
            bar = tqdm(total=total, desc=shown, file=sys.stderr, leave=False, disable=None, dynamic_ncols=True)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            bar = None
    return update


@contextmanager
def stop_on_signals(*signals: int) -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM (default both) while the block runs, so a long command
    stops at its next step and still prints and writes what it did; the old handlers come back
    after it."""
    stop = threading.Event()
    old = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signals or (signal.SIGINT, signal.SIGTERM))}
    try:
        yield stop
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
