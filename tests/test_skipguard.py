"""The CI rule: a skipped test fails the run when CI is set, and only then."""
import os
import subprocess
import sys

from tests.conftest import REPO


def _pytest(tmp_path, ci: str | None):
    (tmp_path / "test_one.py").write_text("import pytest\n\ndef test_runs():\n    pass\n\n"
                                          "def test_skips():\n    pytest.skip('no data here')\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.skipguard", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_one.py")],
                          cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)


def test_a_skip_fails_the_run_under_ci(tmp_path):
    r = _pytest(tmp_path, "true")
    assert r.returncode == 1, r.stdout
    assert "1 passed, 1 skipped" in r.stdout and "under CI every test must run" in r.stdout


def test_a_skip_passes_outside_ci(tmp_path):
    r = _pytest(tmp_path, None)
    assert r.returncode == 0, r.stdout
    assert "1 passed, 1 skipped" in r.stdout
