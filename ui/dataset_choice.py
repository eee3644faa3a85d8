"""Which dataset the user chose, kept across pages and reloads.

Streamlit drops a widget's value when a page without that widget runs (a page switch), and a reload
starts a new session. So the choice lives in one non-widget session key, the sidebar's widgets are
filled from it on every run and write back to it when the user changes them (``ui.common.dataset_picker``),
and it is mirrored in the URL, which a reload brings back: ``?data=<folder as typed>`` or
``?upload=<kept zip>``, none for the demo data. A page switch drops the URL's query string, so the
entry point puts it back on every run (``keep_in_url``).

Cheap to import (streamlit and maskrec.config only): the entry point imports it before any page runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from maskrec.config import cache_dir

SOURCES = {"demo": "Demo data (built in)", "folder": "Folder on the server", "upload": "Upload a .zip"}
ALLOW_LABEL = "Allow this folder"  # the button a local user gets for a folder outside the data roots
KEY = "_dataset_choice"  # not a widget key: Streamlit never deletes it
KEPT_UPLOAD = re.compile(r"[0-9a-f]{16}\.zip")  # maskrec.data.zips.keep_upload's names


@dataclass(frozen=True)
class Choice:
    source: str = "demo"  # a key of SOURCES
    folder: str = ""  # the folder field as typed (kept while another source is chosen)
    upload: str = ""  # a kept upload's file name in <cache>/uploads/, "" before one
    upload_name: str = ""  # the name of the user's own file ("" after a reload: the URL holds no name)

    def upload_path(self) -> Path | None:
        """The kept upload, None when there is none (or it was cleaned away since)."""
        if not KEPT_UPLOAD.fullmatch(self.upload):
            return None
        p = cache_dir() / "uploads" / self.upload
        return p if p.is_file() else None


def from_url(params) -> Choice:
    """The choice a URL names. An upload is named by its kept file's name only, never a path (a
    folder in the URL is a typed folder: the picker confines it like one)."""
    upload, folder = params.get("upload", ""), params.get("data", "")
    if KEPT_UPLOAD.fullmatch(upload):
        return Choice("upload", upload=upload)
    if folder:
        return Choice("folder", folder=folder)
    return Choice()


def current() -> Choice:
    if KEY not in st.session_state:  # a new session: a first visit, or a reload
        st.session_state[KEY] = from_url(st.query_params)
    return st.session_state[KEY]


def choose(**changes) -> Choice:
    st.session_state[KEY] = choice = replace(current(), **changes)
    keep_in_url()
    return choice


def url_params(c: Choice) -> dict[str, str]:
    if c.source == "folder" and c.folder:
        return {"data": c.folder}
    if c.source == "upload" and c.upload:
        return {"upload": c.upload}
    return {}


def keep_in_url() -> None:
    """Make the URL name the current choice (each write updates the browser's address bar)."""
    want = url_params(current())
    for name in ("data", "upload"):
        if name in want and st.query_params.get(name) != want[name]:
            st.query_params[name] = want[name]
        elif name not in want and name in st.query_params:
            del st.query_params[name]
