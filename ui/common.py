"""Pieces the pages share: the job registry, the dataset picker, checkpoint lists, image grids.

Only drawing and widget code lives here; every decision about data, runs or models is in maskrec.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import streamlit as st

from maskrec.config import REPO_ROOT, confine, data_roots
from maskrec.data import DataError, keep_upload
from maskrec.runs import list_runs
from maskrec.trainjobs import JobRegistry

MAX_UPLOAD_MB = 1024  # keep in step with .streamlit/config.toml server.maxUploadSize
DATASET_KEY = "dataset_path"


@st.cache_resource
def registry() -> JobRegistry:
    """One registry for the whole server: every tab sees the same jobs."""
    return JobRegistry(max_parallel=int(os.environ.get("MASKREC_MAX_JOBS", "1")))


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
    from maskrec.synth import ensure_demo_data
    n = int(os.environ.get("MASKREC_DEMO_N", "2000"))  # tests draw a smaller set
    slot = st.empty()  # the bar appears only if drawing actually happens

    def progress(done: int, total: int):
        slot.progress(done / max(total, 1), text=f"Drawing the demo dataset (first use only): {done}/{total}")
    path = ensure_demo_data(demo_dir(), n=n, progress=progress)
    slot.empty()
    return path


def dataset_picker(where=st.sidebar) -> str | None:
    """Demo data, a folder on the server, or an uploaded .zip. Returns a path (shared across pages)."""
    where.subheader("Dataset")
    choice = where.radio("Source", ["Demo data (built in)", "Folder on the server", "Upload a .zip"],
                         key="dataset_source", label_visibility="collapsed")
    if choice == "Demo data (built in)":
        path = str(demo_data())
    elif choice == "Folder on the server":
        typed = where.text_input("Folder path", key="dataset_folder",
                                 help="Report layout (train/ test/ with <id>_<label>.jpg), class folders "
                                      "(with_mask/ without_mask/), or annotated photos (images/ + VOC "
                                      f"annotations/, cut into face crops). Several folders joined by "
                                      f"'{os.pathsep}' train as one. Allowed under: "
                                      + ", ".join(str(r) for r in data_roots()))
        if not typed:
            where.info("Type a folder path.")
            return None
        try:
            folders = [confine(t) for t in typed.split(os.pathsep) if t.strip()]
        except ValueError as e:
            where.error(str(e))
            return None
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing or not folders:
            where.error(f"No folder at {', '.join(missing) or typed}.")
            return None
        path = os.pathsep.join(str(f) for f in folders)
    else:
        up = where.file_uploader(f"Dataset .zip (up to {MAX_UPLOAD_MB} MB)", type=["zip"], key="dataset_zip")
        if up is None:
            return None
        try:  # kept and extracted here; a zip that is refused is removed again (maskrec.data.zips)
            path = str(keep_upload(up.getvalue()))
        except DataError as e:
            where.warning(f"{up.name} cannot be used: {e}")
            return None
    st.session_state[DATASET_KEY] = path
    return path


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
