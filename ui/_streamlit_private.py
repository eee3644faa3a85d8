"""The one place MaskRec reaches into Streamlit's internals, and why.

``tests/test_streamlit_private.py`` checks each assumption made here against the installed
Streamlit, so an upgrade that changes them fails that test by name instead of breaking deep links.

**Legacy pages mode.** An entry point with a ``pages/`` folder beside it starts in Streamlit's legacy
multipage mode (every ``pages/*.py`` a page, run on its own) until some session calls
``st.navigation``. When a server's very first request is a deep link (say /Train after a restart),
that request runs pages/2_Train.py without streamlit_app.py's navigation and page config. No public
API leaves the mode; the public fix is a folder not named ``pages/`` (Streamlit's docs call it
legacy), which moves every page file. Until then ``leave_legacy_pages_mode`` clears Streamlit's
flag, the one thing ``st.navigation`` itself does to leave it (``ui.start.through_navigation``).
The mode's list holds every ``pages/*.py``, which is why the pages' helpers live here in ``ui/``.
"""
from __future__ import annotations


def leave_legacy_pages_mode() -> bool:
    """Leave the legacy pages mode if the server is in it. True when it was: the caller must
    ``st.rerun()`` so that the run goes through the entry point and its ``st.navigation``."""
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        return True
    return False
