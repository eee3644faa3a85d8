"""The Dataset page's "Review labels" section in Streamlit's AppTest, on a small demo set.

The suspect finder is replaced by a fake job that ranks at once (test_suspects.py tests the real
one): what is tested here is the page, that its buttons reach ``maskrec.data.overrides`` and that the
next scan applies what they decided.
"""
from __future__ import annotations

import csv
import io

import pytest
from streamlit.testing.v1 import AppTest

from maskrec.data import overrides
from maskrec.train import suspects
from maskrec.config import demo_dir
from maskrec.jobs.background import BackgroundJob
from tests.conftest import REPO
from ui import review

PAGE = str(REPO / "pages" / "1_Dataset.py")
N_SUSPECTS = 15  # more than a page (12): the pager has two pages


class FakeSuspectJob(BackgroundJob):
    """Ranks the first N_SUSPECTS images, in file order, as the real job's result would read; runs
    on the caller's thread, so the page's next run finds it done."""
    made: list["FakeSuspectJob"] = []

    def __init__(self, ds, slots=None, **kw):
        super().__init__("fake-suspects", slots)
        self.ds, self.kw = ds, kw
        self.checkpoint, self.folds, self.epochs = kw["checkpoint"], kw["folds"], kw["epochs"]
        self._found = None
        FakeSuspectJob.made.append(self)

    def start(self):
        self._main()
        return self

    def _work(self):
        self._found = [suspects.Suspect(str(it.path), it.label, 1.0 - it.label, 0.01 * k, "confident learning")
                       for k, it in enumerate(self.ds.items[:N_SUSPECTS])]
        self._set("done")

    def result(self):
        return self._found


@pytest.fixture(autouse=True)
def small_demo(monkeypatch):
    monkeypatch.setenv("MASKREC_DEMO_N", "240")
    monkeypatch.chdir(REPO)
    FakeSuspectJob.made.clear()
    monkeypatch.setattr(suspects, "SuspectJob", FakeSuspectJob)
    monkeypatch.setattr(suspects, "cached", lambda ds, **settings: None)  # no result on disk: only the button makes one


def dataset_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def found(at: AppTest) -> AppTest:
    """Press Find suspects (the fake ranks at once) and rerun as the finished job's page would."""
    at.button(key="review_start").click().run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return {m.label: m.value for m in at.metric}[label]


def raw():
    return review.as_on_disk(str(demo_dir()))


def test_the_section_finds_suspects_and_pages_through_them():
    at = dataset_page()
    assert "Review labels" in [h.value for h in at.subheader]
    assert not [b for b in at.button if b.label == "Keep"]  # nothing to review before the finder ran
    at = found(at)
    assert FakeSuspectJob.made and FakeSuspectJob.made[0].kw == {"checkpoint": None, "folds": suspects.FOLDS, "epochs": suspects.EPOCHS}
    assert len([b for b in at.button if b.label == "Keep"]) == review.PER_PAGE
    assert any("Page 1 of 2" in c.value for c in at.caption)
    # an image at original size and as the net sees it per card (plus the page's own samples)
    assert "P(mask) **" in " ".join(m.value for m in at.markdown)
    at.button(key="review_next").click().run()
    assert not at.exception, at.exception
    assert len([b for b in at.button if b.label == "Keep"]) == N_SUSPECTS - review.PER_PAGE
    assert any("Page 2 of 2" in c.value for c in at.caption)
    assert at.button(key="review_next").disabled


class SlowSuspectJob(BackgroundJob):
    """Holds at fold 1 until stopped, as a real finder would stop between batches."""
    made: list["SlowSuspectJob"] = []

    def __init__(self, ds, slots=None, **kw):
        super().__init__("slow-suspects", slots)
        SlowSuspectJob.made.append(self)

    def _work(self):
        self._set_progress(suspects.SuspectProgress("fold", 1, 5, 3, 10))
        self._stop.wait(60)
        self._set("stopped")

    def result(self):
        return None


def test_the_finder_shows_its_progress_and_stops(monkeypatch):
    monkeypatch.setattr(suspects, "SuspectJob", SlowSuspectJob)
    at = dataset_page()
    at.button(key="review_start").click().run()
    assert not at.exception, at.exception
    job = SlowSuspectJob.made[-1]
    assert job.alive and at.button(key="review_start").disabled  # a second click cannot start it twice
    (bar,) = [p for p in at.get("progress") if "Finding suspects" in p.proto.text]
    assert "fold 1/5 · batch 3/10" in bar.proto.text
    at.button(key="review_stop").click().run()
    job.join(10)
    assert not job.alive
    at.run()
    assert not at.exception, at.exception
    assert any("stopped" in w.value for w in at.warning)
    assert not at.button(key="review_start").disabled


@pytest.mark.slow  # 3 s: out of the quick subset, which stays under 90 s (issue 36)
def test_decisions_land_in_the_overrides_file_the_next_scan_applies_and_undo_takes_back():
    at = found(dataset_page())
    images = int(metric(at, "Images"))
    first, second = FakeSuspectJob.made[0].result()[:2]
    a, b = (overrides.relative(raw(), s.file) for s in (first, second))  # as the overrides file names them
    at.button(key=f"rv_flip_{review._wid(a)}").click().run()
    at.button(key=f"rv_excl_{review._wid(b)}").click().run()
    assert not at.exception, at.exception

    got = overrides.load(raw())
    assert got[a].action == "relabel" and got[a].label == 1 - first.label
    assert got[b].action == "exclude"
    assert int(metric(at, "Images")) == images - 1  # the page's own scan leaves the excluded image out
    text = " ".join(m.value for m in at.markdown)
    assert "**2 decisions** the next scan and training apply: 1 relabelled, 1 excluded" in text
    assert "Excluded" in text and "Relabelled to" in text
    assert [b for b in at.button if b.label == "Undo"]

    at.button(key=f"rv_undo_{review._wid(b)}").click().run()
    assert not at.exception, at.exception
    assert set(overrides.load(raw())) == {a}
    assert int(metric(at, "Images")) == images


def test_a_bad_overrides_file_is_shown_with_its_lines_not_a_traceback():
    at = found(dataset_page())
    ds = raw()
    it = ds.items[0]
    overrides.decide(ds, str(it.path), "keep")  # a valid file in the library's own format ...
    path = overrides.csv_path(ds)
    rows = list(csv.reader(io.StringIO(path.read_text())))
    header, good = rows[0], rows[1]
    missing = list(good)
    missing[header.index("path")] = f"{it.split}/no-such-file.jpg"
    bad_label = list(good)
    bad_label[[i for i, h in enumerate(header) if "label" in h][0]] = "7"
    bad_label[header.index("action")] = "relabel"
    buf = io.StringIO()
    csv.writer(buf).writerows([header, good, missing, bad_label])  # ... and two bad lines, 3 and 4
    path.write_text(buf.getvalue())

    at = dataset_page()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "line 3" in errors and "line 4" in errors, errors
    assert "no-such-file.jpg" in errors
