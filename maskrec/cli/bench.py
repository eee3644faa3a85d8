"""``bench``: speed against baselines measured in the same run (docs/guide.md, Performance). The benchmark
is not part of the package: it lives in the repo's ``bench/`` folder, above maskrec (which never
imports it), so this command starts it as a program of its own, ``python -m bench``, with the same
flags; its output, its ``error:`` line and its exit status are the command's."""
from __future__ import annotations

import os
import subprocess
import sys

from maskrec.config import REPO_ROOT
from maskrec.cli.common import UserError


def add_arguments(s):
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--data", help="dataset for the train section (default: facemask-dev beside the repo "
                                  "if present, else the demo data)")
    s.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    s.add_argument("--only", metavar="SECTION,...",
                   help="sections of bench.SECTIONS, comma-separated (default: all; an unknown "
                        "name lists them)")


def bench_command(a) -> list[str]:
    """``python -m bench`` with these options."""
    return ([sys.executable, "-m", "bench"] + (["--json"] if a.json else []) + (["--quick"] if a.quick else [])
            + (["--data", a.data] if a.data else []) + (["--only", a.only] if a.only is not None else []))


def run(a):
    if not (REPO_ROOT / "bench" / "__main__.py").is_file():
        raise UserError(f"the benchmark lives in the repository's bench/ folder, not found in {REPO_ROOT}")
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(bench_command(a), env={**os.environ, "PYTHONPATH": path}).returncode
