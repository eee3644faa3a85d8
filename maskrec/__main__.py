"""``python -m maskrec COMMAND ...``: the entry point. The commands live in :mod:`maskrec.cli`
(one module each, listed in ``maskrec/cli/registry.py``); ``main`` and ``build_parser`` are
re-exported here for the callers that import them from this path."""
from maskrec.cli.main import build_parser, entry, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    entry()
