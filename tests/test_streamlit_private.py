"""What ui/_streamlit_private.py assumes about Streamlit's internals still holds.

A failure here means a Streamlit upgrade changed them: fix ui/_streamlit_private.py (or, better,
drop it for a public API) before trusting deep links after a server restart.
"""
from __future__ import annotations

import inspect

import pytest
from streamlit.runtime.pages_manager import PagesManager

from ui._streamlit_private import leave_legacy_pages_mode
from tests.conftest import REPO


@pytest.fixture
def flag(monkeypatch):
    """Streamlit's class-level flag, put back after the test (it is process-wide)."""
    assert hasattr(PagesManager, "uses_pages_directory"), \
        "Streamlit no longer has PagesManager.uses_pages_directory"
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)


def test_our_entry_point_still_starts_in_the_legacy_pages_mode(flag):
    """The mode this module leaves still exists and is still chosen by a pages/ folder beside the
    entry point: were it gone, through_navigation() would be dead code to delete."""
    PagesManager(str(REPO / "streamlit_app.py"))
    assert PagesManager.uses_pages_directory is True


def test_leaving_the_mode_clears_the_flag_once(flag):
    PagesManager(str(REPO / "streamlit_app.py"))
    assert leave_legacy_pages_mode() is True
    assert PagesManager.uses_pages_directory is False
    assert leave_legacy_pages_mode() is False  # the rerun through the entry point does not bounce again
    PagesManager(str(REPO / "streamlit_app.py"))  # a new session keeps the server's choice
    assert PagesManager.uses_pages_directory is False


def test_the_script_runner_and_st_navigation_still_use_that_flag():
    """The flag is what decides the mode: the script runner reads it before running the entry point,
    and st.navigation clears it, which is all that leave_legacy_pages_mode imitates."""
    from streamlit.commands import navigation
    from streamlit.runtime.scriptrunner import script_runner
    assert "PagesManager.uses_pages_directory" in inspect.getsource(script_runner.ScriptRunner)
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation.navigation)
