"""Run by tests/test_runs.py: ``python tests/killsave.py ARGV...`` is ``python -m maskrec ARGV...``
with every file write of an epoch's save (``Run.save_epoch``) numbered, and the process killed with
SIGKILL at one of them, as a power cut or ``kill -9`` would stop it: no ``finally``, no cleanup.

``KILL_AT=EPOCH:K:WHEN`` kills at the K-th write (1-based) of EPOCH's save, WHEN ``before`` its
rename (the temp file written and fsynced, not yet in place: a kill mid-write) or ``after`` it.
``SAVE_LOG=FILE`` appends ``EPOCH NAME`` for each of those writes, in order (what a reference run
tells the test about the sequence it is to cut).
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    from maskrec.train import runs
    from maskrec.cli.main import main as cli

    kill = os.environ.get("KILL_AT")
    at = (int(kill.split(":")[0]), int(kill.split(":")[1]), kill.split(":")[2]) if kill else None
    log = os.environ.get("SAVE_LOG")
    saving = {"epoch": None, "n": 0}
    real_save, real_replace = runs.Run.save_epoch, os.replace

    def save_epoch(self, ck):
        saving.update(epoch=ck["epoch"], n=0)
        try:
            real_save(self, ck)
        finally:
            saving["epoch"] = None

    def replace(src, dst):  # every atomic write ends in this rename (maskrec.core.atomic)
        if saving["epoch"] is None:
            return real_replace(src, dst)
        saving["n"] += 1
        here = (saving["epoch"], saving["n"])
        if log:
            with open(log, "a") as f:
                f.write(f"{saving['epoch']} {Path(dst).name}\n")
        if at == (*here, "before"):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
        if at == (*here, "after"):
            os.kill(os.getpid(), signal.SIGKILL)

    runs.Run.save_epoch = save_epoch
    os.replace = replace
    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
