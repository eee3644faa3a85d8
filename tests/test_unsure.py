"""The unsure band end to end (issue 34 item 3): one test per surface that labels faces: predict
--json, the Recognize page, a video run (its summary and report settings) and the live stream
(a frame inside the band is no vote)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from maskrec import faces as F
from maskrec.infer.predictor import Predictor, set_operating_point
from maskrec.infer.operating import OperatingPoint
from maskrec.live.channel import LiveBuffer, frame_callback
from maskrec.live.recognize import Recognizer
from tests.conftest import REPO
from tests.test_recognize import FixedBoxes

NET1 = REPO / "checkpoints" / "net1.pt"
WIDE = OperatingPoint("wide", 0.5, (0.0, 1.01), "every face unsure: a band over all of P(mask)")


@pytest.fixture
def unsure_ckpt(tmp_path):
    """net1.pt with a default operating point whose band holds every face."""
    path = tmp_path / "unsure.pt"
    shutil.copy(NET1, path)
    set_operating_point(path, WIDE)
    return path


def test_predict_json_labels_unsure_and_names_the_point(unsure_ckpt, tmp_path, capsys):
    from maskrec.__main__ import main
    img = tmp_path / "face.png"
    Image.new("RGB", (64, 64), (200, 170, 150)).save(img)
    assert main(["predict", str(unsure_ckpt), str(img), "--json", "--detector", "none"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["label"] for f in out["faces"]] == ["unsure"]
    assert out["operating_point"] == {"name": "wide", "threshold": 0.5, "band": [0.0, 1.01]}
    # the checkpoint's other point, asked for by name: no band, a plain label
    assert main(["predict", str(unsure_ckpt), str(img), "--json", "--detector", "none",
                 "--operating-point", "crops"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["faces"][0]["label"] in ("mask", "no_mask") and out["operating_point"]["name"] == "crops"
    assert main(["predict", str(unsure_ckpt), str(img), "--operating-point", "door"]) == 2
    assert "no operating point 'door'" in capsys.readouterr().err


def test_the_recognize_page_draws_unsure_faces_amber_and_says_so(unsure_ckpt, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from maskrec.config import runs_dir
    run = runs_dir() / "unsure-run"
    run.mkdir(parents=True, exist_ok=True)
    shutil.copy(unsure_ckpt, run / "best.pt")
    (run / "config.json").write_text(json.dumps({"net": "net1"}))
    monkeypatch.chdir(REPO)
    # before the page loads its recogniser: a detector that 'finds' the one face drawn below
    monkeypatch.setattr(F, "make_detector", lambda *a, **k: FixedBoxes([(100, 60, 220, 180, 0.9)]))
    at = AppTest.from_file(str(REPO / "pages" / "4_Recognize.py"), default_timeout=120).run()
    at.selectbox(key="recognize_ckpt").set_value("run: unsure-run (best)").run()
    assert not at.exception, at.exception
    assert any("operating point **wide**" in c.value and "amber: unsure" in c.value for c in at.caption)
    rgb = np.full((240, 320, 3), 120, np.uint8)
    rgb[60:180, 100:220] = (200, 170, 150)
    import io
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG")
    at.file_uploader(key="recognize_uploads").set_value([("one.jpg", buf.getvalue(), "image/jpeg")]).run()
    assert not at.exception, at.exception
    caps = [im.caption for el in at.image for im in el.proto.imgs]
    assert any(c.startswith("1 · unsure ") for c in caps), caps
    assert any(c.startswith("one.jpg: 1 face(s) (1 unsure)") for c in caps), caps


def test_the_evaluate_page_leaves_unsure_faces_out_of_its_matrix_and_mistakes(unsure_ckpt, demo_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from maskrec.config import runs_dir
    run = runs_dir() / "unsure-eval"
    run.mkdir(parents=True, exist_ok=True)
    shutil.copy(unsure_ckpt, run / "best.pt")
    (run / "config.json").write_text(json.dumps({"net": "net1"}))
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("MASKREC_DATA_ROOTS", str(demo_dir.parent))
    at = AppTest.from_file(str(REPO / "pages" / "3_Evaluate.py"), default_timeout=120).run()
    assert not at.exception and at.sidebar.radio, at.exception or at.main  # (once, loaded: no sidebar radio yet)
    at.sidebar.radio(key="dataset_source").set_value("Folder on the server").run()
    at.sidebar.text_input(key="dataset_folder").input(str(demo_dir)).run()
    at.selectbox(key="ckpt_choice").set_value("run: unsure-eval (best)").run()
    at.radio(key="threshold_how").set_value("Operating point: wide").run()
    assert not at.exception, at.exception
    n = int(next(c.value for c in at.caption if " · n = " in c.value).split(" · n = ")[1].split(" ")[0])
    assert any(c.value.startswith(f"{n} of {n} faces are unsure") for c in at.caption)
    assert [h.value for h in at.subheader if h.value.startswith("Mistakes")] == \
        ["Mistakes at this threshold: 0 (most confident first, unsure faces left out)"]
    at.radio(key="threshold_how").set_value("Operating point: crops").run()  # no band: every face judged
    assert not any("faces are unsure" in c.value for c in at.caption)
    assert [h.value for h in at.subheader if h.value.startswith("Mistakes at this threshold")
            and h.value.endswith("(most confident first)")]


def test_a_video_run_counts_unsure_people_and_its_report_names_the_point(unsure_ckpt, tmp_path):
    from maskrec import video as V
    from tests.test_video import MagentaFrames, cartoon_clip
    path, _ = cartoon_clip(tmp_path)
    rec = Recognizer(Predictor.load(unsure_ckpt), MagentaFrames())
    res = V.process(path, rec, detect_every=1)
    s = res.summary
    assert s["people"] == 3 and s["unsure"] == 3 and s["mask"] == s["no_mask"] == 0  # no frame voted
    assert all(r[1] == r[2] == 0 for r in res.timeline)  # nobody counted with or without a mask
    settings = V.settings_of(rec)
    assert settings["operating_point"] == "wide" and settings["unsure_band"] == "0.000-1.010"
    plain = V.process(path, Recognizer(Predictor.load(unsure_ckpt), MagentaFrames()).at(0.5), detect_every=1)
    assert plain.summary["unsure"] < 3  # a plain threshold has no band: the frames vote


def test_a_live_frame_inside_the_band_is_no_vote(unsure_ckpt):
    av = pytest.importorskip("av")
    buf = LiveBuffer(every=1)
    rec = Recognizer(Predictor.load(unsure_ckpt), FixedBoxes([(20, 20, 90, 100, 0.99)]))
    cb = frame_callback(rec, buf, crop_side=48)
    frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 90, np.uint8), format="rgb24")
    for _ in range(8):
        cb(frame)
    s = buf.snapshot()
    assert s.error == "" and s.result.faces
    counts = buf.session().tracker.counts()
    assert counts["people"] == 1 and counts["unsure"] == 1 and counts["mask"] == counts["no_mask"] == 0
