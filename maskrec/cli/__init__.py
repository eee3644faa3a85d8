"""The command line, one module per command; see :mod:`maskrec.cli.main` and the registry of
commands in :mod:`maskrec.cli.registry`."""
from maskrec.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
