"""maskrec.data.overrides: review decisions kept beside MaskRec's state and applied wherever data is read."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from maskrec.data import overrides
from maskrec.config import PRESETS, REPO_ROOT, cache_dir
from maskrec.data import DataError, discover, load_split, scan
from maskrec.data.overrides import Decision, OverridesError
from maskrec.train.runs import new_run
from maskrec.train.loop import fit


@pytest.fixture
def data(demo_dir, tmp_path) -> Path:
    """A private copy of the small demo set (decisions are files under the test's own home, but a
    test that adds a file must not change the shared one)."""
    out = tmp_path / "demo"
    shutil.copytree(demo_dir, out)
    return out


def _first(ds, split="train", label=None):
    return next(it for it in ds.items if it.split == split and (label is None or it.label == label))


def _rel(ds, it) -> str:
    return it.path.relative_to(ds.root).as_posix()


def test_decide_load_apply_and_raw(data):
    raw = discover(data, overrides=False)
    a, b = _first(raw, label=1), _first(raw, "test", label=0)
    d = overrides.decide(raw, a.path, "relabel", 0)  # an absolute path is accepted, filed relative
    assert isinstance(d, Decision) and d.path == _rel(raw, a) and d.label == 0 and d.when
    overrides.decide(raw, _rel(raw, b), "exclude")
    assert overrides.load(raw).keys() == {_rel(raw, a), _rel(raw, b)}

    ds = discover(data)  # applied by default: the scan, explorer, training, evaluation see it
    labels = {it.path: it.label for it in ds.items}
    assert labels[a.path] == 0 and b.path not in labels and len(ds.items) == len(raw.items) - 1
    assert ds.counts()["train"][0] == raw.counts()["train"][0] + 1
    assert ds.counts()["test"][0] == raw.counts()["test"][0] - 1
    test_counts = scan(ds)["summary"]["counts"]["test"]
    assert test_counts.get(0, test_counts.get("0")) == raw.counts()["test"][0] - 1
    assert ds.overrides.decisions == 2 and ds.overrides.csv == str(overrides.csv_path(raw))
    # the raw dataset keeps the folder's labels (the review shows them), and the same identity
    assert {it.path: it.label for it in discover(data, overrides=False).items}[a.path] == 1
    assert overrides.csv_path(ds) == overrides.csv_path(raw)
    assert overrides.summary(raw) == {"keep": 0, "relabel": 1, "exclude": 1, "to_mask": 0, "to_bare": 1,
                                      "total": 2, "csv": str(overrides.csv_path(raw))}
    # nothing in the user's folder changed
    assert a.path.exists() and b.path.exists() and not list(data.rglob("*.csv"))


def test_last_decision_wins_undo_and_export(data):
    raw = discover(data, overrides=False)
    a = _first(raw)
    overrides.decide(raw, _rel(raw, a), "exclude")
    overrides.decide(raw, _rel(raw, a), "keep")
    assert overrides.load(raw)[_rel(raw, a)].action == "keep"
    assert len(discover(data).items) == len(raw.items)  # keep changes nothing
    text = overrides.export_csv(raw).decode()
    assert text.splitlines()[0] == "path,action,label,when" and len(text.splitlines()) == 3
    assert overrides.undo(raw, a.path) is True
    assert overrides.load(raw) == {} and overrides.undo(raw, a.path) is False
    assert discover(data).overrides is None
    assert overrides.export_csv(raw) == b"path,action,label,when\n"


def test_identity_survives_a_new_file(data):
    """Keyed by the folder, not the fingerprint: adding an image keeps the decisions."""
    raw = discover(data, overrides=False)
    a = _first(raw)
    overrides.decide(raw, a.path, "exclude")
    shutil.copy(a.path, a.path.with_name("999999_1.jpg"))
    again = discover(data, overrides=False)
    assert again.fingerprint() != raw.fingerprint()
    assert overrides.csv_path(again) == overrides.csv_path(raw) and _rel(raw, a) in overrides.load(again)


def test_bad_lines_are_reported_with_their_numbers(data):
    raw = discover(data, overrides=False)
    good = _rel(raw, _first(raw))
    path = overrides.csv_path(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("path,action,label,when\n"
                    f"{good},relabel,1,2026-01-01T00:00:00\n"
                    "train/nope_1.jpg,exclude,,2026-01-01T00:00:00\n"
                    f"{good},flip,,2026-01-01T00:00:00\n"
                    f"{good},relabel,7,2026-01-01T00:00:00\n"
                    f"{good},exclude,1,2026-01-01T00:00:00\n"
                    "../outside.jpg,exclude,,2026-01-01T00:00:00\n"
                    f"train/../../{good},exclude,,2026-01-01T00:00:00\n"
                    f"{good},exclude,,yesterday\n")
    with pytest.raises(OverridesError) as e:
        overrides.load(raw)
    msg = str(e.value)
    assert isinstance(e.value, DataError)
    assert "line 2" not in msg
    for n, why in ((3, "no such file"), (4, "'flip'"), (5, "label 0 or 1"), (6, "takes no label"), (7, "not relative"),
                   (8, "not relative"), (9, "not an ISO time")):
        assert f"line {n}: " in msg and why in msg.split(f"line {n}: ")[1], (n, msg)
    with pytest.raises(DataError, match="line 3"):
        discover(data)  # the pages and the CLI show DataError's message, not a traceback
    with pytest.raises(OverridesError):
        overrides.decide(raw, good, "relabel", 5)
    with pytest.raises(OverridesError, match="not a file of the dataset"):
        overrides.decide(raw, "train/nope_1.jpg", "exclude")


def test_a_relabel_reaches_the_decoded_cache(data):
    """The cache is keyed by the files, not the labels: a relabel is seen at once, nothing decodes again."""
    raw = discover(data, overrides=False)
    _, y0, paths = load_split(raw, "train", 32)
    i = 3
    overrides.decide(raw, paths[i], "relabel", 1 - int(y0[i]))
    cached = sorted((cache_dir() / "decoded").glob("*.npy"))
    _, y1, paths1 = load_split(discover(data), "train", 32)
    assert paths1 == paths and int(y1[i]) == 1 - int(y0[i]) and (y1 != y0).sum() == 1
    assert sorted((cache_dir() / "decoded").glob("*.npy")) == cached


@pytest.mark.slow  # 2 s: out of the quick subset, which stays under 90 s (issue 36)
def test_a_run_names_the_overrides_it_trained_with(data):
    raw = discover(data, overrides=False)
    cfg = replace(PRESETS["net1"], data=str(data), epochs=1, batch_size=64, device="cpu")
    run = new_run(cfg)
    list(fit(cfg, run))
    assert run.config().overrides is None
    a = _first(raw)
    overrides.decide(raw, a.path, "relabel", 1 - a.label)
    run2 = new_run(cfg)
    recs = list(fit(cfg, run2))
    used = run2.config().overrides
    body = overrides.csv_path(raw).read_bytes()
    assert used == {"csv": str(overrides.csv_path(raw)), "sha1": hashlib.sha1(body).hexdigest(), "decisions": 1}
    assert json.loads((run2.dir / "config.json").read_text())["overrides"] == used
    assert recs and recs[-1]["epoch"] == 1


def _decide_many(args):
    data, rels = args
    ds = discover(data, overrides=False)
    for r in rels:
        overrides.decide(ds, r, "exclude")


@pytest.mark.slow  # 10 s: out of the quick subset, which stays under 90 s (issue 36)
def test_concurrent_decisions_lose_nothing(data):
    raw = discover(data, overrides=False)
    rels = [_rel(raw, it) for it in raw.items[:48]]
    chunks = [rels[k::4] for k in range(4)]
    threads = [threading.Thread(target=_decide_many, args=((data, c[:6]),)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: separate processes, the env's home
    with ctx.Pool(4) as pool:
        pool.map(_decide_many, [(data, c[6:]) for c in chunks])
    got = overrides.load(raw)
    assert set(got) == set(rels) and all(d.action == "exclude" for d in got.values())
    assert len(overrides.csv_path(raw).read_text().splitlines()) == 1 + len(rels)


def _cli(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-m", "maskrec", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.slow  # 12 s: out of the quick subset, which stays under 90 s (issue 36)
def test_relabel_cli(data):
    raw = discover(data, overrides=False)
    a, b = _first(raw, label=1), _first(raw, label=0)
    r = _cli("relabel", data, _rel(raw, a), b.path, "--to", "0")
    assert r.returncode == 0, r.stderr
    got = overrides.load(raw)
    assert got[_rel(raw, a)] == got[_rel(raw, a)]._replace(action="relabel", label=0)
    r = _cli("relabel", data, _rel(raw, a), "--to", "exclude")
    assert r.returncode == 0 and overrides.load(raw)[_rel(raw, a)].action == "exclude"
    r = _cli("relabel", data, _rel(raw, a), "--undo")
    assert r.returncode == 0 and _rel(raw, a) not in overrides.load(raw)
    for bad in (("relabel", data, "train/nope_1.jpg", "--to", "1"), ("relabel", data, _rel(raw, a), "--to", "2")):
        r = _cli(*bad)
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 2 and "error:" in last and "Traceback" not in r.stderr, r.stderr
