"""The shape of the house, read from the code itself with ``ast`` (issues 19 and 36).

- packages by job: every module of ``maskrec/`` lives in a package (``config`` and ``__main__``
  aside), each package's ``__init__`` docstring says what lives there, and ``ORDER`` places every
  package (a new package must be given a place here, which is the point: say where it stands);
- no upward import: a package imports only itself and the packages below it in ``ORDER``;
- no import circle, between modules (imports in functions count: a circle hidden in a function is
  still a circle) nor between packages;
- no function-local import of a maskrec module (only the CLI registry imports a command's module by
  name, through importlib, so that ``--help`` loads nothing heavy);
- ``maskrec/`` never imports streamlit, nor what measures it (``bench``, ``evaluation``);
- no file in ``maskrec/`` over 400 lines except the demo-data generator.

Run alone: ``pytest tests/test_structure.py -q``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from maskrec.config import REPO_ROOT

PACKAGE = REPO_ROOT / "maskrec"
MAX_LINES = 400
LONG_ALLOWED = {"maskrec.data.synth"}  # the demo generator: drawing code, one job, long by nature

# The packages by job, bottom first (issue 36). A package imports its own modules or those of packages
# below it, never above; inside a package, modules may import each other but never in a circle.
ORDER = [
    "core",      # errors, files written whole, images, metrics, words and figures: imports no other package
    "jobs",      # the background-job runtime every kind of job builds on
    "models",    # the nets as layer tables, torch modules built from them, checkpoints
    "config",    # settings and the training recipes (one module)
    "faces",     # face detectors
    "data",      # datasets: layouts, decoding, scenes, the demo generator, review decisions, health
    "infer",     # a checkpoint scoring crops: engines, operating points, evaluation, export
    "train",     # the training loop, runs on disk, sweeps, soups, the suspect finder, training jobs
    "live",      # recognition in photos and streams: recogniser, drawing, tracking, the live channel
    "video",     # a video file followed through, its result and compliance report
    "cameras",   # real cameras read on threads, their people followed, events raised and sent
    "serve",     # recognition over HTTP for other programs
    "cli",       # the command line, on top
    "__main__",
]
TOP_LEVEL_MODULES = {"config", "__main__"}  # everything else lives in a package


def _package(module: str) -> str:
    """maskrec.train.loop -> "train"; maskrec.config -> "config"; maskrec -> "maskrec"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "maskrec"


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(REPO_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported module or external top-level name, line, at module level) for each import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    for n in tree.body:  # imports under a module-level `if`/`try` are module-level too
        if isinstance(n, (ast.If, ast.Try)):
            top_level |= {id(m) for m in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from maskrec import faces` imports the module maskrec.faces
            names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
        for name in names:
            target = _resolve(name) if name.startswith("maskrec") else name.split(".")[0]
            if target != module:
                out.append((target, node.lineno, id(node) in top_level))
    return out


GRAPH = {m: sorted({t for t, _, _ in _imports(m) if t.startswith("maskrec")}) for m in MODULES}


def _rank(module: str) -> int:
    package = _package(module)
    if package == "maskrec":
        return -1  # the empty top __init__
    assert package in ORDER, f"{module}: package {package!r} has no place in tests/test_structure.py ORDER: say where it stands"
    return ORDER.index(package)


def _circles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _circles({"a": ["b"], "b": []}) == []


def test_no_import_circle_in_maskrec():
    assert _circles(GRAPH) == []


def test_no_import_circle_between_packages():
    """Within a package rooms may lean on each other's public names only one way too; across
    packages (faces <-> data), a circle would be hidden by the package boundary: look at it whole."""
    collapsed: dict[str, set[str]] = {}
    for m, targets in GRAPH.items():
        collapsed.setdefault(_package(m), set()).update(_package(t) for t in targets)
    for m in collapsed:
        collapsed[m].discard(m)
    assert _circles({m: sorted(t) for m, t in collapsed.items()}) == []


def test_no_upward_import():
    upward = [f"{m} ({_package(m)}) imports {t} ({_package(t)})"
              for m, targets in GRAPH.items() for t in targets if _rank(t) > _rank(m)]
    assert upward == []


def test_every_module_lives_in_a_package_by_job():
    loose = sorted(m for m in MODULES if m.count(".") == 1 and _package(m) not in TOP_LEVEL_MODULES
                   and not (PACKAGE / _package(m) / "__init__.py").exists())
    assert loose == [], "a module at maskrec/'s top: put it in the package of its job"
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages | TOP_LEVEL_MODULES == set(ORDER), "ORDER names every package, and only those"


@pytest.mark.parametrize("package", [p for p in ORDER if p not in TOP_LEVEL_MODULES])
def test_each_package_says_what_lives_in_it(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc and len(doc) > 60, f"maskrec/{package}/__init__.py: a docstring that says what lives there"


def test_the_rank_check_finds_an_upward_import():
    assert _rank("maskrec.core.atomic") < _rank("maskrec.train.loop") < _rank("maskrec.cli.train")
    with pytest.raises(AssertionError):
        _rank("maskrec.nowhere.x")


def test_maskrec_imports_go_at_the_top_of_the_file():
    local = [f"{MODULES[m].relative_to(REPO_ROOT)}:{line} imports {t} inside a function"
             for m in MODULES for t, line, top in _imports(m) if t.startswith("maskrec") and not top]
    assert local == []


@pytest.mark.parametrize("banned", ["streamlit", "bench", "evaluation"])
def test_the_library_does_not_import(banned):
    hits = [f"{MODULES[m].relative_to(REPO_ROOT)}:{line}"
            for m in MODULES for t, line, _ in _imports(m) if t == banned]
    assert hits == []


def test_no_file_in_maskrec_is_over_400_lines():
    long = {m: n for m, p in MODULES.items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES and m not in LONG_ALLOWED}
    assert long == {}
