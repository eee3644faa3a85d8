"""What the pages show, decided here as plain functions: which runs to preselect, words for metric
keys, how a number reads, whether the data being judged is what a checkpoint trained on, and how
faces are numbered so that a listed crop can be found on the photo.

The pages call these and draw; nothing here imports Streamlit (tests/test_presentation.py).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

LIVE = ("queued", "running")  # a run still changing: its curves are not final

# metrics.jsonl keys in words, as axis names and titles say them
METRIC_WORDS = {"f1": "F1", "auc": "ROC AUC", "loss": "loss (NLL)", "error": "error"}


def preselect_runs(runs: list[tuple[str, str]], at_least: int = 2, at_most: int = 6) -> list[str]:
    """The run ids Compare runs opens on. ``runs``: (id, state), newest first.

    The finished (done) runs, newest first, up to ``at_most`` (more lines than that do not read);
    when fewer than ``at_least`` are done, the newest others fill up, ended runs (stopped, failed,
    interrupted) before ones still training, whose curves are still changing."""
    done = [i for i, s in runs if s == "done"]
    ended = [i for i, s in runs if s != "done" and s not in LIVE]
    live = [i for i, s in runs if s in LIVE]
    picked = done[:at_most]
    for i in ended + live:
        if len(picked) >= at_least:
            break
        picked.append(i)
    return picked


def metric_words(key: str) -> str:
    """``test_f1`` -> ``test F1``; ``train_loss`` -> ``train loss (NLL)``."""
    split, _, name = key.partition("_")
    return f"{split} {METRIC_WORDS.get(name, name.replace('_', ' '))}" if name else key


def number(v) -> str:
    """A statistic as people write it: 111.0 -> "111", 110.5 -> "110.5", None -> "–"."""
    if v is None:
        return "–"
    v = float(v)
    return f"{v:,.0f}" if v.is_integer() else f"{v:,.1f}"


def _four(v) -> str:
    return f"{v:.4f}"


# How each cell of a runs table reads (keys of runstate.summary); any other is str(value)
RUN_CELLS = {"lr": lambda v: f"{v:g}", "best_test_f1": _four, "test_auc": _four, "test_error": _four,
             "test_loss": _four, "minutes": lambda v: f"{v:.1f}"}


def run_cells(row: dict) -> dict[str, str]:
    """A row of the runs table (``runstate.summary``) as table cells, every one a string: an empty
    cell where there is nothing yet (a run before its first epoch), never "None" or "nan"."""
    return {k: "" if v is None or (isinstance(v, float) and v != v) else RUN_CELLS.get(k, str)(v)
            for k, v in row.items()}


def _folders(data: str | None, demo: str | None) -> set[str]:
    """The real paths of a dataset spec: folders joined by os.pathsep; None/"demo" is the demo set."""
    if not data or data == "demo":
        return {os.path.realpath(demo)} if demo else {"demo"}
    return {os.path.realpath(p) for p in data.split(os.pathsep) if p.strip()}


def data_mismatch(trained_on: str | None, judged: str, demo: str | None = None) -> str | None:
    """Why scores may be low: None when every folder of ``judged`` is one the checkpoint trained on
    (its config's ``data``; None means the demo data at ``demo``), else a sentence saying so.
    Folders are compared by real path, then by name (a checkpoint trained on another machine)."""
    ours, theirs = _folders(judged, demo), _folders(trained_on, demo)
    names = {Path(p).name for p in theirs}
    new = sorted(p for p in ours if p not in theirs and Path(p).name not in names)
    if not new:
        return None
    said = "the built-in demo data" if not trained_on or trained_on == "demo" else \
        ", ".join(f"`{p}`" for p in trained_on.split(os.pathsep) if p.strip())
    judged_said = ", ".join(f"`{p}`" for p in new)
    if demo and os.path.realpath(demo) in new:
        judged_said = "the built-in demo data (drawn cartoon faces)"
    return (f"This checkpoint was trained on {said}, not on {judged_said}: scores on data unlike its "
            f"training data are expected to be lower. Judge it on data like its own to see how well it learned.")


def short_data(spec: str | None) -> str:
    """A dataset as a table cell: its folders' names ("facemask-dev + trainval"), not their whole
    paths, which a table column cuts off; the page lists the whole paths under the table."""
    if not spec or spec == "demo":
        return "demo"
    return " + ".join(Path(p).name or p for p in spec.split(os.pathsep) if p.strip())


# what Markdown (and Streamlit's :colour[...] and $math$ on top of it) reads as markup anywhere in a line
MARKDOWN_INLINE = frozenset("\\`*_{}[]<>$~|:&@")


def md_text(text: str) -> str:
    """A name from outside (an upload's, a file's) as plain text inside Streamlit Markdown: what
    Markdown reads as markup backslash-escaped (inline specials, "www." and a list or heading
    marker at the start), line breaks and other control characters made spaces; it shows as typed.
    Plain names ("street.jpg") come back unchanged."""
    out = "".join(" " if not c.isprintable() else "\\" + c if c in MARKDOWN_INLINE else c for c in str(text))
    out = re.sub(r"(?i)\b(www)\.", r"\1\\.", out)  # GFM makes "www.x.y" a link
    return re.sub(r"^(\s*)([#+=-]|\d+(?=[.)]))", lambda m: m[1] + ("\\" + m[2] if not m[2].isdigit()
                                                                   else m[2] + "\\"), out)


CROWD = 8  # faces on one photo above which "12 mask 0.97" tags run into each other


def face_tags(faces) -> list[str]:
    """The tag drawn on each face's box, numbered from 1 as the list beside the photo numbers the
    crops: "3 mask 0.97", or just "3" on a crowded photo (the list gives label and P(mask))."""
    if len(faces) > CROWD:
        return [str(i) for i in range(1, len(faces) + 1)]
    return [f"{i} {f.label.replace('_', ' ')} {f.p_mask:.2f}" for i, f in enumerate(faces, 1)]


def label_counts(faces) -> str:
    """A photo's faces counted by label, in the order mask, no mask, unsure: "2 mask, 1 no mask"."""
    n: dict[str, int] = {}
    for f in faces:
        n[f.label] = n.get(f.label, 0) + 1
    order = sorted(n, key=lambda k: (k != "mask", k != "no_mask", k))
    return ", ".join(f"{n[k]} {k.replace('_', ' ')}" for k in order)


def crop_captions(faces) -> list[str]:
    """Captions of the listed crops, numbered as on the photo: "3 · mask 0.97"."""
    return [f"{i} · {f.label.replace('_', ' ')} {f.p_mask:.2f}" for i, f in enumerate(faces, 1)]


# ------------------------------------------------------------------ sweeps (the Train page's panel, Evaluate's tab)

def _sig(v) -> str:
    return f"{v:.3g}"


def _off_or(fmt: str):
    return lambda v: "off" if not v else format(v, fmt)


# A trial's searched knobs as table columns, in the order the recipe reads (sweep.space)
SWEEP_PARAMS = (("lr", "learning rate", _sig), ("weight_decay", "weight decay", _sig),
                ("batch_size", "batch", str), ("augment_strength", "augment", lambda v: "off" if v <= 0.05 else f"{v:.2f}"),
                ("label_smoothing", "label smoothing", lambda v: f"{v:.3f}"), ("ema", "EMA", _off_or("g")),
                ("mixup", "mixup", _off_or("g")), ("low_res", "low-res", _off_or("g")),
                ("dropout", "dropout", lambda v: f"{v:.2f}"))


def sweep_rows(trials: list[dict], best_trial: int | None = None) -> list[dict]:
    """The trials table of a sweep (rows of ``Sweep.trials()``), one dict per trial, every cell a
    string: an empty cell where there is nothing to say (a pruned trial's F1), never "None".
    ``val AUC`` beside the objective: an F1 of 0 (every validation face called bare after a short trial)
    reads as broken on its own; the AUC says how well the trial ranks the faces all the same.
    ``best``: "★" on the best complete trial. ``epochs``: trained / drawn (a pruned trial stops early);
    ``run``: the trial's run id, then one column per searched knob."""
    shown = [k for k, _, _ in SWEEP_PARAMS if any(k in (t.get("params") or {}) for t in trials)]
    rows = []
    for t in trials:
        params = t.get("params") or {}
        state = t.get("state") or ""
        if t.get("retry_of") is not None:
            state += f" (retry of {t['retry_of']})"
        planned = params.get("epochs")
        row = {"best": "★" if best_trial is not None and t.get("number") == best_trial else "",
               "trial": str(t.get("number", "")), "state": state,
               "val F1": "" if t.get("value") is None else f"{t['value']:.4f}",
               "val AUC": "" if t.get("value") is None or t.get("val_auc") is None else f"{t['val_auc']:.4f}",
               "epochs": f"{t.get('epochs') or 0}/{planned}" if planned else str(t.get("epochs") or ""),
               "run": Path(t["run"]).name if t.get("run") else ""}  # before the knobs: what finds the trial's run
        for key, words, fmt in SWEEP_PARAMS:
            if key in shown:
                row[words] = "" if params.get(key) is None else fmt(params[key])
        rows.append(row)
    return rows


def sweep_summary(cfg) -> str:
    """What a sweep was asked, in one line (cfg: a ``sweep.SweepConfig``)."""
    parts = [cfg.net, f"{cfg.trials} trial{'s' if cfg.trials != 1 else ''}",
             f"at most {cfg.max_epochs} epoch{'s' if cfg.max_epochs != 1 else ''} each", f"pruner {cfg.pruner}",
             f"validation share {cfg.val_fraction:g}", f"seed {cfg.seed}"]
    if cfg.drawn_masks:
        parts.append(f"drawn masks {cfg.drawn_masks:g}")
    if cfg.timeout:
        parts.append(f"timeout {cfg.timeout / 60:g} min")
    return " · ".join(parts) + f" · data {short_data(cfg.data)}"


SWEEP_STATES = {  # a sweep's state (trainjobs.sweep_shown) as the panel says it
    "queued": "queued", "running": "running", "done": "finished", "stopped": "stopped",
    "failed": "failed", "interrupted": "interrupted", "elsewhere": "running in another process"}


def sweep_state_words(state: str) -> str:
    return SWEEP_STATES.get(state, state)
