"""The dataset a user chose follows them (issue 37 items 1, 2, 8): across pages and reloads, with
the page saying which data it shows; a local user may open a folder outside the data roots without a
restart, a remote one may not; Evaluate keeps its checkpoint while the dataset changes; the Dataset
page's first visit shows a spinner, not a blank page.

AppTest drives the pages in-process; the Chromium tests at the end drive a real server (the reload
and the spinner exist only there).
"""
from __future__ import annotations

import io
import zipfile

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

APP = str(REPO / "streamlit_app.py")
FOLDER = "Folder on the server"


@pytest.fixture(autouse=True)
def small_demo(monkeypatch):
    monkeypatch.setenv("MASKREC_DEMO_N", "240")
    monkeypatch.chdir(REPO)


@pytest.fixture
def bound_to():
    """Set the server's listening address for the test (AppTest has no server; the pages read the
    option), and put it back after."""
    before = st_config.get_option("server.address")

    def set_(address):
        st_config.set_option("server.address", address)
    yield set_
    st_config.set_option("server.address", before)


def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    return at


def on(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, (page, at.exception)
    return at


def said(at: AppTest) -> str:
    """What the sidebar says the page shows."""
    (line,) = [c.value for c in at.sidebar.caption if "This page shows" in c.value]
    return line


def choose_folder(at: AppTest, folder) -> AppTest:
    at.sidebar.radio(key="dataset_source").set_value(FOLDER).run()
    at.sidebar.text_input(key="dataset_folder").input(str(folder)).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow  # 4 s: out of the quick subset, which stays under 90 s (issue 36)
def test_the_chosen_folder_follows_the_user_to_every_page_and_back(demo_dir, monkeypatch):
    """Issue 37: chose a folder on Dataset, opened Train: the sidebar was back on the demo data."""
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(demo_dir.parent))
    at = on(app(), "1_Dataset")
    assert "demo data" in said(at)
    choose_folder(at, demo_dir)
    assert {m.label: m.value for m in at.metric}["Images"] == "480"  # the folder's, not the demo's 240
    for page in ("2_Train", "3_Evaluate", "1_Dataset"):
        on(at, page)
        assert at.sidebar.radio(key="dataset_source").value == FOLDER, page
        assert at.sidebar.text_input(key="dataset_folder").value == str(demo_dir), page
        assert str(demo_dir) in said(at), page
        assert at.query_params.get("data") == str(demo_dir), page  # what a reload brings back
    assert {m.label: m.value for m in at.metric}["Images"] == "480"


def test_the_train_pages_empty_state_names_the_chosen_data(demo_dir, monkeypatch):
    """It said "the defaults train Net1 on the demo data" while the sidebar showed another folder."""
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(demo_dir.parent))
    at = on(choose_folder(on(app(), "1_Dataset"), demo_dir), "2_Train")
    (empty,) = [i.value for i in at.info if "No runs yet" in i.value]
    assert demo_dir.name in empty and "demo data" not in empty


def test_back_on_the_demo_data_the_typed_folder_is_kept_for_later(demo_dir, monkeypatch):
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(demo_dir.parent))
    at = choose_folder(on(app(), "1_Dataset"), demo_dir)
    at.sidebar.radio(key="dataset_source").set_value("Demo data (built in)").run()
    assert "demo data" in said(at) and "data" not in at.query_params
    on(at, "2_Train").sidebar.radio(key="dataset_source").set_value(FOLDER).run()
    assert at.sidebar.text_input(key="dataset_folder").value == str(demo_dir)


def test_a_reload_restores_the_choice_from_the_url(demo_dir, monkeypatch):
    """A reload is a new session: only the URL carries the choice into it."""
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(demo_dir.parent))
    at = choose_folder(on(app(), "1_Dataset"), demo_dir)
    url = dict(at.query_params)
    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params.update(url)
    again.run()
    on(again, "2_Train")
    assert again.sidebar.radio(key="dataset_source").value == FOLDER
    assert str(demo_dir) in said(again)


@pytest.mark.slow  # 2 s: out of the quick subset, which stays under 90 s (issue 36)
def test_an_uploaded_zip_follows_the_user_and_a_reload(demo_dir):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(demo_dir.rglob("*.jpg"))[:80]:
            z.write(f, "upload/" + str(f.relative_to(demo_dir)))
    at = on(app(), "1_Dataset")
    at.sidebar.radio(key="dataset_source").set_value("Upload a .zip").run()
    at.sidebar.file_uploader(key="dataset_zip").upload("faces.zip", buf.getvalue(), "application/zip").run()
    assert not at.exception, at.exception
    assert "faces.zip" in said(at)
    on(at, "2_Train")  # the uploader is empty on a new page; the kept zip is still the choice
    assert "faces.zip" in said(at)
    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params.update(dict(at.query_params))
    again.run()
    assert {m.label: m.value for m in on(again, "1_Dataset").metric}["Images"] == "80"


def test_the_url_names_an_upload_by_its_kept_name_only():
    """A hand-made link cannot point the upload source at a path: only a kept upload's own name."""
    from ui.dataset_choice import Choice, from_url
    assert from_url({"upload": "../../etc/passwd"}) == Choice()
    assert from_url({"upload": "/etc/x.zip"}) == Choice()
    assert from_url({"upload": "0123456789abcdef.zip"}) == Choice("upload", upload="0123456789abcdef.zip")
    assert Choice("upload", upload="0123456789abcdef.zip").upload_path() is None  # not kept here
    assert from_url({"data": "/etc"}) == Choice("folder", folder="/etc")  # confined like a typed one


def test_a_folder_in_the_url_is_confined_like_a_typed_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(tmp_path / "allowed"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["data"] = "/etc"
    at.run()
    on(at, "1_Dataset")
    assert any("outside the allowed data folders" in e.value for e in at.sidebar.error)
    assert not at.metric and "no data" in said(at)


# -- data roots: a local user widens them from the page, a remote one cannot -----------------------

def test_is_local_needs_a_loopback_server_and_a_request_through_no_proxy():
    from maskrec.config import is_local
    here = {"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:8501"}
    assert is_local("127.0.0.1", here) and is_local("localhost", {}) and is_local("::1", {"host": "[::1]:8501"})
    assert is_local("127.0.0.1", {"Host": "localhost:8501", "Origin": "http://localhost:8501"})
    assert not is_local(None, here) and not is_local("", here)  # Streamlit then listens everywhere
    assert not is_local("0.0.0.0", here) and not is_local("192.168.1.5", here)
    # a reverse proxy on this machine: every browser comes from 127.0.0.1, but the proxy says so
    assert not is_local("127.0.0.1", {**here, "X-Forwarded-For": "203.0.113.9"})
    assert not is_local("127.0.0.1", {**here, "Forwarded": "for=203.0.113.9"})
    assert not is_local("127.0.0.1", {"Host": "127.0.0.1:8501", "Origin": "https://maskrec.example.org"})
    assert not is_local("127.0.0.1", {"Host": "maskrec.example.org"})


def test_the_projects_own_data_folder_is_allowed_by_default(monkeypatch):
    """Issue 37: ../shared/datasets/facemask-dev, the path the docs name, was refused."""
    from maskrec.config import SHARED_DATASETS, confine
    monkeypatch.delenv("MASKREC_DATA_ROOTS", raising=False)
    assert confine("../shared/datasets/facemask-dev") == (SHARED_DATASETS / "facemask-dev").resolve()
    with pytest.raises(ValueError, match="outside the allowed data folders"):
        confine("/etc")


def _outside(tmp_path):
    """A small class-folder dataset outside every default data root."""
    from tests.conftest import save_image
    data = tmp_path / "elsewhere" / "faces"
    for i in range(8):
        save_image(data / ("with_mask" if i % 2 else "without_mask") / f"{i}.png", size=(40 + i, 40))
    return data


def test_a_local_user_allows_a_folder_from_the_page_without_a_restart(tmp_path, monkeypatch, bound_to):
    from maskrec.config import added_roots, roots_file
    monkeypatch.delenv("MASKREC_DATA_ROOTS", raising=False)
    bound_to("127.0.0.1")
    data = _outside(tmp_path)
    at = AppTest.from_file(str(REPO / "pages" / "1_Dataset.py"), default_timeout=120).run()
    choose_folder(at, data)
    assert any("outside the allowed data folders" in e.value for e in at.sidebar.error)
    at.sidebar.button(key="allow_root").click().run()
    assert not at.exception, at.exception
    assert not at.sidebar.error and str(data) in said(at)
    assert {m.label: m.value for m in at.metric}["Images"] == "8"
    assert added_roots() == [data.resolve()] and str(data.resolve()) in roots_file().read_text()
    at.run()  # allowed for good: kept on disk, no button any more
    assert not at.sidebar.error and not [b for b in at.sidebar.button if b.key == "allow_root"]


@pytest.mark.parametrize("address", ["0.0.0.0", None])
@pytest.mark.slow  # 3 s: out of the quick subset, which stays under 90 s (issue 36)
def test_a_server_open_to_other_machines_offers_no_way_past_the_roots(tmp_path, monkeypatch, bound_to, address):
    monkeypatch.delenv("MASKREC_DATA_ROOTS", raising=False)
    bound_to(address)
    at = choose_folder(AppTest.from_file(str(REPO / "pages" / "1_Dataset.py"), default_timeout=120).run(),
                       _outside(tmp_path))
    assert any("outside the allowed data folders" in e.value for e in at.sidebar.error)
    assert not [b for b in at.sidebar.button if b.key == "allow_root"]


def test_a_deployers_data_roots_offer_no_way_past_them_even_locally(tmp_path, monkeypatch, bound_to):
    from maskrec.config import allow_root
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(tmp_path / "allowed"))
    bound_to("127.0.0.1")
    data = _outside(tmp_path)
    at = choose_folder(AppTest.from_file(str(REPO / "pages" / "1_Dataset.py"), default_timeout=120).run(), data)
    assert any("outside the allowed data folders" in e.value for e in at.sidebar.error)
    assert not [b for b in at.sidebar.button if b.key == "allow_root"]
    with pytest.raises(ValueError, match="MASKREC_DATA_ROOTS"):
        allow_root(data)


def test_home_names_what_the_sidebar_shows():
    """Home said "point the sidebar at your own folder"; the sidebar says "Folder on the server"."""
    from ui.dataset_choice import ALLOW_LABEL
    home = " ".join(m.value for m in app().markdown)
    at = on(app(), "1_Dataset")
    for option in at.sidebar.radio(key="dataset_source").options:
        assert f"**{option}**" in home, option
    assert f"**{ALLOW_LABEL}**" in home


# -- Evaluate keeps its checkpoint --------------------------------------------------------------

@pytest.mark.slow  # 12 s: out of the quick subset, which stays under 90 s (issue 36)
def test_evaluate_keeps_the_chosen_checkpoint_while_the_dataset_changes(demo_dir, monkeypatch):
    """Issue 37: changing the dataset on Evaluate reset the checkpoint to the first one."""
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(demo_dir.parent))
    at = AppTest.from_file(str(REPO / "pages" / "3_Evaluate.py"), default_timeout=300).run()
    box = at.selectbox(key="ckpt_choice")
    other = box.options[1]
    assert box.value != other
    box.set_value(other).run()
    at.sidebar.radio(key="dataset_source").set_value(FOLDER).run()  # an empty folder field: no data for a moment
    assert any("Choose a dataset" in i.value for i in at.info)
    at.sidebar.text_input(key="dataset_folder").input(str(demo_dir)).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="ckpt_choice").value == other
