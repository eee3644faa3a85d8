"""Security doors that are properties of the code and the server config, checked statically.

No user text reaches a shell or ``unsafe_allow_html``: every .py of the app is parsed and each such
call must be shell-free, or carry markup built only from constants. The server config keeps the
app local, XSRF on, and the upload limit the pages say.
"""
from __future__ import annotations

import ast
import os
import tomllib

import pytest

from tests.conftest import REPO

SOURCES = sorted([*(REPO / "maskrec").rglob("*.py"), *(REPO / "pages").rglob("*.py"), *(REPO / "ui").rglob("*.py"),
                  REPO / "streamlit_app.py"])
# The one function allowed to hand st.html markup built from values: it takes only a checked base64
# data URL and an escaped alt text (tested below).
AUDITED = {"ui/html.py": {"scrolling_image"}}
# calls that hand a string to /bin/sh (bare names for `from os import system`)
SHELL_CALLS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
               "system", "popen", "getoutput", "getstatusoutput"}


def _name(node: ast.AST) -> str:
    """Dotted name of a call's target: os.system, subprocess.run, st.markdown..."""
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return "?"


def _constant(node: ast.AST) -> bool:
    """True when the expression's value depends on no variable: literals, and literals joined by
    +, %, f-strings of constants, str.format of constants."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(_constant(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return _constant(node.value)
    if isinstance(node, ast.BinOp):
        return _constant(node.left) and _constant(node.right)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_constant(e) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return _constant(node.func.value) and all(_constant(a) for a in node.args) and not node.keywords
    return False


def problems(source: str, filename: str = "<src>") -> list[str]:
    out = []
    tree = ast.parse(source, filename)
    audited = [range(f.lineno, f.end_lineno + 1) for f in ast.walk(tree)
               if isinstance(f, ast.FunctionDef) and f.name in AUDITED.get(filename, ())]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or any(node.lineno in r for r in audited):
            continue
        where = f"{filename}:{node.lineno}"
        name = _name(node.func)
        if name in SHELL_CALLS:
            out.append(f"{where}: {name}() runs a shell")
        kw = {k.arg: k.value for k in node.keywords}
        shell = kw.get("shell")
        if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
            out.append(f"{where}: {name}(shell=...) runs a shell")
        html = kw.get("unsafe_allow_html")
        if html is not None and not (isinstance(html, ast.Constant) and html.value is False):
            markup = node.args[0] if node.args else kw.get("body")
            if markup is None or not _constant(markup):
                out.append(f"{where}: {name}(unsafe_allow_html=True) with markup built from variables")
        if name.endswith(".html") and name.startswith("st") and (not node.args or not _constant(node.args[0])):
            out.append(f"{where}: {name}() with markup built from variables")
    return out


def test_the_checker_catches_what_it_looks_for():
    bad = '''
import os, subprocess
import streamlit as st
os.system("ls " + path)
os.popen(cmd)
subprocess.run(cmd, shell=True)
subprocess.Popen(cmd, shell=flag)
st.markdown(f"<b>{name}</b>", unsafe_allow_html=True)
st.markdown("<b>" + name + "</b>", unsafe_allow_html=True)
st.html(user_text)
'''
    assert len(problems(bad)) == 7, problems(bad)
    fine = '''
import subprocess
import streamlit as st
subprocess.run(["python", "-m", "maskrec", path], check=True)
subprocess.run(cmd, shell=False)
st.markdown("<br>", unsafe_allow_html=True)
st.markdown("<b>%s</b>" % "fixed", unsafe_allow_html=True)
st.markdown(user_text)
st.html("<hr>")
'''
    assert problems(fine) == []


def test_no_user_text_reaches_a_shell_or_unsafe_html():
    assert len(SOURCES) > 10 and any(f.parent.name == "ui" for f in SOURCES)
    found = [p for f in SOURCES for p in problems(f.read_text(), str(f.relative_to(REPO)))]
    assert found == []


@pytest.fixture(scope="module")
def server_config() -> dict:
    return tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]


def test_the_server_is_local_with_xsrf_on(server_config):
    assert server_config["address"] == "127.0.0.1"
    assert server_config.get("enableXsrfProtection", True) is True
    assert server_config.get("enableCORS", True) is True  # the default; switching it off needs a reason


def test_the_upload_limit_is_set_and_is_what_the_page_says(server_config, monkeypatch):
    from streamlit.testing.v1 import AppTest
    limit = server_config["maxUploadSize"]
    assert isinstance(limit, int) and 0 < limit <= 4096  # MB; Streamlit's default is 200
    monkeypatch.setenv("MASKREC_DEMO_N", "240")
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "pages" / "1_Dataset.py"), default_timeout=120).run()
    at.sidebar.radio(key="dataset_source").set_value("Upload a .zip").run()
    assert not at.exception, at.exception
    assert f"up to {limit} MB" in at.sidebar.file_uploader(key="dataset_zip").proto.label


def test_typed_paths_stay_inside_the_data_roots_even_through_links_and_dots(tmp_path, monkeypatch):
    from maskrec.config import confine
    allowed = tmp_path / "allowed"
    (allowed / "d").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", allowed / "link")  # a link inside the root that leads out
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(allowed))
    assert confine(allowed / "d") == (allowed / "d").resolve()
    for escape in (allowed / "link", allowed / "d" / ".." / ".." / "secret", "/etc", "~"):
        with pytest.raises(ValueError, match="outside the allowed data folders"):
            confine(escape)


def test_the_audited_html_escapes_its_text_and_only_takes_an_image(monkeypatch):
    import numpy as np
    import streamlit as st
    from ui import html as ui_html
    drawn = []
    monkeypatch.setattr(st, "html", drawn.append)
    markup = ui_html.scrolling_image(np.zeros((4, 4, 3), np.uint8), '"><script>alert(1)</script>')
    assert drawn == [markup] and "<script>" not in markup and "&lt;script&gt;" in markup
    monkeypatch.setattr(ui_html, "data_url", lambda rgb, quality=90: 'data:image/jpeg;base64,"><script>')
    with pytest.raises(ValueError):
        ui_html.scrolling_image(np.zeros((4, 4, 3), np.uint8), "x")
    assert problems('import streamlit as st\ndef scrolling_image(x):\n    st.html(x)\n', "ui/other.py")


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_a_refused_checkpoint_never_advises_loading_it_anyway(tmp_path):
    """torch's refusal says re-running with weights_only=False "will likely succeed": advice never
    to give about a file from outside. The error says what it holds and that it was not loaded."""
    import torch
    from maskrec.models import checkpoint
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "x": _RunsCode()}, path)
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.load(path)
    msg = str(e.value)
    assert "weights_only" not in msg and "succeed" not in msg and "trust" not in msg and "\x1b" not in msg
    assert "not loaded" in msg and "holds code or objects a checkpoint does not" in msg and "getcwd" in msg
