"""Command line: ``python -m maskrec COMMAND ...`` (``--help`` on each command).

Exit status: 0 success; 1 when an input failed (``predict`` still processes every image, as cat
and grep do) or a training run failed; 2 a bad command line: a bad option, or a checkpoint,
dataset or run folder that cannot be used (a one-line ``error:`` message, no traceback); 130
interrupted with Ctrl-C.

Start-up reads only the registry (names and help); the chosen command's module is imported when
the command line names it, so ``--help`` and ``models`` load no torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Iterable, NoReturn

from maskrec.cli.common import UserError
from maskrec.cli.registry import COMMANDS

DESCRIPTION = "MaskRec: face-mask recognition (data, training, recognition)."


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; each command's own options only for the names in ``commands``
    (default: all of them, which imports every command module and so torch). The others get a bare
    sub-parser, enough for the top-level ``--help`` and for ``invalid choice`` errors."""
    wanted = None if commands is None else set(commands)
    p = argparse.ArgumentParser(prog="python -m maskrec", description=DESCRIPTION)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for c in COMMANDS:
        s = sub.add_parser(c.name, help=c.help)
        if wanted is None or c.name in wanted:
            # The one intended import by name: the registry holds module names as strings, so a
            # command's heavy imports (torch, cv2, ...) load only when that command is used.
            mod = importlib.import_module(c.module)
            mod.add_arguments(s)
            s.set_defaults(func=mod.run)
    return p


def chosen(argv: list[str]) -> list[str]:
    """The command named on the command line (the first word that is not an option: the top-level
    parser takes no option but --help), as a list of zero or one registered names."""
    word = next((w for w in argv if not w.startswith("-")), None)
    return [c.name for c in COMMANDS if c.name == word]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser(chosen(argv)).parse_args(argv)
    try:
        return args.func(args) or 0
    except (UserError, FileNotFoundError, ValueError) as e:  # DataError, CheckpointError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def entry() -> NoReturn:
    """``python -m maskrec``: main(), then leave. A torchrun rank leaves through
    ``distributed.exit_now`` (see there); only a command that can run under torchrun (train) has
    loaded ``maskrec.train.distributed``, and looking it up in sys.modules keeps every other start torch-free."""
    code = main()
    dist = sys.modules.get("maskrec.train.distributed")
    if dist is not None and dist.launched():
        dist.exit_now(code)
    sys.exit(code)
