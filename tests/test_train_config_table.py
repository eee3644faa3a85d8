"""TrainConfig's table (issue 36 item 3): each training knob is declared once, as a row in config.py,
and every reader is made from the rows. Each row is an option of ``train``, a field of the Train page's
One-run form (unless the row says why not), checked against its range, and, where it has a Search,
drawn by the sweep. The tests walk the table, not a list of names, so a row added to it is checked
in all of them."""
from __future__ import annotations

import argparse
import os
from dataclasses import fields, replace

import optuna
import pytest
from streamlit.testing.v1 import AppTest

from maskrec.cli import train as cli_train
from maskrec.config import PRESETS, TrainConfig
from maskrec.core.fields import INTEGERS, INTERVAL, Row, flag_values, problem, rows, searched
from maskrec.models.build import spec
from maskrec.train.sweep import SweepConfig, space
from tests.conftest import REPO

ROWS = rows(TrainConfig)
ON_PAGE = [r for r in ROWS if not r.knob.off_page]


def _bounds(r: Row) -> tuple[float, float, bool]:
    """(low, high, high end left out) of a numeric row's range."""
    m = INTERVAL.search(r.knob.range)
    if m:
        return float(m.group(2)), float(m.group(3)), m.group(4) == ")"
    m = INTEGERS.search(r.knob.range)
    return float(m.group(1)), float(m.group(2)), False


def sample(r: Row):
    """(what a user types or picks, the value it sets): allowed, and not the row's default."""
    k = r.knob
    if isinstance(k.choices, dict):
        return next((w, v) for w, v in k.choices.items() if v != r.default)
    if k.choices:
        v = next(c for c in k.choices if c != r.default)
        return v, v
    if r.type is bool:
        return True, True
    if k.pattern:
        return "cpu", "cpu"
    if not k.range:  # a path
        return (["a.pt", "b.pt"], os.pathsep.join(["a.pt", "b.pt"])) if k.nargs else ("x.pt", "x.pt")
    low, high, _ = _bounds(r)
    v = r.type(low + 1) if r.type is int else round(low + (high - low) * 0.37, 2)
    return v, v


def test_every_field_is_a_row_of_the_table_or_set_by_code():
    """A new field must say where it is set: a row (a knob for users) or one of these (code sets them)."""
    by_code = {f.name for f in fields(TrainConfig)} - {r.name for r in ROWS}
    assert by_code == {"eval_batch_size", "channels_last", "overrides"}
    assert {r.name for r in ROWS if r.knob.off_page} == {"data", "init", "distill", "distill_weight"}


@pytest.mark.parametrize("r", ROWS, ids=lambda r: r.name)
def test_every_row_is_an_option_of_train_that_sets_its_field(r):
    p = argparse.ArgumentParser()
    cli_train.add_arguments(p)
    option = r.knob.option(r.name)
    assert option in p.format_help()
    typed, value = sample(r)
    argv = [option] if typed is True else [option, *(typed if isinstance(typed, list) else [str(typed)])]
    given = flag_values(p.parse_args(argv), TrainConfig)
    assert given == {r.name: value}
    assert getattr(replace(PRESETS["net2"], **given).validate(), r.name) == value
    assert flag_values(p.parse_args([]), TrainConfig) == {}  # nothing given, nothing set: the preset's values


@pytest.mark.parametrize("r", [r for r in ROWS if r.knob.range or r.knob.choices], ids=lambda r: r.name)
def test_every_range_is_checked_and_said(r):
    assert problem(r, sample(r)[1]) is None and problem(r, r.default) is None
    if r.knob.choices:
        bad = "nope"
    elif r.knob.pattern:
        bad = "gpu"
    else:
        low, high, open_high = _bounds(r)
        bad = r.type(high) if open_high else r.type(high + 1)
        assert problem(r, float("nan")) is not None
    said = problem(r, bad)
    assert said and r.knob.words() in said and (repr(bad) in said or str(bad) in said), said
    with pytest.raises(ValueError, match=r.knob.words()):
        replace(PRESETS["net1"], **{r.name: bad}).validate()


@pytest.mark.parametrize("net", list(PRESETS))
def test_the_sweep_draws_every_searched_row_within_its_search(net):
    cfg = SweepConfig(net=net, epochs=12)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        trial = study.ask()
        t = space(trial, cfg)
        rows_here = [r for r in searched(TrainConfig) if not r.knob.needs or getattr(spec(net), r.knob.needs)]
        assert list(trial.params) == [r.name for r in rows_here]  # in the table's draw order
        for r in rows_here:
            s, v = r.knob.search, trial.params[r.name]
            if s.choices:
                assert v in s.choices
            else:
                scale = cfg.max_epochs if s.of_epochs else 1  # epochs: shares of the most, at least 1
                assert (max(1, int(s.low * scale)) if r.type is int else s.low) <= v <= s.high * scale
            if r.name != "augment_strength":  # the sweep's rule: a strength near 0 is no augmentation
                assert getattr(t, r.name) == v
        study.tell(trial, 0.5)
    assert {r.name for r in searched(TrainConfig)} >= {"lr", "weight_decay", "batch_size", "epochs", "dropout"}


# ------------------------------------------------------------------ the Train page's One-run form

@pytest.fixture
def train_page(monkeypatch):
    monkeypatch.setenv("MASKREC_DEMO_N", "240")
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "pages" / "2_Train.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def widget(at: AppTest, r: Row):
    found = [w for w in [*at.number_input, *at.selectbox, *at.checkbox] if w.label == r.knob.label]
    assert len(found) == 1, (r.name, [w.label for w in [*at.number_input, *at.selectbox, *at.checkbox]])
    return found[0]


def test_every_row_but_those_that_say_why_is_a_field_of_the_one_run_form_and_starts_with_what_was_typed(
        train_page, monkeypatch):
    at = train_page
    for r in ON_PAGE:
        widget(at, r)
    more = {w.label for e in at.expander for w in [*e.number_input, *e.selectbox, *e.checkbox]}
    assert more == {r.knob.label for r in ON_PAGE if r.knob.more}  # small-data knobs, behind "More settings"
    started = []

    def recorded(cfg):  # what Start training would start; refused, so that no training runs
        started.append(cfg)
        raise ValueError("recorded")
    monkeypatch.setattr(TrainConfig, "validate", recorded)
    net = next(r for r in ON_PAGE if r.name == "net")
    widget(at, net).set_value("net2").run()  # first: the net's preset refills the other fields
    typed = {}
    for r in ON_PAGE:
        if r.name != "net":
            typed[r.name], value = sample(r)
            w = widget(at, r)
            (w.check() if typed[r.name] is True else w.set_value(typed[r.name]))
    at.button(key="start_training").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["recorded"]
    (cfg,) = started
    assert cfg.net == "net2" and cfg.data
    for r in ON_PAGE:
        if r.name != "net":
            assert getattr(cfg, r.name) == sample(r)[1], r.name
