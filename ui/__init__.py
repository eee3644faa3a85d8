"""Streamlit helpers the pages share (widgets, the video tab, the one reach into Streamlit internals).

Kept beside ``pages/``, not in it: Streamlit lists every ``pages/*.py`` as a page in its legacy mode.
"""
