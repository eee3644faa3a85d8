"""The app's one piece of HTML built from values, kept apart so the security check can name it.

``st.image`` never grows past its column, so the Recognize page's zoom view (a crowd photo at twice
the full-width size, in a scrolling box) is an ``<img>`` in ``st.html``. The markup takes only a
base64 data URL (checked to hold nothing but base64 characters) and an HTML-escaped alt text: no
user text can reach the page as markup. ``tests/test_security.py`` allows ``st.html`` with variables
here and nowhere else.
"""
from __future__ import annotations

import html
import re

import numpy as np
import streamlit as st

from maskrec.data import data_url

_DATA_URL = re.compile(r"data:image/(jpeg|png);base64,[A-Za-z0-9+/=]*")


def scrolling_image(rgb: np.ndarray, alt: str, max_height: int = 720) -> str:
    """Draw ``rgb`` (H, W, 3) uint8 at its own pixels in a box that scrolls past ``max_height``; returns the markup."""
    src = data_url(rgb, quality=90)
    if not _DATA_URL.fullmatch(src):
        raise ValueError("not a base64 image data URL")
    markup = (f'<div style="overflow:auto;max-height:{int(max_height)}px"><img src="{src}" '
              f'alt="{html.escape(alt, quote=True)}" style="max-width:none;display:block"></div>')
    st.html(markup)
    return markup
