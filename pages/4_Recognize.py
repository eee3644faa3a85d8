"""Recognize: find every face in uploaded photos, a camera snapshot or a live webcam stream, and
say whether it wears a mask.

The work is maskrec.live.recognize.Recognizer (detector + classifier, built once per checkpoint and
detector in st.cache_resource). The live stream runs in streamlit-webrtc's worker thread, which
never calls Streamlit: its frame callback puts typed results into a LiveBuffer that a polling
fragment reads.

WebRTC and remote use: on 127.0.0.1 no STUN/TURN server is needed; a browser on another machine
needs HTTPS and usually a TURN server, set in MASKREC_ICE_SERVERS (maskrec.live.webrtc says how).
"""
from ui.start import through_navigation

through_navigation()  # before the slow imports below: see ui/start.py

import time
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from maskrec.models.checkpoint import CheckpointError
from maskrec.config import DEFAULT_CHECKPOINT
from maskrec.core.plots import compliance_chart
from maskrec.data import BadImage, data_url, open_rgb
from maskrec.faces import DETECTORS, LIVE_DEFAULT, PHOTO_DEFAULT, PHOTO_SIDE, available
from maskrec.infer.predictor import describe_engine
from maskrec.core.presentation import CROWD, crop_captions, face_tags, label_counts, md_text
from maskrec.live.gradcam import saliency
from maskrec.live.channel import LiveBuffer, frame_callback
from maskrec.live.recognize import Recognizer, draw, face_crops
from maskrec.live.track import REID_S, min_hits_for
from maskrec.video import session_report, settings_of
from maskrec.live.webrtc import ice_servers
from ui.common import checkpoint_choices
from ui.html import scrolling_image
from ui.video import video_tab

st.title("Recognize")

CROP = 96  # px, the face crops listed beside an image
SHOW_SIDE = 720  # px, small photos are enlarged to this shorter side before boxes are drawn


@st.cache_resource(max_entries=6, show_spinner="Loading the classifier and the face detector (the first time on "
                   "this machine it also times the inference engines and calibrates int8: up to ~20 s)…")
def recognizer(path: str, mtime_ns: int, detector: str) -> Recognizer:
    """One per (checkpoint file version, detector), shared by every session: it serialises its
    frames with a lock, so a webcam and a photo upload can use the same one. The engine is built
    here, under the spinner: left to its first use (the engine line below), the probe and int8's
    calibration ran with nothing on the page but empty placeholders."""
    rec = Recognizer.load(path, detector=detector)
    _ = rec.predictor.engine  # assigned: a bare expression here would be Streamlit magic, drawn on the page
    return rec


def served_to_a_browser() -> bool:
    """True when a browser is connected to this session: it sent the request headers. False under
    AppTest, which has no browser and whose stand-in server cannot host streamlit-webrtc."""
    return len(st.context.headers) > 0


choices = checkpoint_choices()
if not choices:
    st.info("No checkpoint yet: train a run on the Train page first.")
    st.stop()
usable = [n for n, why in available().items() if not why]
if not usable:
    st.error("No face detector can run here: "
             + "; ".join(f"{n}: {why}" for n, why in available().items()))
    st.stop()

c_ckpt, c_thr = st.columns(2)
names = list(choices)
default = f"shipped: {DEFAULT_CHECKPOINT.stem}"  # the default recogniser (maskrec.config)
label = c_ckpt.selectbox("Checkpoint", names, index=names.index(default) if default in names else 0,
                         key="recognize_ckpt")
ckpt = choices[label]
above = st.container()  # the saliency toggle and the colours' caption, drawn once the operating point is known


def detector_box(where, title: str, default: str, key: str) -> str:
    return where.selectbox(title, usable, index=usable.index(default) if default in usable else 0,
                           key=key, help="\n\n".join(f"**{n}**: {DETECTORS[n].description}" for n in usable))


# The detectors and the engine's details behind an expander: four selects in a row were cut off on a
# narrow window, and the engine's words (timings, int8 calibration) crowded the top of the page.
# Its title says the detectors now chosen (a changed select has its value in the session state already).
details = st.expander(f"Detectors and engine: {st.session_state.get('recognize_det_photo', PHOTO_DEFAULT)} for "
                      f"photos, {st.session_state.get('recognize_det_live', LIVE_DEFAULT)} for live")
c_photo, c_live = details.columns(2)
photo_det = detector_box(c_photo, "Detector for photos", PHOTO_DEFAULT, "recognize_det_photo")
live_det = detector_box(c_live, "Detector for live", LIVE_DEFAULT, "recognize_det_live")
try:
    mtime = Path(ckpt).stat().st_mtime_ns
    rec_photo = recognizer(ckpt, mtime, photo_det)
except (CheckpointError, OSError) as e:
    st.error(f"Cannot load {label}: {e}")
    st.stop()
pred = rec_photo.predictor
details.caption(f"{pred.net}, {pred.input_size}×{pred.input_size} input, run by the "
                f"{describe_engine(pred.engine_info)}.")
CUSTOM = "custom threshold"
names = [*pred.operating_points, CUSTOM]
# keyed by checkpoint: switching checkpoints starts from that checkpoint's default operating point
point = c_thr.selectbox("Operating point", names, index=names.index(pred.default_op), key=f"recognize_op::{ckpt}",
                        help="\n\n".join(f"**{n}**: threshold {o.threshold:.3f}; {o.how or 'saved'}"
                                         for n, o in pred.operating_points.items()))
if point == CUSTOM:
    point = c_thr.slider("P(mask) threshold", 0.0, 1.0, float(pred.op.threshold), 0.01, key=f"recognize_thr::{ckpt}",
                         help="Faces with P(mask) at or above it are called mask (no unsure band).")
rec_photo = rec_photo.at(point)
op = rec_photo.op
saliency_on = above.toggle("Show what the network looked at (Grad-CAM saliency)", key="recognize_cam")
band = f", amber: unsure (P(mask) {op.band[0]:.2f}-{op.band[1]:.2f})" if op.band else ""
above.caption(f"Green box: mask, red: no mask{band}, at operating point **{op.name}** (threshold "
              f"{op.threshold:.3f}), {pred.net}. Each box is numbered as its face in the list beside the photo.")


def ms(v: float) -> str:
    return f"{v:.1f} ms" if v < 10 else f"{v:.0f} ms"


VIEWS = ("Beside the faces", "Full width", "Zoom (scroll)")
ZOOM_SIDE = 2 * SHOW_SIDE  # px, the zoom view's shorter side at least: twice the other views' photo
ZOOM_TEXT_PX = 18  # px, the zoom view's tags: it shows the photo at its own pixels


def show(rgb: np.ndarray, name: str, key: str) -> None:
    """One photo: numbered boxes drawn on it, its faces listed with the same numbers. A crowded
    photo opens full width (its tags would run into each other at column width)."""
    res = rec_photo.recognize(rgb)
    t0 = time.perf_counter()
    # a tag that would cover another is just the face's number: the list beside gives the rest
    numbers = [str(i) for i in range(1, len(res.faces) + 1)]
    shown = draw(rgb, res, covered=rec_photo.predictor.classes[1], min_side=SHOW_SIDE, tags=face_tags(res.faces),
                 short=numbers)
    t = res.timings._replace(draw_ms=1000 * (time.perf_counter() - t0))
    counts = f" ({label_counts(res.faces)})" if res.faces else ""
    caption = (f"{md_text(name)}: {len(res.faces)} face(s){counts} · detect {t.detect_ms:.0f} ms · "
               f"classify {t.classify_ms:.0f} ms · draw {t.draw_ms:.0f} ms")
    view = st.radio("View", VIEWS, index=1 if len(res.faces) > CROWD else 0, horizontal=True,
                    key=f"recognize_view::{key}", label_visibility="collapsed")
    if view == VIEWS[0]:
        left, right = st.columns([3, 2])
        left.image(shown, width="stretch", caption=caption)
    else:
        if view == VIEWS[1]:
            st.image(shown, width="stretch", caption=caption)
        else:
            zoomed = draw(rgb, res, covered=rec_photo.predictor.classes[1], min_side=ZOOM_SIDE,
                          tags=face_tags(res.faces), short=numbers, text_px=ZOOM_TEXT_PX)
            # at its own pixels, twice the full-width view: st.image never grows past its column
            scrolling_image(zoomed, f"{name}, zoomed")
            st.caption(caption)
        right = st.container()
    with right:
        if not res.faces:
            st.info("No face found. Faces under ~20 px or turned far away are often missed; "
                    "try the other detector.")
            return
        captions = crop_captions(res.faces)
        st.image(face_crops(rgb, res, CROP), caption=captions, width=CROP)
        if saliency_on:
            st.caption("Grad-CAM: red = pixels that pushed towards the predicted label")
            st.image(saliency(rec_photo, rgb, res, CROP), caption=captions, width=CROP)


tab_up, tab_snap, tab_video, tab_live = st.tabs(["Upload photos", "Snapshot", "Video", "Live"])

with tab_up:
    ups = st.file_uploader("Photos", type=["jpg", "jpeg", "png", "webp", "bmp"],
                           accept_multiple_files=True, key="recognize_uploads")
    if not ups:
        st.caption("Drop one or more photos; every face in them is found and classified.")
    for i, up in enumerate(ups or []):
        try:
            img = open_rgb(up.getvalue(), draft=PHOTO_SIDE)  # a 108 MP JPEG decodes at 1/4 size
        except BadImage as e:
            st.warning(f"**{md_text(up.name)}** skipped: {e}.")
            continue
        show(np.asarray(img), up.name, key=f"upload{i}")

with tab_snap:
    shot = st.camera_input("Take a snapshot", key="recognize_snapshot")
    if shot is not None:
        try:
            show(np.asarray(open_rgb(shot.getvalue(), draft=PHOTO_SIDE)), "snapshot", key="snapshot")
        except BadImage as e:
            st.warning(f"The snapshot could not be read: {e}.")

with tab_video:
    video_tab(recognizer(ckpt, mtime, live_det).at(point), None)

with tab_live:
    try:
        servers = ice_servers()
    except ValueError as e:
        st.error(str(e))
        servers = []
    rec_live = recognizer(ckpt, mtime, live_det).at(point)
    # Per tab (not shared): this session's stream writes it, this session's fragment reads it.
    buffer = st.session_state.setdefault("recognize_live_buffer", LiveBuffer())
    video, panel = st.columns([5, 4])
    with video:
        ctx = None
        if served_to_a_browser():
            ctx = webrtc_streamer(
                key="recognize_live", mode=WebRtcMode.SENDRECV,
                rtc_configuration={"iceServers": servers},
                media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}},
                                          "audio": False},
                video_frame_callback=frame_callback(rec_live, buffer, None, CROP),
                async_processing=True)  # the worker takes the newest frame and drops stale ones
        else:
            st.info("Live video needs the app served by `streamlit run` (this run has no server).")
        st.caption("Runs here with no STUN/TURN server, which is enough on 127.0.0.1. From another "
                   "machine: serve over HTTPS (browsers offer cameras only to https:// or localhost) "
                   "and set `MASKREC_ICE_SERVERS` to a JSON list of TURN servers, e.g. "
                   '`[{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]`.')

    def report_button():
        """The session so far, also after STOP: rendered on Prepare (~0.2 s, ~5 MB with plotly.js), then
        downloaded as fixed bytes, whose URL stays the same across the panel's polls. A callable's is
        registered anew by each poll: clicked while streaming, 1 download in 3 never came."""
        # a row that wraps, each button as wide as its label: in two equal columns of the panel a 1,024 px
        # window cut "Prepare report (HTML)" off (CI's dry run)
        prepare = download = st.container(horizontal=True, gap="small")
        if prepare.button("Prepare report (HTML)", key="recognize_live_prepare", width="content",
                          help="The people followed since the stream started, per-second charts, thumbnails "
                               "and the settings used, in one self-contained file that opens offline."):
            html = session_report(buffer.session(), settings_of(rec_live, None, "live camera"),
                                  "Mask compliance: live camera")
            st.session_state["recognize_live_report_html"] = (html.encode(), time.strftime("%Y%m%d-%H%M%S"))
        ready = st.session_state.get("recognize_live_report_html")
        if ready is not None:
            download.download_button("Download report (HTML)", ready[0], f"live-{ready[1]}-report.html", "text/html",
                                     key="recognize_live_report", on_click="ignore", width="content",
                                     help=f"The session up to {ready[1][9:11]}:{ready[1][11:13]}:{ready[1][13:]}; "
                                          "Prepare again for a newer one.")

    def live_panel():
        s = buffer.snapshot()
        # rows that wrap, each metric as wide as its label or value: in equal columns of a narrow panel
        # labels and values were cut off ("People s…", "11…")
        top = st.container(horizontal=True, gap="medium")
        top.metric("FPS", f"{s.fps:.1f}", width="content", help=f"Frames shown per second, last 30 frames. The "
                   f"detector and classifier run on one frame in {buffer.every}; the tracker carries each person's "
                   "box and label over the frames between.")
        top.metric("Faces", s.detected if s.result and s.fps > 0 else 0, width="content",
                   help=f"Faces the detector found on its latest frame (one in {buffer.every}); the frames "
                        "between carry them at their predicted boxes")
        top.metric("Total", ms(s.mean.total_ms) if s.mean else "–", width="content", help="Per-frame latency")
        for name, v in zip(("Detect", "Classify", "Draw"), s.mean or (None,) * 3):
            top.metric(name, ms(v) if v is not None else "–", width="content",
                       help=f"Mean per-frame latency over the last 30 frames (detect and classify are 0 on "
                            f"the frames the tracker carries: {buffer.every - 1} in {buffer.every})")
        if s.error:
            st.error(f"Recognition failed on the last frame: {s.error}")
        if ctx is None or not ctx.state.playing:
            st.caption("Connecting…" if ctx is not None and ctx.state.signalling else
                       "Not streaming. Press START and allow the camera. Still nothing? The browser "
                       "found no camera, camera permission was denied (reset it from the camera icon "
                       "in the address bar), or the page is not on HTTPS or localhost.")
            if s.people is not None:
                report_button()
            return
        if s.result is None:
            st.caption("Waiting for the first frame…")
            return
        st.caption(f"{s.detected} face(s) found on the latest detection frame · {len(s.result.faces)} shown on "
                   f"the latest frame · {s.frames} frames so far")
        people = s.people or {}
        counts = st.container(horizontal=True, gap="medium")
        for name, key in zip(("People", "Mask", "No mask", "Unsure"), ("people", "mask", "no_mask", "unsure")):
            counts.metric(name, people.get(key, 0), width="content", help="Each with the label voted over their frames")
        st.caption(f"**People**: faces followed since the stream started (a face becomes one after "
                   f"{min_hits_for(buffer.every)} detection frames), not a head count: someone out of the picture for up "
                   f"to {REID_S:.0f} s and back is recognised by the colours of their face and keeps their number; "
                   "away longer, they count again.")
        st.plotly_chart(compliance_chart(s.timeline, clock=True, height=220), key="recognize_live_chart")
        report_button()
        if s.result.faces:
            # data: URLs, not media files: the next poll would delete a media file the browser
            # may not have fetched yet (a broken image every few polls on a busy machine)
            st.image([data_url(c) for c in s.crops], width=CROP,
                     caption=[f"{f.label.replace('_', ' ')} {f.p_mask:.2f}" for f in s.result.faces])

    with panel:
        # Polls only while streaming; START/STOP rerun the whole page, which re-arms it. Once a
        # second, not faster: every script run takes the GIL from the webcam worker (Streamlit's
        # post-run gc.collect(), ~0.4 s here, is switched off in .streamlit/config.toml for this).
        st.fragment(run_every=1.0 if ctx is not None and ctx.state.playing else None)(live_panel)()
