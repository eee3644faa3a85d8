"""Shared fixtures: an isolated MASKREC_HOME per test, small generated datasets, the dev data."""
from __future__ import annotations

import os
from pathlib import Path

# Under pytest-xdist (`-n 2`, the README's fast subset) each worker is one process on one core: torch's
# own thread pool on top would put 2 x cores threads on the cores and slow both (measured: 119 s ->
# 99 s for the fast subset on 2 cores). Set before anything imports torch.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from PIL import Image

from maskrec.config import DEV_DATA, DEV_SCENES, REPO_ROOT

REPO, SCENES = REPO_ROOT, DEV_SCENES  # what the tests import from here

# skipguard: under CI a skipped test fails the run; salted: the dataset with bad files mixed in
pytest_plugins = ["tests.skipguard", "tests.salted"]


import sys  # noqa: E402

_MAIN = sys.modules["__main__"]


@pytest.fixture(autouse=True)
def main_module_restored():
    """Streamlit's AppTest (``from_function``) leaves ``sys.modules["__main__"]`` as its script, a temp
    file; a later ``spawn`` process (a multiprocessing Pool) then runs that file as its main, dies with a
    NameError, and the Pool starts a new one forever: the quick subset hung whenever a Pool test came
    after an AppTest in one xdist worker. Put the real one back after every test."""
    yield
    if sys.modules.get("__main__") is not _MAIN:
        sys.modules["__main__"] = _MAIN


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Runs, caches and demo data of each test go to a fresh folder, never the repo."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MASKREC_HOME", str(home))
    monkeypatch.delenv("MASKREC_CACHE", raising=False)
    return home


def save_image(path: Path, size=(48, 40), color=(200, 120, 90), mode="RGB", fmt=None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    arr[: size[1] // 2] = color
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path, format=fmt, **kw)
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo dataset (report layout) drawn by maskrec.data.synth, shared by the session."""
    from maskrec.data.synth import generate
    out = tmp_path_factory.mktemp("demo") / "demo"
    generate(out, n=480, seed=1)
    return out


@pytest.fixture
def dev_data() -> Path:
    if not (DEV_DATA / "train").is_dir():
        pytest.skip(f"dev dataset not found at {DEV_DATA} (it lives in ../shared, present in CI)")
    return DEV_DATA
