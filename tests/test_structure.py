"""The shape of the house, read from the code itself with ``ast`` (issue 19).

- no import circle inside ``maskrec/`` (imports in functions count: a circle hidden in a function
  is still a circle);
- no upward import: every module sits in one layer of ``LAYERS`` and imports only its own layer or
  those below (a new module must be given a layer here, which is the point: say where it stands);
- no function-local import of a maskrec module (only the CLI registry imports a command's module by
  name, through importlib, so that ``--help`` loads nothing heavy);
- ``maskrec/`` never imports streamlit, nor what measures it (``bench``, ``evaluation``);
- no file in ``maskrec/`` over 450 lines except the demo-data generator.

Run alone: ``pytest tests/test_structure.py -q``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from maskrec.config import REPO_ROOT

PACKAGE = REPO_ROOT / "maskrec"
MAX_LINES = 450
LONG_ALLOWED = {"maskrec.synth"}  # the demo generator: drawing code, one job, long by nature

# Bottom first. A module imports its own layer or lower ones only.
LAYERS: list[set[str]] = [
    # 0: no maskrec imports at all, or only each other
    {"maskrec", "maskrec.errors", "maskrec.atomic", "maskrec.nets", "maskrec.metrics", "maskrec.operating",
     "maskrec.presentation", "maskrec.validation", "maskrec.distributed", "maskrec.jobs",
     "maskrec.webrtc", "maskrec.process"},
    # 1: settings, images, the nets, plots, what a training step computes (recipe, distill)
    {"maskrec.config", "maskrec.imaging", "maskrec.models", "maskrec.checkpoint", "maskrec.plots",
     "maskrec.synth", "maskrec.recipe", "maskrec.distill"},
    # 2: detection; a dataset's review decisions (applied by data.discover)
    {"maskrec.faces", "maskrec.overrides"},
    # 3: scenes and data
    {"maskrec.scenes", "maskrec.data", "maskrec.health"},
    # 4: inference engines, masks drawn for training
    {"maskrec.export", "maskrec.engines", "maskrec.inference", "maskrec.evaluate", "maskrec.masks",
     "maskrec.calibration", "maskrec.engine_probe"},
    # 5: recognition, tracking, runs
    {"maskrec.track", "maskrec.recognize", "maskrec.photo", "maskrec.gradcam", "maskrec.runstate", "maskrec.runs",
     "maskrec.train"},
    # 6: jobs built on them; "maskrec.video" is the whole package: codec, job, result, report (the
    # compliance report: it draws with maskrec.plots, layer 1). Its modules are not rows of their own:
    # _collapse could then keep report apart from the package and see a circle through video/__init__.
    {"maskrec.video", "maskrec.sweep", "maskrec.budget", "maskrec.trainjobs", "maskrec.trainrun", "maskrec.suspects",
     "maskrec.soup"},
    # 7: the HTTP server, the whole package (app, work queue, model holder): recognition for other programs
    {"maskrec.serve"},
    # 8: the command line, on top
    {"maskrec.cli", "maskrec.__main__"},
]


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


def _layer(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if module in layer or any(module.startswith(m + ".") for m in layer if m != "maskrec"):
            return i
    raise AssertionError(f"{module} has no layer in tests/test_structure.py LAYERS: say where it stands")


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


def _collapse(module: str) -> str:
    """A subpackage's modules count as the package (faces/retinaface.py is maskrec.faces)."""
    for layer in LAYERS:
        for m in layer:
            if m != "maskrec" and (module == m or module.startswith(m + ".")):
                return m
    return module


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
        collapsed.setdefault(_collapse(m), set()).update(_collapse(t) for t in targets)
    for m in collapsed:
        collapsed[m].discard(m)
    assert _circles({m: sorted(t) for m, t in collapsed.items()}) == []


def test_no_upward_import():
    upward = [f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
              for m, targets in GRAPH.items() for t in targets if _layer(t) > _layer(m)]
    assert upward == []


def test_maskrec_imports_go_at_the_top_of_the_file():
    local = [f"{MODULES[m].relative_to(REPO_ROOT)}:{line} imports {t} inside a function"
             for m in MODULES for t, line, top in _imports(m) if t.startswith("maskrec") and not top]
    assert local == []


@pytest.mark.parametrize("banned", ["streamlit", "bench", "evaluation"])
def test_the_library_does_not_import(banned):
    hits = [f"{MODULES[m].relative_to(REPO_ROOT)}:{line}"
            for m in MODULES for t, line, _ in _imports(m) if t == banned]
    assert hits == []


def test_no_file_in_maskrec_is_over_450_lines():
    long = {m: n for m, p in MODULES.items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES and m not in LONG_ALLOWED}
    assert long == {}
