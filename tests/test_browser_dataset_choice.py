"""Chromium: the chosen dataset across pages and a reload, and the first Dataset visit (issue 37).

A reload and a page that stands blank exist only in a real browser against `streamlit run`; the
rest of the dataset choice is tested in AppTest (tests/test_dataset_choice.py). Waits are on page
content, never sleeps. Screenshots of the sidebar go to $MASKREC_SCREENSHOTS.
"""
from __future__ import annotations

import os

import pytest

from tests.test_browser import CHROMIUM, Server, browser, no_errors, open_page, shots_dir  # noqa: F401 (browser: a fixture)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (CI installs it)")]
FOLDER = "Folder on the server"


@pytest.fixture
def home_with_data(tmp_path):
    """A MASKREC_HOME with a small dataset in its data/ folder (a default data root)."""
    from maskrec.data.synth import generate
    home = tmp_path / "home"
    generate(home / "data" / "faces", n=160, seed=3)
    return home, home / "data" / "faces"


def nav(page, name: str) -> None:
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=name, exact=True).click()


def shows(page, data, shot: str) -> None:
    """The sidebar names the folder, with its source and field filled in, and the URL names it."""
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text(f"This page shows {data}").wait_for(timeout=120_000)
    assert sidebar.get_by_role("radio", name=FOLDER).is_checked(), shot
    assert sidebar.get_by_role("textbox", name="Folder path").input_value() == str(data), shot
    assert "data=" in page.url, (shot, page.url)
    no_errors(page)
    sidebar.screenshot(path=str(shots_dir() / f"choice-{shot}.png"))


def test_the_chosen_folder_follows_the_user_across_pages_and_reloads(home_with_data, browser):
    home, data = home_with_data
    server = Server(home).start()
    try:
        page = open_page(browser, server.url + "/Dataset", "Pairs leaking")  # the demo data first
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("This page shows the built-in demo data").wait_for()
        sidebar.get_by_text(FOLDER).click()
        box = sidebar.get_by_role("textbox", name="Folder path")
        box.fill(str(data))
        box.press("Enter")
        page.get_by_text("Images", exact=True).first.wait_for()
        shows(page, data, "dataset")
        for name in ("Train", "Evaluate", "Dataset"):
            nav(page, name)
            page.get_by_role("heading", name={"Train": "Train", "Evaluate": "Evaluate"}.get(name, "Dataset explorer"),
                             exact=True).first.wait_for()
            shows(page, data, name.lower())
            page.reload()
            shows(page, data, f"{name.lower()}-reloaded")
        nav(page, "Home")  # no picker there: the URL keeps the choice all the same
        page.get_by_text("What it does").wait_for()
        page.wait_for_function("() => location.search.includes('data=')")
        page.reload()
        page.get_by_text("What it does").wait_for()
        nav(page, "Train")
        shows(page, data, "train-after-home")
    finally:
        server.kill()


# The first `import torch` on the server takes 2 s longer: what a first visit's imports cost on a
# slow machine, on any machine, so that a blank page would last long enough to be seen.
SLOW_TORCH = '''
import sys, time

class SlowTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            time.sleep(2)
        return None

sys.meta_path.insert(0, SlowTorch())
'''
# Records when each thing first shows in the page, from the moment it is installed.
WATCH = """() => { const t0 = performance.now(); window.seen = {};
  const sels = {title: 'h1', spinner: '[data-testid="stSpinner"]', picker: '[data-testid="stSidebar"] [data-testid="stRadio"]',
                metric: '[data-testid="stMetric"]'};
  new MutationObserver(() => { for (const [k, s] of Object.entries(sels)) { const el = document.querySelector(s);
      if (el && !(k in window.seen)) window.seen[k] = [performance.now() - t0, el.innerText]; } })
    .observe(document.body, {subtree: true, childList: true, characterData: true}); }"""


def test_the_first_dataset_visit_shows_a_spinner_not_a_blank_page(tmp_path, browser, monkeypatch):
    """Issue 37: a blank page for ~2 s on the first Dataset visit, with no spinner."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_TORCH)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p))
    server = Server(tmp_path / "home").start()
    try:
        page = open_page(browser, server.url, "What it does")  # Home imports nothing heavy
        page.evaluate(WATCH)
        nav(page, "Dataset")
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=300_000)
        seen = page.evaluate("window.seen")
        assert "spinner" in seen and "Loading the dataset tools" in seen["spinner"][1], seen
        assert seen["title"][0] < seen["spinner"][0] < seen["picker"][0] < seen["metric"][0], seen
    finally:
        server.kill()
