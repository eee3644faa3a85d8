"""Cameras: follow one ``python -m maskrec serve --cameras FILE`` (its URL) or an MQTT broker that
several serve processes publish to: each camera's latest frame and figures, the events with their
evidence, the masked share over the last hour or day, a compliance report for a camera and a time
range, and another model loaded while the cameras run. The work is in maskrec.cameras (remote,
report); the page's pieces in ui/cameras.py."""
from ui.start import through_navigation

through_navigation()  # before the slow imports below: see ui/start.py

import streamlit as st

from maskrec.cameras.remote import FeedError, ServeFeed
from ui import cameras as C

st.title("Cameras")
feed = C.pick_feed()
if feed is None:
    st.info("Type the URL of a server started with `python -m maskrec serve --cameras FILE` "
            "(docs/serve.md), or a broker, in the sidebar.")
    st.stop()


@st.fragment(run_every=2.0)
def live() -> None:
    """The cameras as they are now (redrawn every 2 s)."""
    try:
        cams = feed.cameras()
    except FeedError as e:
        st.error(f"{e}. Is `python -m maskrec serve --cameras FILE` running there? (docs/serve.md)")
        st.session_state["cam_feed_error"] = str(e)
        return
    st.session_state.pop("cam_feed_error", None)
    if not isinstance(feed, ServeFeed):
        st.caption("broker " + ("connected" if feed.status()["connected"] else feed.status()["error"] or "connecting")
                   + f" · {len(cams)} camera(s) heard from")
    if not cams:
        st.info("No camera yet" + ("" if isinstance(feed, ServeFeed) else ": states arrive every few seconds") + ".")
        return
    st.session_state["cam_names"] = [c["name"] for c in cams]
    cols = st.columns(min(len(cams), 3))
    for i, cam in enumerate(cams):
        with cols[i % len(cols)]:
            C.camera_card(feed, cam)


@st.fragment(run_every=5.0)
def events() -> None:
    """The newest events, their evidence, and the trend of one camera."""
    try:
        got = feed.events(limit=50)
    except FeedError as e:
        if str(e) != st.session_state.get("cam_feed_error"):  # the cameras above said it already
            st.error(str(e))
        return
    st.subheader(f"Events ({got['total']:,})")
    if got["events"]:
        st.dataframe(C.events_table(got["events"]), hide_index=True, width="stretch")
        C.evidence_row(feed, got["events"])
    else:
        st.caption("No event yet: a camera's rules raise one when a person stays bare (docs/serve.md, Events).")


live()
events()

names = st.session_state.get("cam_names", [])
if names:
    st.subheader("Masked share over time")
    c1, c2 = st.columns([1, 1])
    camera = c1.selectbox("Camera", names, key="cam_trend_camera")
    span = c2.radio("Span", list(C.SPANS), horizontal=True, key="cam_trend_span")
    try:
        states = feed.states(camera=camera, since=C.since(span))
        st.plotly_chart(C.trend_figure(states, camera, C.SPANS[span]), width="stretch", key="cam_trend")
    except FeedError as e:
        st.error(str(e))

    st.subheader("Compliance report")
    C.report_form(feed, names)
    made = st.session_state.get("cam_report_html")
    if made:
        st.download_button(f"Download {made[0]}", made[1], file_name=made[0], mime="text/html", key="cam_report_dl",
                           on_click="ignore")  # a download is no reason to run the page again

    if isinstance(feed, ServeFeed):
        with st.expander("Model: load another checkpoint or operating point while the cameras run"):
            C.model_form(feed)
