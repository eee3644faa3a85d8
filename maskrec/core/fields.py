"""A settings dataclass as a table: each field declared once, with what every reader of it needs.

A field made with :func:`knob` carries a :class:`Knob` (its label, help, allowed range, CLI flag, place
on the page and, where the recipe search varies it, a :class:`Search`). From those rows come the CLI's
flags (:func:`add_flags`, :func:`flag_values`), the check of a value (:func:`problems`), the sweep's
space (``maskrec.train.sweep.space``) and the Train page's fields (``ui/train_form.py``), so a field
added to the table shows up in all of them. Fields without a knob are set in code, not by users.

The range is written as the words an error message ends with, and is parsed for the check:
``"1..10000"`` (integers, both ends in), ``"in (0, 10]"`` (an interval: ``(`` / ``)`` leave an end
out), ``"0 (off) or in [0.5, 1)"`` (0 allowed besides the interval). Use::

    @dataclass(frozen=True)
    class Cfg:
        lr: float = knob(1e-3, "Learning rate", "Adam's step size", range="in (0, 10]")
    problems(Cfg(lr=0))  # ["learning rate must be in (0, 10], got 0"]
"""
from __future__ import annotations

import argparse
import os
import re
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

NUM = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
INTERVAL = re.compile(rf"([\[(])\s*({NUM})\s*,\s*({NUM})\s*([\])])")
INTEGERS = re.compile(rf"({NUM})\.\.({NUM})")
OFF = re.compile(rf"^({NUM}) \(off\) or ")


class Search(NamedTuple):
    """Where the recipe search draws a field from: ``choices``, else ``low``..``high`` (on a log scale
    with ``log``; with ``of_epochs``, shares of the sweep's most epochs per trial)."""
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple = ()
    of_epochs: bool = False
    # The sampler's draw order: a seeded sweep draws what it drew before this table existed.
    draw: int = 0


@dataclass(frozen=True)
class Knob:
    label: str  # the Train page's label; also the field's name in error messages (see `words`)
    help: str  # the page's tooltip and the CLI's help
    range: str = ""  # the allowed values, in the words of an error message (see the module docstring)
    choices: tuple | dict = ()  # the allowed values; a dict maps the words shown (CLI, page) to the values
    pattern: str = ""  # a text field's allowed values as a regular expression (`range` says them in words)
    what: str = ""  # the name in error messages when the label's is not it
    flag: str = ""  # the CLI's flag when not --the-field-name
    metavar: str = ""
    nargs: str = ""  # "+": several values on the CLI, stored joined by os.pathsep
    more: bool = False  # on the Train page under "More settings"
    off_page: str = ""  # why the Train page's form does not show it
    needs: str = ""  # a property of the net's spec the field needs (dropout: has_dropout): else unused
    fmt: str = ""  # the page's number format (printf-style; default 2 decimals)
    search: Search | None = None

    def words(self, label: bool = False) -> str:
        """The field's name in a message (or its label) with a lower-case start, acronyms kept (EMA decay)."""
        w = self.label if label else self.what or self.label
        return w if w[1:2].isupper() else w[:1].lower() + w[1:]

    def option(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def knob(default: Any, label: str, help: str, **kw) -> Any:
    """A dataclass field with its row of the table."""
    return field(default=default, metadata={"knob": Knob(label, help, **kw)})


class Row(NamedTuple):
    name: str
    type: type  # int, float, str or bool (of `bool | None`: bool)
    default: Any
    knob: Knob


def rows(cls) -> list[Row]:
    """The knobs of a settings dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        if "knob" in f.metadata:
            t = hints[f.name]
            if isinstance(t, types.UnionType):
                t = next(a for a in t.__args__ if a is not type(None))
            out.append(Row(f.name, t, f.default, f.metadata["knob"]))
    return out


def searched(cls) -> list[Row]:
    """The knobs the recipe search draws, in its draw order."""
    return sorted((r for r in rows(cls) if r.knob.search), key=lambda r: r.knob.search.draw)


def _unknown(k: Knob, value, allowed) -> str:
    return f"unknown {k.words()} {value!r} (choose from {', '.join(map(str, allowed))})"


def problem(r: Row, value) -> str | None:
    """What is wrong with value for this row, None when nothing is."""
    k = r.knob
    if k.choices:
        allowed = list(k.choices.values()) if isinstance(k.choices, dict) else list(k.choices)
        return None if value in allowed else _unknown(k, value, k.choices)
    if k.pattern:
        ok = isinstance(value, str) and re.fullmatch(k.pattern, value)
        return None if ok else f"{k.words()} must be {k.range}, got {value!r}"
    if not k.range:
        return None
    off = OFF.match(k.range)
    if off and value == float(off.group(1)):
        return None
    m = INTERVAL.search(k.range)
    if m:
        lo, hi = float(m.group(2)), float(m.group(3))
        ok = (lo < value if m.group(1) == "(" else lo <= value) and (value < hi if m.group(4) == ")" else value <= hi)
    else:
        m = INTEGERS.search(k.range)
        assert m, f"{r.name}: cannot read the range {k.range!r}"
        ok = float(m.group(1)) <= value <= float(m.group(2))  # NaN fails every comparison: refused too
    return None if ok else f"{k.words()} must be {k.range}, got {value}"


def problems(obj) -> list[str]:
    """Each knob of a settings object whose value is out of its range, said plainly."""
    return [p for r in rows(type(obj)) if (p := problem(r, getattr(obj, r.name))) is not None]


def add_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One option per knob, default None (given means set; see :func:`flag_values`). Choices are shown,
    not enforced here: the settings' own check says what is wrong, as it does for the page."""
    for r in rows(cls):
        k = r.knob
        said = f"{k.help}; must be {k.range}" if k.range and not k.pattern else k.help
        kw: dict = {"dest": r.name, "help": said.replace("%", "%%")}
        if r.type is bool and not k.choices:
            kw["action"] = "store_true"
        else:
            kw["type"] = r.type if r.type in (int, float) and not k.choices else str
            words = list(k.choices)
            kw["metavar"] = "{" + ",".join(map(str, words)) + "}" if words else (k.metavar or None)
            if k.nargs:
                kw["nargs"] = k.nargs
        parser.add_argument(k.option(r.name), **kw)


def flag_values(args: argparse.Namespace, cls) -> dict:
    """{field: value} of the knobs given on the command line: words turned into values, several
    values joined by os.pathsep. ValueError for a word that names no choice."""
    out = {}
    for r in rows(cls):
        v = getattr(args, r.name, None)
        if v is None or v is False:
            continue
        if isinstance(r.knob.choices, dict):
            if v not in r.knob.choices:
                raise ValueError(_unknown(r.knob, v, r.knob.choices))
            v = r.knob.choices[v]
        elif isinstance(v, list):
            v = os.pathsep.join(v)
        out[r.name] = v
    return out
