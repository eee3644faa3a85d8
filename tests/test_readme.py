"""The README stays a five-minute read that tells the truth (issue 36 item 4): short, every file it names
exists, every environment variable the code reads is in its table (and nothing else), and its code map
names every package of ``maskrec/``."""
from __future__ import annotations

import re

from maskrec.config import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_the_readme_is_at_most_300_lines():
    assert len(README.splitlines()) <= 300


def test_every_file_the_readme_names_exists():
    named = set(re.findall(r"`((?:docs|checkpoints|tests|bench|maskrec|pages|ui)/[\w./-]+\.(?:md|py|json|png))`", README))
    named |= set(re.findall(r"\]\(((?:docs|checkpoints)/[\w./-]+)\)", README))
    assert named, "the pattern finds the README's file names"
    missing = sorted(p for p in named if not (REPO_ROOT / p).exists())
    assert missing == []


def test_the_moved_sections_are_linked_from_the_readme():
    for doc in ("docs/app.md", "docs/data.md", "docs/cli.md", "docs/guide.md", "docs/serve.md",
                "checkpoints/README.md", "CONTRIBUTING.md"):
        assert (REPO_ROOT / doc).exists() and f"`{doc}`" in README, doc


def _read_env_vars() -> set[str]:
    """Every MASKREC_* name the app and package spell (they read each through os.environ, some by a
    constant such as ``KEY_ENV``), and those the tests read from the environment."""
    found = set()
    for folder in ("maskrec", "ui", "pages"):
        for p in (REPO_ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"""["'](MASKREC_[A-Z_]+)["']""", p.read_text()))
    for p in (REPO_ROOT / "tests").glob("*.py"):
        found |= set(re.findall(r"""environ\.get\(\s*["'](MASKREC_[A-Z_]+)["']""", p.read_text()))
    return found


def test_the_environment_table_lists_every_variable_the_code_reads():
    table = README.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    listed = {v for line in table.splitlines() if line.startswith("| `")
              for v in re.findall(r"`(MASKREC_[A-Z_]+)`", line.split("|")[1])}
    read = _read_env_vars()
    assert read, "the pattern finds the variables"
    assert listed == read


def test_the_code_map_names_every_package():
    table = README.split("## Code map", 1)[1].split("\n## ", 1)[0]
    packages = {p.name for p in (REPO_ROOT / "maskrec").iterdir() if (p / "__init__.py").exists()}
    missing = sorted(p for p in packages if f"`maskrec/{p}/`" not in table)
    assert missing == []
