"""What every script run needs first: the favicon, and the way out of Streamlit's legacy pages mode.

Cheap to import on purpose (no torch, no maskrec): on a cold server the browser shows Streamlit's own
list of ``pages/*.py`` until the run reaches ``st.navigation`` (the entry point) or
``through_navigation`` (a page opened by a deep link), so both come before any slow import.
"""
from __future__ import annotations

import streamlit as st

from ui._streamlit_private import leave_legacy_pages_mode


def through_navigation() -> None:
    """Call first on every page, before its other imports. When the very first request after a server
    start is a deep link (say /Train after a restart), Streamlit runs pages/*.py directly in its old
    multipage mode, without streamlit_app.py's navigation and page config. Leave that mode and rerun
    through the entry point (no public API does it: ui/_streamlit_private.py)."""
    if leave_legacy_pages_mode():
        st.rerun()


def app_icon():
    """The favicon, drawn here: a ``:material/...:`` page icon makes the browser fetch it from a font
    server on the internet, and the app must work offline and behind firewalls."""
    from PIL import Image, ImageDraw
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((8, 4, 56, 60), fill=(241, 194, 158, 255))  # face
    d.ellipse((18, 20, 25, 27), fill=(40, 40, 40, 255))
    d.ellipse((39, 20, 46, 27), fill=(40, 40, 40, 255))
    d.rounded_rectangle((12, 32, 52, 54), radius=8, fill=(59, 130, 246, 255))  # mask
    d.line((12, 36, 2, 30), fill=(59, 130, 246, 255), width=3)
    d.line((52, 36, 62, 30), fill=(59, 130, 246, 255), width=3)
    return img
