"""The Dataset page's "Review labels" gallery in a real browser: run the suspect finder (2 folds, 1
epoch, on the 240-image demo set), flip one label, exclude one image, reload, see both decisions
kept, and see the next scan count them so (the page's own counts, and ``maskrec.data.discover``).

Waits are on page content, never sleeps. Screenshot: review.png in $MASKREC_SCREENSHOTS.
"""
from __future__ import annotations

import os
import re

import pytest

from maskrec.config import demo_dir
from maskrec.data import discover
# the server and browser fixtures are test_browser's own (a streamlit subprocess, Debian's Chromium)
from tests.test_browser import CHROMIUM, browser, idle, no_errors, open_page, server, shots_dir  # noqa: F401

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (CI installs it)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")

FILE = re.compile(r"\b((?:train|test)/[^\s`]+\.(?:jpg|jpeg|png|bmp|webp))\b", re.I)


def metric(page, label: str) -> int:
    text = page.locator('[data-testid="stMetric"]').filter(has_text=label).first.inner_text()
    return int(text.splitlines()[-1].replace(",", ""))


def undecided_card(page):
    """The first card of the gallery still offering its three buttons."""
    return page.locator('[class*="st-key-rv_card_"]').filter(has=page.get_by_role("button", name="Flip label")).first


def card_file(card) -> str:
    return FILE.search(card.inner_text()).group(1)


def fill(page, label: str, value: str) -> None:
    box = page.get_by_role("spinbutton", name=label)
    box.fill(value)
    box.press("Enter")
    idle(page)


def test_flip_and_exclude_survive_a_reload_and_the_next_scan_applies_them(server, browser, monkeypatch):
    page = open_page(browser, server.url + "/Dataset", "Review labels")
    images = metric(page, "Images")
    fill(page, "Folds", "2")
    fill(page, "Epochs per fold", "1")
    page.get_by_role("button", name="Find suspects").click()
    page.get_by_role("button", name="Flip label").first.wait_for(timeout=600_000)
    idle(page)
    no_errors(page)

    card = undecided_card(page)
    flipped = card_file(card)
    card.get_by_role("button", name="Flip label").click()
    page.get_by_role("button", name="Undo").first.wait_for()
    idle(page)
    card = undecided_card(page)
    excluded = card_file(card)
    assert excluded != flipped
    card.get_by_role("button", name="Exclude").click()
    page.get_by_text("2 decisions").wait_for()
    idle(page)

    page.reload()
    page.get_by_text("Review labels").first.wait_for(timeout=120_000)
    page.get_by_text("2 decisions").wait_for(timeout=120_000)
    page.get_by_role("button", name="Undo").nth(1).wait_for(timeout=120_000)  # the gallery's images and buttons are drawn
    page.locator('[class*="st-key-rv_card_"] img').first.wait_for(timeout=120_000)
    idle(page)
    page.get_by_role("heading", name="Review labels").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(shots_dir() / "review.png"), full_page=False)  # before the checks: shows a failure too
    no_errors(page)
    assert page.get_by_role("button", name="Undo").count() == 2
    assert page.get_by_text("Excluded", exact=True).count() == 1
    assert page.get_by_text(re.compile(r"^✓ Relabelled to")).count() == 1
    assert metric(page, "Images") == images - 1  # the page's scan already leaves the excluded image out
    page.get_by_role("button", name="Next →").evaluate("e => e.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(shots_dir() / "review-pager.png"), full_page=False)

    monkeypatch.setenv("MASKREC_HOME", str(server.home))  # the next scan, as training's would see it
    root = demo_dir()
    before = {str(it.path.relative_to(root)): it.label for it in discover(root, overrides=False).items}
    after = {str(it.path.relative_to(root)): it.label for it in discover(root).items}
    assert excluded not in after and len(after) == len(before) - 1
    assert after[flipped] == 1 - before[flipped]
    assert {k: v for k, v in after.items() if k != flipped} == {k: v for k, v in before.items() if k not in (flipped, excluded)}
