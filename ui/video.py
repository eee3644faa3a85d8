"""The Recognize page's Video tab.

Widgets only: the work is ``maskrec.video`` (a ``VideoJob`` on its own thread, never calling
Streamlit, one per upload in the server's one job registry: it takes a slot of MASKREC_MAX_JOBS
like a training, and queues visibly when none is free); a polling fragment shows its progress. Each upload becomes a folder under
``cache/videos/<id>/`` with the input, the annotated video and ``result.json``: the disk keeps
finished results, so a reload or a second tab lists them under "Result".
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import streamlit as st

from maskrec import video as V
from maskrec.jobs.registry import VIDEO
from maskrec.video.follow import DETECT_EVERY
from maskrec.core.atomic import atomic_write_bytes
from maskrec.config import cache_dir
from maskrec.core.plots import compliance_chart
from maskrec.core.presentation import md_text
from ui.common import MAX_UPLOAD_MB, registry, stop_job

# this session's latest upload (its id): its job is still shown after the uploader is cleared
JOB_KEY = "recognize_video_job"


def videos_dir() -> Path:
    return cache_dir() / "videos"


def _start(up, rec, threshold: float) -> V.VideoJob:
    """This upload's job, in the registry by the upload's id. The first run of the page that sees
    the upload saves it into a new folder and starts its job; every other run gets that job.

    Found by the upload's id under the registry's lock, not through the session state, because two
    runs of one session can overlap: with ``runner.fastReruns`` (Streamlit's default) a rerun request
    during a run (the Live tab's webcam component sending its first value, any click) stops that run
    at its next Streamlit call and starts the new run at once, on another thread, while the old one
    may still be saving a large upload. The old run's output is dropped; the new one must find the
    job, listed (reading "queued") before it starts."""
    def new(slots) -> V.VideoJob:
        folder = videos_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        return V.VideoJob(folder / f"input{Path(up.name).suffix.lower()}", folder, rec, threshold, slots, name=up.name)

    # the label names it on every page's "Queued: ..." line, which is Markdown
    job, mine = registry().claim(VIDEO, up.file_id, new, label=f"video {md_text(up.name)}")
    if mine:
        try:
            atomic_write_bytes(job.src, up.getvalue())
            (job.folder / "name.txt").write_text(up.name)
            V.save_settings(job.folder, V.settings_of(rec, threshold, up.name))  # the report: what it used
        except BaseException:
            registry().forget(VIDEO, up.file_id)  # not saved (a full disk...): the next run tries again and says why
            raise
        job.start()
    return job


def _finished() -> list[str]:
    """Folders with a result, newest first."""
    root = videos_dir()
    return sorted((p.parent.name for p in root.glob("*/" + V.RESULT)), reverse=True) if root.is_dir() else []


def _original_name(name: str) -> str:
    try:
        return (videos_dir() / name / "name.txt").read_text().strip()
    except OSError:
        return name


def video_tab(rec, threshold: float) -> None:
    """The tab: upload, a progress bar while the job runs, then the result. ``rec``: the
    Recognizer to use (the page's live one: fast enough for every frame)."""
    st.caption(f"One frame in {DETECT_EVERY} goes through the live detector ({rec.detector.name}) and "
               f"{rec.predictor.net}, the tracker carrying each face between; each face is followed across frames "
               "(a scene cut ends every track) and gets one label voted over its frames.")
    up = st.file_uploader(f"Video (mp4, webm, mov, avi; up to {MAX_UPLOAD_MB} MB)", type=list(V.EXTENSIONS),
                          key="recognize_video", max_upload_size=MAX_UPLOAD_MB)
    if up is not None:
        _start(up, rec, threshold)
        st.session_state[JOB_KEY] = up.file_id
    upload = st.session_state.get(JOB_KEY)
    job = registry().get(VIDEO, upload)
    current = job.folder.name if job is not None else None
    if job is not None and job.status in ("queued", "running"):
        st.fragment(run_every=0.5)(_progress)(upload)
        return
    if job is not None and job.status == "failed":
        st.warning(f"**{md_text(_original_name(current))}** could not be processed: {md_text(job.error)}")
    elif job is not None and job.status == "stopped" and job.progress() is None:  # stopped while queued
        st.info(f"**{md_text(_original_name(current))}** was stopped before it started: nothing was processed. "
                "Remove it from the box above and drop it again to process it.")
    done = _finished()
    if not done:
        if job is None:
            st.caption("Drop a video: it is processed in the background, with a progress bar; a long one can "
                       "be stopped. You get the annotated video, people per second, and a table of everyone seen.")
        return
    pick = st.selectbox("Result", done, index=done.index(current) if current in done else 0,
                        format_func=lambda n: f"{_original_name(n)} ({n[:8]}-{n[9:15]})", key="recognize_video_pick")
    res = V.load(videos_dir() / pick)
    if res is not None:
        _result(res, _original_name(pick), pick)


def _progress(upload: str) -> None:
    job = registry().get(VIDEO, upload)
    if job is None or job.status not in ("queued", "running"):
        st.rerun()  # finished (or never saved): the whole page draws it, outside this polling fragment
    if not job.alive and job.status == "queued":
        st.progress(0.0, text="Saving the upload…")
        return  # no Stop yet: a job stopped before it starts would fail on its empty run
    p = job.progress()
    if job.waiting:  # behind a training, a sweep, the suspect finder or another video
        st.progress(0.0, text=registry().queued_words(VIDEO, upload))
    elif job.status == "queued" or p is None:
        st.progress(0.0, text="Starting…")
    else:
        name = job.folder.name
        eta = f" · about {p.eta_s:.0f} s left" if p.eta_s is not None else ""
        speed = p.frames / p.elapsed_s if p.elapsed_s else 0.0
        st.progress(p.fraction or 0.0, text=f"{md_text(_original_name(name))}: frame {p.frames:,}"
                    + (f" of ~{p.total:,}" if p.total else "") + f" · {p.video_s:.1f} s of video · "
                    f"{speed:.1f} frames/s{eta}")
    st.button("Stop", key="recognize_video_stop", on_click=stop_job, args=(VIDEO, upload),
              help="Stops at the next frame; what was processed so far is kept and shown.")


@st.cache_data(max_entries=4, show_spinner=False)
def _report(folder: str, mtime_ns: int, title: str) -> bytes:
    """A result's report, rendered once per result (~0.2 s; ~5 MB, plotly.js inlined). Fixed bytes
    keep one download URL across reruns, where a callable's is registered anew by each: clicked near
    the rerun the Live tab's component starts after the page has loaded, a callable's download never
    came (tests/test_report_browser.py, 4 runs of 4 on the busy 2 cores)."""
    return V.render_report(V.load(videos_dir() / folder), V.load_settings(videos_dir() / folder), title).encode()


def _result(res: V.VideoResult, name: str, folder: str) -> None:
    """``folder``: the result's folder under videos_dir() (its settings.json: what the run used)."""
    s = res.summary
    if s["status"] == "stopped":
        st.info(f"Stopped after {s['seconds']:.1f} s of video: the results cover that part.")
    for w in s.get("warnings", []):
        st.warning(f"{md_text(name)}: {w}")
    # a row that wraps, each metric as wide as its words: six equal columns cut labels on a narrow window
    row = st.container(horizontal=True, gap="medium")
    for label, value in [("People", s["people"]), ("With mask", s["mask"]), ("Without mask", s["no_mask"]),
                         ("Unsure", s["unsure"]), ("Video", f"{s['seconds']:.1f} s"), ("Speed", f"{s['fps']:.1f} fps")]:
        row.metric(label, value, width="content", help=None if label != "People" else
                   "Faces followed through the video, one per track: someone who leaves the picture and comes "
                   "back, or is lost behind another, counts again (a scene cut ends every track).")
    if s.get("note"):  # why nobody was counted; it gives the frames itself where faces were found
        frames = "" if s.get("frames_with_faces") else f" ({s['frames']} frames)"
        st.info(f"{md_text(name)}: {s['note']}{frames}.")
    left, right = st.columns([3, 2])
    with left:
        if res.out and Path(res.out).is_file():
            st.video(res.out, format=V.mime(res.out))
            st.caption("Boxes: track id, voted label and P(mask) so far; green mask, red no mask.")
    with right:
        st.plotly_chart(compliance_chart(res.timeline), key="recognize_video_chart")
    rows = [{"thumb": res.thumbs.get(t.track, ""), "track": t.track, "first s": round(t.first_s, 2),
             "last s": round(t.last_s, 2), "frames seen": t.frames, "label": t.label, "P(mask)": round(t.p_mask, 3),
             "frames agree": round(t.agree, 2)} for t in res.tracks]
    if rows:
        st.dataframe(rows, hide_index=True, key="recognize_video_tracks",
                     column_config={"thumb": st.column_config.ImageColumn("face", width="small"),
                                    "frames seen": st.column_config.NumberColumn(
                                        help="Frames in which the detector found this face; the detector runs on every "
                                             "K-th frame (--detect-every K), so about 1/K of the frames between "
                                             "first s and last s"),
                                    "frames agree": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)})
    stem = Path(name).stem
    c1, c2, c3 = st.columns(3)
    c1.download_button("Tracks (CSV)", res.csv(), f"{stem}-tracks.csv", "text/csv", key="recognize_video_csv",
                       on_click="ignore")
    c2.download_button("Tracks + summary (JSON)", json.dumps({"tracks": [t.as_json() for t in res.tracks],
                                                              "summary": s, "timeline": res.timeline}),
                       f"{stem}-tracks.json", "application/json", key="recognize_video_json",
                       on_click="ignore")
    mtime = (videos_dir() / folder / V.RESULT).stat().st_mtime_ns
    c3.download_button("Download report (HTML)", _report(folder, mtime, f"Mask compliance: {name}"),
                       f"{stem}-report.html", "text/html", key="recognize_video_report", on_click="ignore",
                       help="One self-contained file to forward: summary, charts, the people with thumbnails "
                            "and the settings used; it opens offline.")
