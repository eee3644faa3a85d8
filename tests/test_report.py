"""maskrec.video.report, the compliance report: its numbers are the JSON summary's (read back from
the data-key / data-track attributes with html.parser), every user string is escaped, nothing in it
would load anything off the machine, plotly.js is in it once, a stopped or empty run and a live
session render, ``video --report`` writes one (a stopped run's too) and refuses a bad path before
the run, and the Recognize page offers the report on the Video and Live tabs.

A clip of cartoon faces framed in magenta and the stand-in detector of tests/test_video.py keep
this fast and on a fresh clone; the CLI runs the real live detector on the same clip.
"""
from __future__ import annotations

import json
import os
import re
import signal
from html.parser import HTMLParser

import numpy as np
import pytest

from maskrec import faces as F
from maskrec import video as V
from maskrec.__main__ import main
from maskrec.cli import video as cli_video
from maskrec.live.recognize import Face, FrameResult, Recognizer, Timings
from maskrec.live.channel import LiveBuffer
from tests.conftest import REPO
from tests.test_video import MagentaFrames, cartoon_clip, predictor  # noqa: F401 (a fixture)

pytest.importorskip("av")
NET1 = REPO / "checkpoints" / "net1.pt"
HOSTILE = '<img src=x onerror="alert(1)">&\'door".mp4'
# what would make a browser fetch something: a script or stylesheet by URL, a remote image, a CSS import
LOADS = re.compile(r"<script[^>]*\ssrc\s*=|<link[^>]*\shref\s*=|<img[^>]*\ssrc\s*=\s*[\"']?\s*(?:https?:)?//"
                   r"|@import|url\(\s*[\"']?\s*(?:https?:)?//|<iframe|<object|<embed", re.I)


class Report(HTMLParser):
    """The numbers a report shows: {data-key: data-value} of the summary, one dict per track row."""

    def __init__(self, html: str):
        super().__init__()
        self.summary: dict = {}
        self.tracks: list[dict] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-track" in a:
            self.tracks.append({"track": json.loads(a["data-track"]), "label": a["data-label"],
                                "frames": json.loads(a["data-frames"])})
        elif "data-key" in a and self.tracks and tag == "td":
            self.tracks[-1]["cell:" + a["data-key"]] = json.loads(a["data-value"])
        elif "data-key" in a:
            self.summary[a["data-key"]] = json.loads(a["data-value"])

    def handle_data(self, data):
        self.text.append(data)


def assert_same_numbers(html: str, summary: dict, tracks: list[dict]) -> Report:
    """The report's numbers against a JSON summary and its track lines (``video --json``, result.json)."""
    r = Report(html)
    for k in ("people", "mask", "no_mask", "unsure", "seconds"):
        assert r.summary[k] == summary[k], k
    assert r.summary["masked_share"] == (round(summary["mask"] / summary["people"], 4) if summary["people"] else None)
    assert [(t["track"], t["label"], t["frames"]) for t in r.tracks] == [(t["track"], t["label"], t["frames"])
                                                                         for t in tracks]
    for got, want in zip(r.tracks, tracks):
        assert {k: got["cell:" + k] for k in ("track", "first_s", "last_s", "frames", "label", "p_mask", "agree")} \
            == {k: want[k] for k in ("track", "first_s", "last_s", "frames", "label", "p_mask", "agree")}
    return r


def self_contained(html: str) -> None:
    assert LOADS.findall(html) == []
    assert html.count("plotly.js v") == 1 and html.count("Plotly.newPlot(") == 2  # the bundle once, two charts
    assert 'http-equiv="Content-Security-Policy"' in html and "default-src 'none'" in html


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """tests/test_video.py's clip, without its truth."""
    return cartoon_clip(tmp_path_factory.mktemp("clip"))[0]


@pytest.fixture(scope="module")
def processed(clip, predictor, tmp_path_factory):
    """The clip processed and saved as the Video tab leaves it: result.json and settings.json."""
    folder = tmp_path_factory.mktemp("run")
    rec = Recognizer(predictor, MagentaFrames())
    res = V.process(clip, rec, folder / f"annotated{V.output_suffix()}")
    V.save(folder, res)
    V.save_settings(folder, V.settings_of(rec, None, HOSTILE))
    return folder


def test_the_reports_numbers_are_result_jsons(processed):
    on_disk = json.loads((processed / V.RESULT).read_text())
    res, settings = V.load(processed), V.load_settings(processed)
    html = V.render_report(res, settings, "Door")
    r = assert_same_numbers(html, on_disk["summary"], on_disk["tracks"])
    assert on_disk["summary"]["people"] == 3 and len(r.tracks) == 3
    assert html.count('<img src="data:image/jpeg;base64,') == 3  # a thumbnail on each row
    self_contained(html)
    text = " ".join(" ".join(r.text).split())
    assert f"P(mask) threshold {settings['threshold']:.4f}".rstrip("0") in text and "Face detector magenta" in text
    assert "Network net1" in text and f"net1.pt ({NET1})" in text and "Processing size 320 × 240 px" in text
    # how process went about it, from the summary: detection on every k-th frame, scene cuts found
    assert f"Detector run on one frame in {on_disk['summary']['detect_every']} " in text
    assert f"Scene cuts (each ends every track) {on_disk['summary']['scene_cuts']} " in text


def test_every_user_string_is_escaped(processed):
    res = V.load(processed)
    t = res.tracks[0]
    bad = V.VideoResult((t._replace(label="<b>x</b>"),), res.timeline,
                        {**res.summary, "warnings": ["<script>alert(2)</script>"], "note": "<i>n</i>"},
                        {t.track: "http://example.org/x.jpg"})
    html = V.render_report(bad, {"source": HOSTILE, "tracker": {"<k>": "<v>"}}, HOSTILE)
    for raw in (HOSTILE, "<b>x</b>", "<script>alert(2)", "<i>n</i>", "<k>", "<v>"):
        assert raw not in html, raw
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#x27;door&quot;.mp4" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "example.org" not in html  # a thumbnail that is not an inline image is dropped
    self_contained(html)


def test_a_stopped_and_an_empty_run_render(clip, predictor):
    rec = Recognizer(predictor, MagentaFrames())
    calls = []
    res = V.process(clip, rec, should_stop=lambda: calls.append(1) or len(calls) > 12)
    assert res.summary["status"] == "stopped"
    html = V.render_report(res, V.settings_of(rec, 0.5, "door.mp4"), "Door")
    assert_same_numbers(html, res.summary, [t.as_json() for t in res.tracks])
    assert "Stopped after 0.6 s of video" in html
    empty = V.VideoResult((), ((0, 0, 0),), {**res.summary, "people": 0, "mask": 0, "no_mask": 0, "unsure": 0,
                                             "note": "no face was found"})
    html = V.render_report(empty, {}, "Nobody")
    r = assert_same_numbers(html, empty.summary, [])
    assert r.summary["masked_share"] is None and "no face was found" in html and "not recorded for this run" in html
    self_contained(html)


def live_buffer(frames: int = 40, t0: float = 1_700_000_000.0) -> LiveBuffer:
    """A LiveBuffer fed 4 s of a stream (10 frames a second) with two faces, one masked."""
    buf = LiveBuffer()
    rng = np.random.default_rng(0)
    for i in range(frames):
        faces = tuple(Face(F.Box(x, 40, x + 60, 100, 0.99), (x - 5, 35, x + 65, 105), lab, p)
                      for x, lab, p in ((20 + i, "mask", 0.97), (200, "no_mask", 0.05)))
        res = FrameResult(faces, Timings(5.0, 3.0), (240, 320))
        seen = buf.track(res, 0.5, now=t0 + i / 10)
        buf.put(res, [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in faces], seen)
    return buf


def test_a_report_taken_while_a_frame_is_in_flight_has_a_face_for_every_person():
    """The webcam worker tracks a frame, then puts it; a report can be asked for between the two. The
    crops travel with the tracker update that makes a face a person, so no person is listed faceless
    (a CI run under load once made a report of 61 people with 60 faces)."""
    buf = LiveBuffer()
    t0, rng = 1_700_000_000.0, np.random.default_rng(1)
    for i in range(12):
        faces = (Face(F.Box(20, 40, 80, 100, 0.99), (15, 35, 85, 105), "mask", 0.97),)
        res = FrameResult(faces, Timings(5.0, 3.0), (240, 320))
        crops = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)]
        seen = buf.track(res, 0.5, now=t0 + i / 10, crops=crops)
        s = buf.session()  # between track and put
        people = s.tracker.counts()["people"]
        assert len(s.thumbs) == people, (i, people, sorted(s.thumbs))
        buf.put(res, crops, seen)
    assert people == 1


def test_a_live_session_becomes_a_report_of_the_session_so_far(predictor):
    buf = live_buffer()
    s = buf.session()
    res = V.session_result(s.tracker, s.timeline, start=s.start, end=s.end, frames=s.frames, size=s.size,
                           thumbs=s.thumbs)
    assert res.summary["people"] == 2 and res.summary["mask"] == 1 and res.summary["no_mask"] == 1
    assert res.summary["seconds"] == pytest.approx(3.9) and res.summary["status"] == "live"
    assert [r[0] for r in res.timeline] == [0, 1, 2, 3] and res.tracks[0].first_s == pytest.approx(0.0)
    assert set(res.thumbs) == {1, 2}
    assert buf.snapshot().people == s.tracker.counts()  # the page's own counts: the same people
    rec = Recognizer(predictor, MagentaFrames())
    html = V.session_report(s, V.settings_of(rec, 0.5, "live camera"), "Live")
    assert_same_numbers(html, res.summary, [t.as_json() for t in res.tracks])
    assert "Live session started" in html and "second of the session" in html
    # the live stream detects one frame in LIVE_DETECT_EVERY (2): a person after 3 detection frames, not 5
    assert "min_hits 3" in html and re.search(r"Detector run on one frame in</th><td>2<", html), html[-1500:]
    self_contained(html)


@pytest.mark.slow  # 5 s: out of the quick subset, which stays under 90 s (issue 36)
def test_the_cli_writes_the_report_and_its_numbers_are_the_json_summarys(clip, tmp_path, capsys):
    out, rep = tmp_path / f"cli{V.output_suffix()}", tmp_path / "door.html"
    assert main(["video", str(clip), "--out", str(out), "--json", "--report", str(rep)]) == 0
    cap = capsys.readouterr()
    *tracks, last = [json.loads(line) for line in cap.out.splitlines()]
    html = rep.read_text()
    assert_same_numbers(html, last["summary"], tracks)
    assert "Mask compliance: cartoons" in html and f"wrote the report to {rep}" in cap.err
    self_contained(html)


def test_the_cli_refuses_a_report_it_cannot_write_before_the_run(clip, tmp_path, capsys):
    out = tmp_path / "never.mp4"
    assert main(["video", str(clip), "--out", str(out), "--report", str(tmp_path / "no" / "such" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --report ") and "does not exist" in err and "Traceback" not in err
    assert main(["video", str(clip), "--out", str(out), "--report", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow  # 4 s: out of the quick subset, which stays under 90 s (issue 36)
def test_ctrl_c_still_writes_the_report_of_what_was_processed(clip, tmp_path, monkeypatch, capsys):
    def bar(label):  # the CLI's progress callback: a real SIGINT (Ctrl-C) after frame 10
        return lambda done, total, *a: os.kill(os.getpid(), signal.SIGINT) if done == 10 else None
    monkeypatch.setattr(cli_video, "progress_bar", bar)
    rep = tmp_path / "stopped.html"
    assert main(["video", str(clip), "--out", str(tmp_path / f"s{V.output_suffix()}"), "--json",
                 "--report", str(rep)]) == 130
    *tracks, last = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert last["summary"]["status"] == "stopped" and 10 <= last["summary"]["frames"] < 50
    html = rep.read_text()
    assert_same_numbers(html, last["summary"], tracks)
    assert "Stopped after" in html


# ------------------------------------------------------------------------------ the page's buttons

def recorded_downloads(monkeypatch) -> list:
    """Every download button the page makes: (label, data); data bytes, str or a callable."""
    import streamlit as st
    from streamlit.delta_generator import DeltaGenerator
    made, in_column, on_page = [], DeltaGenerator.download_button, st.download_button

    def spy(self, label, data, *a, **kw):  # c3.download_button(...): a column's
        made.append((label, data))
        return in_column(self, label, data, *a, **kw)

    def spy_st(label, data, *a, **kw):     # st.download_button(...): bound to the page's main area
        made.append((label, data))
        return on_page(label, data, *a, **kw)
    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    monkeypatch.setattr(st, "download_button", spy_st)
    return made


def test_the_video_and_live_tabs_offer_the_report(processed, isolated_home, monkeypatch):
    import shutil

    from streamlit.testing.v1 import AppTest
    from ui.video import videos_dir
    folder = videos_dir() / "20260101-120000-abcdef"
    shutil.copytree(processed, folder)
    (folder / "name.txt").write_text(HOSTILE)
    made = recorded_downloads(monkeypatch)
    monkeypatch.chdir(REPO)
    at = AppTest.from_file(str(REPO / "pages" / "4_Recognize.py"), default_timeout=120)
    at.session_state["recognize_live_buffer"] = live_buffer()
    at.run()
    assert not at.exception, at.exception
    assert [b.key for b in at.get("download_button")][-1] == "recognize_video_report"  # Live: Prepare first
    made.clear()
    at.button(key="recognize_live_prepare").click().run()  # the Live tab renders the session on Prepare
    assert not at.exception, at.exception
    buttons = [(b.proto.label, b.key) for b in at.get("download_button")]
    assert buttons == [("Tracks (CSV)", "recognize_video_csv"), ("Tracks + summary (JSON)", "recognize_video_json"),
                       ("Download report (HTML)", "recognize_video_report"),
                       ("Download report (HTML)", "recognize_live_report")]
    # what a click would download: the report of that result, and of the live session so far
    reports = [data for label, data in made if label == "Download report (HTML)"]
    video_html, live_html = (f() if callable(f) else f.decode() if isinstance(f, bytes) else f for f in reports)
    on_disk = json.loads((folder / V.RESULT).read_text())
    assert_same_numbers(video_html, on_disk["summary"], on_disk["tracks"])
    assert HOSTILE not in video_html and "Face detector magenta" in " ".join(Report(video_html).text)
    assert Report(live_html).summary["people"] == 2 and "Live session started" in live_html


def test_a_live_session_whose_faces_never_became_a_person_says_so_not_that_no_face_was_found():
    buf = LiveBuffer()  # every=2: a person after 3 detection frames in a row
    t0 = 1_700_000_000.0
    for i in range(2):  # faces on two detection frames: too few to follow anyone
        faces = tuple(Face(F.Box(x, 40, x + 60, 100, 0.99), (x - 5, 35, x + 65, 105), "mask", 0.97) for x in (20, 200))
        res = FrameResult(faces, Timings(5.0, 3.0), (240, 320))
        buf.put(res, (), buf.track(res, 0.5, now=t0 + i / 10))
    s = buf.session()
    assert (s.with_faces, s.most_faces) == (2, 2)
    html = V.session_report(s, {}, "Live")
    assert "faces were found on 2 frames (up to 2 in one), but on too few frames to follow a person" in html
    assert "no face was found" not in html
    empty = LiveBuffer()
    res = FrameResult((), Timings(5.0, 3.0), (240, 320))
    empty.put(res, (), empty.track(res, 0.5, now=t0))
    assert "no face was found" in V.session_report(empty.session(), {}, "Live")
