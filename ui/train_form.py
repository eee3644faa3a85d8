"""The Train page's One-run form: its fields drawn from TrainConfig's table (``maskrec.core.fields``),
so every knob the CLI has is a field here too, with the same help; a knob added to the table shows
up here by itself (under "More settings" when its row says so). Widgets only: the page builds the
config from what they return and starts it.
"""
from __future__ import annotations

import streamlit as st
import torch

from maskrec.config import PRESETS, TrainConfig
from maskrec.core.fields import Row, rows
from maskrec.models.build import spec

COLUMNS = 3  # at 1,024 px wide (the sidebar open) four fields a line cut their labels and values


def _key(r: Row, value, net: str) -> str:
    """The net, and the value when the recipe changed it (the sized recipe's batch): switching either
    refills the field with the new recipe's value, since a keyed widget keeps what it holds."""
    return f"{r.name}_{net}" if value == getattr(PRESETS[net], r.name) else f"{r.name}_{net}_{value}"


def _input(where, r: Row, value, key: str | None, options: list | None = None, disabled: bool = False):
    k = r.knob
    tip = k.help[:1].upper() + k.help[1:] + (f"; must be {k.range}." if k.range and not k.pattern else ".")
    if options is not None or k.choices:
        words = list(options if options is not None else k.choices)
        now = next(w for w, v in k.choices.items() if v == value) if isinstance(k.choices, dict) else value
        word = where.selectbox(k.label, words, index=words.index(now) if now in words else 0, key=key,
                               help=tip, disabled=disabled)
        return k.choices[word] if isinstance(k.choices, dict) else word
    if r.type is bool:
        return where.checkbox(k.label, value=bool(value), key=key, help=tip, disabled=disabled)
    # No min/max: Streamlit would silently swap an out-of-range value for the default.
    # TrainConfig.validate() is the one definition of the ranges and says what is wrong.
    return r.type(where.number_input(k.label, value=r.type(value), format=k.fmt or None, key=key, help=tip,
                                     disabled=disabled))


def network(where) -> str:
    """The Network select box (the table's net row): its preset fills the other fields."""
    (r,) = [r for r in rows(TrainConfig) if r.name == "net"]
    return _input(where, r, r.default, key=None)


def settings(p: TrainConfig, net: str) -> dict:
    """Every other knob the form shows, filled from the recipe p: numbers and lists three to a line,
    then the check boxes; the rows marked ``more`` in an expander. {field: value} as drawn."""
    devices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    shown = [r for r in rows(TrainConfig) if r.name != "net" and not r.knob.off_page]
    out = {}

    def draw(group: list[Row]) -> None:
        boxes = [r for r in group if r.type is not bool or r.knob.choices]
        checks = [r for r in group if r not in boxes]
        lines = [(boxes[i:i + COLUMNS], COLUMNS) for i in range(0, len(boxes), COLUMNS)]
        lines += [(checks[i:i + 2], min(2, len(checks) - i)) for i in range(0, len(checks), 2)]  # long labels
        for line, n in lines:
            for c, r in zip(st.columns(n), line):
                value = getattr(p, r.name)
                unused = bool(r.knob.needs) and not getattr(spec(net), r.knob.needs)  # Net1's dropout
                out[r.name] = _input(c, r, value, _key(r, value, net), devices if r.name == "device" else None,
                                     disabled=unused)

    draw([r for r in shown if not r.knob.more])
    more = [r for r in shown if r.knob.more]
    with st.expander("More settings: " + ", ".join(r.knob.words(label=True) for r in more)):
        draw(more)
    return out
