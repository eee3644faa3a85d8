"""The Dataset page's "Review labels" section: find images whose label is likely wrong, and decide.

Widgets and drawing only. The suspect finder is ``maskrec.train.suspects.SuspectJob`` (a background job
that never touches Streamlit, one per dataset fingerprint in the server's one job registry: every tab
sees the same one, and it takes a slot of MASKREC_MAX_JOBS like a training; a fragment polls it);
decisions are ``maskrec.data.overrides`` (a CSV beside MaskRec's other state, keyed by the dataset's
fingerprint; the user's folder never changes). The page hands
in the dataset as found on disk, before any override: suspects and decisions are about its files.

Keyboard: every control is a Streamlit button, reachable with Tab and pressed with Enter/Space;
no custom script is added.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import streamlit as st

from maskrec.data import overrides
from maskrec.jobs.registry import SUSPECTS
from maskrec.train import suspects
from maskrec.data import BadImage, Dataset, discover, network_views
from ui.common import checkpoint_choices, registry, stop_job

PER_PAGE = 12
COLS = 3
ORIGINAL_MAX_PX, NET_VIEW_PX = 140, 72  # fit a third of the page's width, side by side
PAGE_KEY = "review_page"
ERROR_KEY = "review_error"
# All keeps the finder's order, decided cards in place (a card does not jump away under the cursor)
FILTERS = {"All": None, "Undecided": False, "Decided": True}
ACTION_WORDS = {"keep": "Kept as labelled", "relabel": "Relabelled to {label}", "exclude": "Excluded"}
LABEL_WORDS = {1: "covered (1)", 0: "bare (0)"}
QUICK = "Quick Net1, k-fold (out of sample)"


def _wid(path: str) -> str:
    """A widget key for a file: stable across pages and reruns, whatever characters the path holds."""
    return hashlib.sha1(path.encode()).hexdigest()[:12]


def as_on_disk(path: str) -> Dataset:
    """The dataset at path with its labels as the files say (no override applied): what the suspects
    and the decisions are about."""
    return discover(path, overrides=False)


def decisions_token(ds: Dataset) -> tuple | None:
    """Changes whenever the decisions on ds change (here, from another tab or from the CLI): part of
    the key of anything the page caches that overrides alter (the scan's counts)."""
    try:
        st_ = overrides.csv_path(ds).stat()
    except FileNotFoundError:
        return None
    return st_.st_mtime_ns, st_.st_size


def overrides_problem(err: overrides.OverridesError) -> None:
    """A bad overrides file, said with its lines (no traceback): one bullet a line, as the error
    lists them ("FILE: 2 bad line(s): line 3: ...; line 4: ...")."""
    head, sep, rest = str(err).partition(" bad line(s): ")
    if not sep:
        st.error(f"The review decisions cannot be used: {err}")
        return
    where = head.rsplit(": ", 1)[0]
    body = "\n".join(f"- {line}" for line in re.split(r"; (?=line \d+:)", rest))
    st.error(f"The overrides file `{where}` has lines that cannot be used; nothing is scanned until they are "
             f"fixed or deleted (then reload):\n\n{body}")


def _rel(ds: Dataset, file: str) -> str:
    """A file as the overrides file names it: relative to the dataset's root, "/"-separated."""
    root = os.path.abspath(ds.root)
    return Path(os.path.relpath(os.path.abspath(os.path.join(root, file)), root)).as_posix()


def section(ds: Dataset, size: int) -> None:
    """"Review labels": the finder's button and progress, the suspects a page at a time, the export.
    ``ds`` is the dataset before overrides; ``size`` the network view shown beside each original.
    In one container keyed ``review_section`` (its CSS class, st-key-review_section, finds it)."""
    with st.container(key="review_section"):
        _section(ds, size)


def _section(ds: Dataset, size: int) -> None:
    st.subheader("Review labels")
    try:
        decisions = overrides.load(ds)
    except overrides.OverridesError as e:
        overrides_problem(e)
        return
    st.caption("Images whose label is likely wrong, most likely first: out-of-sample P(mask) from a quick Net1 "
               "trained k-fold (each image judged by a net that never saw it), ranked by confident learning "
               "(cleanlab), plus near-duplicate pairs that carry different labels. Nothing in your folder "
               f"changes: decisions go to `{overrides.csv_path(ds)}`, which the next scan and training apply.")
    if ERROR_KEY in st.session_state:
        st.error(f"That decision was not recorded: {st.session_state.pop(ERROR_KEY)}")
    key = ds.fingerprint()
    job = registry().get(SUSPECTS, key)
    settings = _finder(ds, key, job)
    found, by = _result(ds, job, settings)
    if found is None:
        if job is None or not job.alive:
            st.info("Press **Find suspects** to rank this dataset's images by how likely their label is wrong.")
    else:
        _gallery(ds, found, decisions, size, by)
    _decisions_footer(ds, decisions)


def _finder(ds: Dataset, key: str, job) -> dict:
    """The finder's settings (as ``suspects.SuspectJob`` takes them) and its Start button."""
    choices = {QUICK: None, **checkpoint_choices()}
    c = st.columns([2, 1, 1])
    model = c[0].selectbox("Model", list(choices), key="review_model",
                           help="A quick Net1 trained k-fold judges every image with a net that never saw it. A "
                                "checkpoint is faster but has seen its own train split: its train images are in sample.")
    quick = choices[model] is None
    folds = c[1].number_input("Folds", min_value=2, max_value=10, value=suspects.FOLDS, key="review_folds",
                              disabled=not quick, help="Each image's P(mask) comes from a net trained on the other folds.")
    epochs = c[2].number_input("Epochs per fold", min_value=1, max_value=20, value=suspects.EPOCHS,
                               key="review_epochs", disabled=not quick)
    settings = {"checkpoint": choices[model], "folds": int(folds), "epochs": int(epochs)}
    running = job is not None and job.alive
    # below the fields, as wide as its words: in a fifth of a narrow page it read "Find susp…"
    if st.button("Find suspects", type="primary", disabled=running, key="review_start"):
        registry().start(SUSPECTS, key, lambda slots: suspects.SuspectJob(ds, slots=slots, **settings),
                         label="the suspect finder")
        st.rerun()  # the whole page: the monitor below appears, the old gallery goes
    if running:
        _monitor(key)
    elif job is not None and job.status == "failed":
        st.error(f"The suspect finder failed: {job.error or 'unknown error'}")
    elif job is not None and job.status == "stopped":
        st.warning("The suspect finder was stopped; press Find suspects to start again.")
    return settings


def _progress_words(p) -> tuple[float, str]:
    """A SuspectProgress as a bar's share and its text."""
    share = min(p.done / p.total, 1.0) if p.total else 0.0
    if p.phase == "decode":
        return share, f"decoding images {p.done}/{p.total}"
    if p.phase == "fold" and p.folds:
        return share, f"fold {p.fold}/{p.folds} · batch {p.done}/{p.total}"
    if p.phase == "fold":
        return share, "the checkpoint's predictions"
    if p.phase == "duplicates":
        return share, f"near-duplicate search {p.done}/{p.total}"
    return share, "ranking with cleanlab"


@st.fragment(run_every=1.0)
def _monitor(key: str) -> None:
    job = registry().get(SUSPECTS, key)
    if job is None or not job.alive:
        st.rerun()  # finished (or stopped): draw the page with its result
    p = job.progress()
    a, b = st.columns([5, 1])
    if job.waiting:  # behind a training, a sweep, a video or another finder
        a.progress(0.0, text=registry().queued_words(SUSPECTS, key))
    else:
        share, text = _progress_words(p) if p is not None else (0.0, "starting")
        a.progress(share, text=f"Finding suspects: {text}")
    b.button("Stop", key="review_stop", on_click=stop_job, args=(SUSPECTS, key))


def _result(ds: Dataset, job, settings: dict) -> tuple[list | None, str]:
    """The suspects of the latest job of this server (whatever the fields say now: a reload resets
    them), else of an earlier run with these settings kept on disk; and what found them, in words."""
    if job is not None and not job.alive and job.status == "done":
        return job.result(), _by(ds, job.checkpoint, job.folds, job.epochs)
    found = suspects.cached(ds, **settings)
    return found, _by(ds, **settings) if found is not None else ""


def _by(ds: Dataset, checkpoint, folds: int, epochs: int) -> str:
    if not checkpoint:
        return f"Net1, {folds} folds × {epochs} epoch{'s' * (epochs != 1)}, each image judged out of sample"
    seen = "trained on this folder's train split: those images were seen in training" \
        if _trained_on(checkpoint, Path(checkpoint).stat().st_mtime_ns, ds.fingerprint(), ds) \
        else "not trained on this folder: no image was seen in training"
    return f"checkpoint `{checkpoint}`, {seen}"


@st.cache_data(max_entries=8, show_spinner=False)
def _trained_on(checkpoint: str, mtime_ns: int, fingerprint: str, _ds: Dataset) -> bool:
    """Whether the checkpoint trained on this folder (it loads the checkpoint: once per version)."""
    return bool(suspects.seen_in_training(checkpoint, _ds))


def _gallery(ds: Dataset, found: list, decisions: dict, size: int, by: str) -> None:
    if not found:
        st.success("No suspects: every label agrees with the model's predictions.")
        return
    by_split = {_rel(ds, str(it.path)): it.split for it in ds.items}
    found = [s._replace(file=_rel(ds, s.file)) for s in found]  # keyed as the decisions are
    f1, f2 = st.columns([2, 3])
    show = f1.radio("Show", list(FILTERS), horizontal=True, key="review_filter", label_visibility="collapsed")
    want = FILTERS[show]
    shown = [s for s in found if want is None or (s.file in decisions) == want]
    pages = max(1, -(-len(shown) // PER_PAGE))
    at = min(st.session_state.get(PAGE_KEY, 0), pages - 1)
    st.session_state[PAGE_KEY] = at  # a shorter list (a filter) must not leave the page past its end
    f2.caption(f"{len(found)} suspects (found by {by}), {sum(s.file in decisions for s in found)} decided. "
               f"Showing {at * PER_PAGE + 1 if shown else 0}–{min((at + 1) * PER_PAGE, len(shown))} of {len(shown)}.")
    chunk = shown[at * PER_PAGE:(at + 1) * PER_PAGE]
    for start in range(0, len(chunk), COLS):
        for col, s in zip(st.columns(COLS), chunk[start:start + COLS]):
            with col.container(border=True, key=f"rv_card_{_wid(s.file)}"):  # the key is also a CSS class, st-key-...
                _card(ds, s, decisions.get(s.file), by_split.get(s.file, "?"), size)
    _pager(at, pages)


def _card(ds: Dataset, s, decision, split: str, size: int) -> None:
    try:
        ((orig, seen),) = network_views([Path(ds.root) / s.file], size)
    except (BadImage, OSError) as e:
        st.warning(f"`{s.file}` cannot be shown: {e}")
        orig = seen = None
    if orig is not None:
        # its own pixels up to the card's width, the net's view beside it, or under it where the card is
        # narrow: a row that wraps (st.image with a width does not shrink to a column, and ran over the card)
        row = st.container(horizontal=True, gap="small")
        row.image(orig, width=min(orig.width, ORIGINAL_MAX_PX), caption=f"{orig.width}×{orig.height}")
        row.image(seen, width=NET_VIEW_PX, caption=f"as the net sees it ({size}×{size})")
    st.markdown(f"**{LABEL_WORDS.get(s.label, s.label)}** · {split} · P(mask) **{s.p_mask:.2f}** · "
                f"quality {s.quality:.3f}  \n{s.reason}")
    st.caption(f"`{s.file}`")
    k = _wid(s.file)
    if decision is None:
        # a row that wraps, each button as wide as its word: three equal columns of a third of the page
        # cut "Flip label" to "Flip la…"
        row = st.container(horizontal=True, gap="small")
        row.button("Keep", key=f"rv_keep_{k}", on_click=_decide, args=(ds, s.file, "keep", None),
                   help="The label is right: this image stays as it is and is not shown as undecided again.")
        row.button("Flip label", key=f"rv_flip_{k}", on_click=_decide, args=(ds, s.file, "relabel", 1 - s.label),
                   help=f"Train and evaluate it as {LABEL_WORDS[1 - s.label]}.")
        row.button("Exclude", key=f"rv_excl_{k}", on_click=_decide, args=(ds, s.file, "exclude", None),
                   help="Leave it out of the scan, training and evaluation.")
    else:
        words = ACTION_WORDS.get(decision.action, decision.action).format(label=LABEL_WORDS.get(decision.label))
        row = st.container(horizontal=True, gap="small", vertical_alignment="center")
        row.markdown(f"✓ **{words}**", width="content")
        row.button("Undo", key=f"rv_undo_{k}", on_click=_undo, args=(ds, s.file))


# Callbacks run before the script: the rerun they cause already draws the page with the decision.
def _decide(ds: Dataset, path: str, action: str, label: int | None) -> None:
    try:
        overrides.decide(ds, path, action, label)
    except overrides.OverridesError as e:  # the file went away since the finder ran: said, not raised
        st.session_state[ERROR_KEY] = str(e)


def _undo(ds: Dataset, path: str) -> None:
    overrides.undo(ds, path)


def _turn(delta: int) -> None:
    st.session_state[PAGE_KEY] = st.session_state.get(PAGE_KEY, 0) + delta


def _pager(at: int, pages: int) -> None:
    a, b, c = st.columns([1, 2, 1])
    a.button("← Previous", key="review_prev", disabled=at == 0, on_click=_turn, args=(-1,), width="stretch")
    b.caption(f"Page {at + 1} of {pages}")
    c.button("Next →", key="review_next", disabled=at >= pages - 1, on_click=_turn, args=(1,), width="stretch")


def _decisions_footer(ds: Dataset, decisions: dict) -> None:
    n = {a: sum(d.action == a for d in decisions.values()) for a in ("relabel", "exclude", "keep")}
    a, b = st.container(), st.container()  # the button under the words: beside them, a narrow page cut it
    if decisions:
        a.markdown(f"**{len(decisions)} decisions** the next scan and training apply: {n['relabel']} relabelled, "
                   f"{n['exclude']} excluded, {n['keep']} kept as labelled.")
    else:
        a.markdown("No decisions yet: the next scan and training use the labels as they are in the folder.")
    b.download_button("Export overrides (CSV)", data=overrides.export_csv(ds), mime="text/csv",
                      file_name=f"overrides-{ds.fingerprint()}.csv", key="review_export", disabled=not decisions,
                      on_click="ignore")
