"""The Recognize page's Video tab (ui/video.py) under Streamlit's AppTest: a run of the page that
starts while another run of the same session is still starting the upload's job.

That is how a real session runs: with ``runner.fastReruns`` (Streamlit's default) a rerun request
that arrives during a run (the Live tab's webcam component sending its first value, any click)
stops that run at its next Streamlit call and starts the new run at once on a new thread, so for
a moment both run. The old run's output is dropped; the browser shows the new run's. Saving the
upload is the slow part of the old run. Here the new run happens exactly there: the write of the
upload runs the page again (``AppTest.run`` from inside the run: the same session, the same upload).
"""
from __future__ import annotations

import threading

import pytest
from streamlit.testing.v1 import AppTest

import ui.video as tab
from maskrec import video as V


def video_tab_alone():
    """The tab with a stand-in recognizer: the job never gets to use it (see ``jobs_wait``)."""
    from types import SimpleNamespace

    from ui.video import video_tab
    # what the tab reads of a Recognizer: the caption's names and the settings.json it writes per upload
    video_tab(SimpleNamespace(detector=SimpleNamespace(name="stub"), predictor=SimpleNamespace(net="net1", path=None),
                              threshold=0.5), 0.5)


@pytest.fixture
def jobs_wait(monkeypatch):
    """Every video job waits in its work until the test ends, then fails: the tab shows it in
    progress for as long as the test looks."""
    over = threading.Event()

    def work(job):
        over.wait(120)
        raise V.VideoError("the test is over")

    monkeypatch.setattr(V.VideoJob, "_work", work)
    yield
    over.set()


def shown(at: AppTest) -> dict:
    return {"progress": [p.proto.text for p in at.get("progress")], "buttons": [b.label for b in at.button],
            "captions": [c.value for c in at.caption], "warnings": [w.value for w in at.warning]}


def test_a_run_that_starts_while_another_saves_the_upload_shows_its_job(jobs_wait, monkeypatch):
    at = AppTest.from_function(video_tab_alone, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    seen: list[dict] = []
    write = tab.atomic_write_bytes

    def write_then_rerun(path, data):
        write(path, data)
        if not seen:  # once: the rerun below saves nothing of its own
            at.run()  # the new run, while this one is still inside its start
            seen.append(shown(at))

    monkeypatch.setattr(tab, "atomic_write_bytes", write_then_rerun)
    at.file_uploader(key="recognize_video").upload("door.mp4", b"not decoded: the job waits", "video/mp4").run()
    assert not at.exception, at.exception
    assert seen, "the upload was never written"
    # before the fix: the new run saw the upload as taken care of but no job, drew the empty tab
    # ("Drop a video: ...") and no progress, and nothing polled again: stale until a reload
    assert seen[0]["progress"] == ["Saving the upload…"], seen[0]
    assert not any(c.startswith("Drop a video") for c in seen[0]["captions"]), seen[0]
    # one job for the upload, whichever run got to it first; a later run shows the same one
    assert len(list(tab.videos_dir().iterdir())) == 1
    at.run()
    assert shown(at)["progress"] and "Stop" in shown(at)["buttons"], shown(at)


def video_tab_real_job():
    """The tab with a stand-in recognizer whose job really runs: a file that is no video fails in
    decoding, before the recognizer is used."""
    from types import SimpleNamespace

    from ui.video import video_tab
    video_tab(SimpleNamespace(detector=SimpleNamespace(name="stub"), threshold=0.5,
                              predictor=SimpleNamespace(net="net1", path=None, classes=("no_mask", "mask"))), 0.5)


def test_a_failed_video_is_named_as_uploaded_and_its_name_is_not_markdown():
    """The job saves the upload as input.<ext>, and the error named that file, not the user's; an
    upload's name with Markdown in it was rendered as Markdown."""
    import time

    from maskrec.core.presentation import md_text
    name = "door *cam* [2].mp4"
    at = AppTest.from_function(video_tab_real_job, default_timeout=60)
    at.run()
    at.file_uploader(key="recognize_video").upload(name, b"not a video\n" * 50, "video/mp4").run()
    deadline = time.monotonic() + 60
    while not at.warning and time.monotonic() < deadline:  # the job fails on its thread within moments
        time.sleep(0.2)
        at.run()
    assert not at.exception, at.exception
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith(f"**{md_text(name)}** could not be processed: {md_text(name)} is not a video"), warning
    assert "input.mp4" not in warning and "*cam*" not in warning
