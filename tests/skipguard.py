"""A pytest plugin: under CI (``CI`` set to true/1, as .ci/run runs), a skipped test fails the run.

CI has ../shared and Chromium, so a skip there hides a failure (a missing install, a moved dataset).
On a fresh clone without them the same tests skip with their reasons and the run passes.
"""
from __future__ import annotations

import os


def strict() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if strict() and skipped:
        terminalreporter.write_line(f"CI: {len(skipped)} test(s) skipped; under CI every test must run "
                                    "(see the skip reasons above)", red=True, bold=True)


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if strict() and skipped and exitstatus == 0:
        session.exitstatus = 1
