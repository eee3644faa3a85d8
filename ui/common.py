"""Pieces the pages share: the job registry and its Stop/Resume button, the dataset picker,
checkpoint lists, image grids.

Only drawing and widget code lives here; every decision about data, runs or models is in maskrec.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import streamlit as st

from maskrec.config import REPO_ROOT, allow_root, confine, data_roots, is_local, roots_file, roots_fixed
from maskrec.data import DataError, keep_upload
from maskrec.jobs.registry import Registry
from maskrec.train.jobs import resume
from maskrec.train.runs import list_runs
from ui.dataset_choice import ALLOW_LABEL, SOURCES, Choice, choose, current

MAX_UPLOAD_MB = 1024  # keep in step with .streamlit/config.toml server.maxUploadSize
DATASET_KEY = "dataset_path"


@st.cache_resource
def registry() -> Registry:
    """One registry for the whole server and every kind of job (runs, sweeps, the suspect finder,
    videos): every tab sees the same jobs, and they share MASKREC_MAX_JOBS slots."""
    return Registry()


def stop_job(kind: str, ident: str) -> None:
    """on_click of every job's Stop button."""
    registry().stop(kind, ident)


def resume_job(kind: str, ident: str) -> None:
    """on_click of Resume (a run or a sweep): resumed unless a second tab did it first, or nothing is left."""
    resume(registry(), kind, ident)


def stop_or_resume(where, kind: str, ident: str, live: bool, can_resume: bool, stop_help: str,
                   resume_help: str | None) -> None:
    """A run's or sweep's Stop button while its job works, else its Resume button when it can
    resume. One button (one key) whose label changes: as two widgets, the one just
    clicked stayed on screen beside the other until the next redraw ended. What a click does is
    bound when the button is drawn (on_click), so it does what its label said."""
    if live:
        where.button("Stop", key=f"{kind}_action_{ident}", on_click=stop_job, args=(kind, ident), help=stop_help)
    elif can_resume:
        where.button("Resume", key=f"{kind}_action_{ident}", on_click=resume_job, args=(kind, ident), help=resume_help)


@st.cache_resource
def _memo_store() -> tuple[dict, threading.Lock]:
    return {}, threading.Lock()


def memo(key: tuple, compute, ttl: float | None = None, max_entries: int = 16):
    """A server-wide cache for slow results whose computation draws a progress bar.

    st.cache_data cannot be used there: it replays the elements a cached function drew, and a
    progress bar made outside the function breaks that replay on the next rerun.
    """
    store, lock = _memo_store()
    with lock:
        hit = store.get(key)
    if hit is not None and (ttl is None or time.time() - hit[0] < ttl):
        return hit[1]
    value = compute()
    with lock:
        store[key] = (time.time(), value)
        while len(store) > max_entries:
            store.pop(min(store, key=lambda k: store[k][0]))
    return value


def memo_has(key: tuple, ttl: float | None = None) -> bool:
    """Whether ``memo(key, ...)`` would answer at once (a page clears what it is about to replace
    only when the replacement takes a while)."""
    store, lock = _memo_store()
    with lock:
        hit = store.get(key)
    return hit is not None and (ttl is None or time.time() - hit[0] < ttl)


def progress_callback(bar, text: str):
    def cb(done: int, total: int):
        bar.progress(min(done / max(total, 1), 1.0), text=f"{text} {done}/{total}")
    return cb


def demo_data() -> Path:
    """The built-in demo set, drawn on first use (or when its size changes) with a progress bar."""
    from maskrec.config import demo_dir
    from maskrec.data.synth import ensure_demo_data
    n = int(os.environ.get("MASKREC_DEMO_N", "2000"))  # tests draw a smaller set
    slot = st.empty()  # the bar appears only if drawing actually happens

    def progress(done: int, total: int):
        slot.progress(done / max(total, 1), text=f"Drawing the demo dataset (first use only): {done}/{total}")
    path = ensure_demo_data(demo_dir(), n=n, progress=progress)
    slot.empty()
    return path


def remembered(key: str, options) -> None:
    """Fill a select widget's state from the copy ``remember`` keeps, before the widget is drawn.
    Streamlit drops a widget's own state in a run that does not draw it (a page switch, or a page
    that stops early while another choice is incomplete); the copy, a plain key, stays. Draw the
    widget with ``on_change=remember, args=(key,)``."""
    if st.session_state.get(f"_{key}") in options:
        st.session_state[key] = st.session_state[f"_{key}"]


def remember(key: str) -> None:
    st.session_state[f"_{key}"] = st.session_state[key]


def local_user() -> bool:
    """Whether this browser is on the server's own machine (maskrec.config.is_local says how that is
    told): only then may a page widen the data folders."""
    return is_local(st.get_option("server.address"), dict(st.context.headers))


def _store(field: str, widget: str, convert=None) -> None:
    """on_change: the widget's new value into the kept choice, before the script runs."""
    value = st.session_state[widget]
    choose(**{field: convert(value) if convert else value})


def dataset_picker(where=st.sidebar) -> str | None:
    """Demo data, a folder on the server, or an uploaded .zip: the choice made on any page (kept by
    ui.dataset_choice). Returns its path, or None when it cannot be used yet (the sidebar says why),
    and says under the picker which data the page shows."""
    where.subheader("Dataset")
    choice = current()
    # The widgets are filled from the kept choice on every run: a page switch or a reload dropped their
    # own state. Their on_change writes a user's change into the choice before this line runs.
    st.session_state["dataset_source"] = SOURCES[choice.source]
    where.radio("Source", list(SOURCES.values()), key="dataset_source", label_visibility="collapsed",
                on_change=_store, args=("source", "dataset_source", {v: k for k, v in SOURCES.items()}.get))
    if choice.source == "demo":
        path, shown = str(demo_data()), "**the built-in demo data**"
    elif choice.source == "folder":
        path = _folder(where, choice)
        shown = f"`{path}`"
    else:
        path, name = _upload(where, choice)
        shown = f"the upload **{name}**"
    if path is None:
        where.caption(":material/database: This page shows no data yet.")
        return None
    where.caption(f":material/database: This page shows {shown}.")
    st.session_state[DATASET_KEY] = path
    return path


def _folder(where, choice: Choice) -> str | None:
    st.session_state["dataset_folder"] = choice.folder
    typed = where.text_input("Folder path", key="dataset_folder", on_change=_store, args=("folder", "dataset_folder"),
                             help="Report layout (train/ test/ with <id>_<label>.jpg), class folders "
                                  "(with_mask/ without_mask/), or annotated photos (images/ + VOC "
                                  f"annotations/, cut into face crops). Several folders joined by "
                                  f"'{os.pathsep}' train as one. Allowed under: "
                                  + ", ".join(str(r) for r in data_roots()))
    parts = [t.strip() for t in typed.split(os.pathsep) if t.strip()]
    if not parts:
        where.info("Type a folder path.")
        return None
    local = local_user()
    folders, refused = [], []
    for t in parts:
        try:
            folders.append(confine(t))
        except ValueError as e:
            refused.append((t, e))
    # Whether a path outside the roots exists is told only to a local user (who could look anyway).
    missing = [str(f) for f in folders if not f.is_dir()] + [t for t, _ in refused if local and not
                                                             Path(t).expanduser().is_dir()]
    if missing:
        where.error(f"No folder at {', '.join(missing)}.")
        return None
    if refused:
        where.error(str(refused[0][1]))
        if local and not roots_fixed():
            _offer_to_allow(where, [t for t, _ in refused])
        return None
    return os.pathsep.join(str(f) for f in folders)


def _offer_to_allow(where, typed: list[str]) -> None:
    """The local user's way past the data roots without a restart: the folder joins the roots kept
    in MASKREC_HOME (maskrec.config.allow_root)."""
    resolved = [str(Path(t).expanduser().resolve()) for t in typed]
    if where.button(ALLOW_LABEL if len(typed) == 1 else f"{ALLOW_LABEL} ({len(typed)} folders)", key="allow_root",
                    icon=":material/lock_open:", type="primary",
                    help=f"Adds {', '.join(resolved)} to the allowed data folders, kept in {roots_file()}. "
                         "Offered because this server listens only on this machine; browsers on other "
                         "machines are never offered it."):
        try:
            for t in typed:
                allow_root(t)
        except ValueError as e:  # gone since, or MASKREC_DATA_ROOTS set meanwhile
            where.error(str(e))
            return
        st.rerun()


def _upload(where, choice: Choice) -> tuple[str | None, str]:
    """The .zip uploaded now, else the one kept from an earlier page or a reload: (path, name)."""
    up = where.file_uploader(f"Dataset .zip (up to {MAX_UPLOAD_MB} MB)", type=["zip"], key="dataset_zip")
    if up is not None:
        try:  # kept and extracted here; a zip that is refused is removed again (maskrec.data.zips)
            kept = keep_upload(up.getvalue())
        except DataError as e:
            where.warning(f"{up.name} cannot be used: {e}")
            return None, up.name
        if (kept.name, up.name) != (choice.upload, choice.upload_name):
            choice = choose(upload=kept.name, upload_name=up.name)
    path = choice.upload_path()
    if path is None and choice.upload:
        where.warning("The upload this page had is no longer on the server: upload it again.")
    return (None if path is None else str(path)), choice.upload_name or choice.upload


def train_images(path: str) -> int | None:
    """How many train images the dataset at path holds (None when it cannot be read: the Train page
    then offers the report's recipe and the run's own start says what is wrong)."""
    from maskrec.data import DataError, discover

    def count():
        try:
            return sum(discover(path).counts()["train"].values())
        except (DataError, OSError, ValueError):
            return None
    return memo(("train_images", path), count, ttl=30)


def checkpoint_choices() -> dict[str, str]:
    """Label -> path: the shipped checkpoints, then each run's best.pt (newest first)."""
    out = {}
    for p in sorted((REPO_ROOT / "checkpoints").glob("*.pt")):
        out[f"shipped: {p.stem}"] = str(p)
    for run in list_runs():
        if run.best_ckpt.exists():
            out[f"run: {run.id} (best)"] = str(run.best_ckpt)
    return out


def image_grid(images, captions, cols: int = 8, width: int | None = None) -> None:
    for start in range(0, len(images), cols):
        columns = st.columns(cols)
        for col, img, cap in zip(columns, images[start:start + cols], captions[start:start + cols]):
            col.image(img, caption=cap, width=width or "stretch")


@st.cache_data(max_entries=1024, show_spinner=False)
def thumb(path: str, side: int = 96):
    """A small square preview, cached: the training monitor redraws every second."""
    from PIL import Image
    from maskrec.data import BadImage, open_rgb
    try:
        return open_rgb(path).resize((side, side))
    except (BadImage, OSError):
        return Image.new("RGB", (side, side), (200, 200, 200))
