"""The Cameras page's pieces: which feed to follow, each camera's card, the events list, the trend
and the compliance report. The feeds (``maskrec.cameras.remote``) do the reading; nothing here runs
on a thread of its own (a broker feed's paho thread never touches Streamlit: it fills a buffer the
page reads)."""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from maskrec.cameras.remote import BrokerFeed, FeedError, ServeFeed
from maskrec.cameras.report import camera_report, event_thumbs
from maskrec.core.plots import COLORS, TOP_LEGEND

URL_ENV = "MASKREC_SERVE_URL"   # the server the page follows unless told another
SPANS = {"last hour": 3600.0, "last day": 86400.0}
SHOWN_EVENTS = 6                # evidence pictures shown (the table lists more)


@st.cache_resource(show_spinner=False)
def broker_feed(host: str, port: int, prefix: str) -> BrokerFeed:
    """One subscriber per broker for the whole server (shared by every browser tab)."""
    return BrokerFeed(host, port, prefix).start()


def pick_feed():
    """The sidebar's choice: a server (URL, API key) or a broker; the feed, or None until chosen."""
    kind = st.sidebar.radio("Follow", ["a server", "an MQTT broker"], key="cam_kind",
                            help="A server: one `python -m maskrec serve --cameras FILE`, with frames and evidence. "
                                 "A broker: every serve process that publishes to it (states and events only).")
    if kind == "a server":
        url = st.sidebar.text_input("Server URL", os.environ.get(URL_ENV, "http://127.0.0.1:8000"), key="cam_url")
        key = st.sidebar.text_input("API key", type="password", key="cam_key",
                                    help="Only when the server was started with one (beyond 127.0.0.1)")
        return ServeFeed(url, key) if url.strip() else None
    host = st.sidebar.text_input("Broker host", "127.0.0.1", key="cam_host")
    port = st.sidebar.number_input("Broker port", 1, 65535, 1883, key="cam_port")
    prefix = st.sidebar.text_input("Topic prefix", "maskrec", key="cam_prefix")
    return broker_feed(host.strip(), int(port), prefix.strip() or "maskrec") if host.strip() else None


def _num(v, fmt: str, none: str = "–") -> str:
    return none if v is None else format(v, fmt)


def camera_card(feed, cam: dict) -> None:
    """One camera: its latest frame (a server only), state, people now, masked share, FPS and lag."""
    with st.container(border=True, key=f"cam-{cam['name']}"):  # the key: a class a test finds it by
        st.markdown(f"**{cam['name']}** · {cam.get('state', '')}")
        if isinstance(feed, ServeFeed):
            try:
                jpg = feed.frame(cam["name"])
            except FeedError as e:
                jpg = None
                st.caption(str(e))
            if jpg:
                st.image(jpg, width="stretch")
            else:
                st.caption("no frame yet" + (f": {cam['error']}" if cam.get("error") else ""))
        elif cam.get("error"):  # a broker's camera whose server went away
            st.caption(cam["error"])
        a, b = st.columns(2)  # two a row: four in a third of the page cut "0.52 s" off
        a.metric("People now", cam.get("people", 0))
        b.metric("Masked", _num(cam.get("masked_share"), ".0%"), help="share of the people now with a mask")
        if isinstance(feed, ServeFeed):
            c, d = st.columns(2)
            c.metric("FPS", _num(cam.get("fps"), ".1f"), help="frames processed per second, last 10 s")
            lag = cam.get("lag_p95_s")
            d.metric("Lag p95", "–" if lag is None else f"{lag:.2f} s", help="capture to result, last 10 s")
        if cam.get("model"):
            st.caption(f"model {cam['model']}")


def events_table(events: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"time": datetime.fromtimestamp(e["t"]).strftime("%Y-%m-%d %H:%M:%S"), "camera": e["camera"],
                          "rule": e["rule"], "zone": e.get("zone") or "", "person": e["track"],
                          "bare for s": e["bare_for_s"], "raised after s": e.get("delay_s"), "model": e.get("model", "")}
                         for e in events])


def evidence_row(feed, events: list[dict]) -> None:
    """The newest events' evidence pictures (a server only: a broker carries none)."""
    if not isinstance(feed, ServeFeed):
        st.caption("Evidence pictures stay on each server's disk: follow a server to see them.")
        return
    cols = st.columns(3)
    for i, e in enumerate(events[:SHOWN_EVENTS]):
        with cols[i % 3]:
            try:
                jpg = feed.picture(e["id"])
            except FeedError:
                jpg = None
            if jpg:
                when = datetime.fromtimestamp(e["t"]).strftime("%H:%M:%S")
                st.image(jpg, caption=f"{e['camera']} · {e['rule']} · person {e['track']} · {when}",
                         width="stretch")


def trend_figure(states: list[dict], camera: str, span_s: float) -> go.Figure:
    """Masked share of the people in view over time, one point per state record; a gap where nobody was."""
    rows = [s for s in states if s.get("camera") == camera]
    x = [datetime.fromtimestamp(s["t"]) for s in rows]
    fig = go.Figure(go.Scatter(x=x, y=[s.get("masked_share") for s in rows], mode="lines+markers",
                               name="masked share", connectgaps=False, line=dict(color=COLORS[1]), marker=dict(size=4)))
    fig.add_trace(go.Scatter(x=x, y=[s.get("people", 0) for s in rows], mode="lines", name="people in view",
                             yaxis="y2", line=dict(color="#888", width=1)))
    now = datetime.now()
    fig.update_layout(height=300, margin=dict(l=50, r=50, t=30, b=40), legend=TOP_LEGEND,
                      yaxis=dict(title="with a mask", range=[0, 1.05], tickformat=".0%"),
                      yaxis2=dict(title="people", overlaying="y", side="right", rangemode="tozero", showgrid=False,
                                  tickformat=",d", dtick=1 if max((s.get("people", 0) for s in rows), default=0) <= 8
                                  else None),
                      xaxis=dict(range=[now - timedelta(seconds=span_s), now]))
    return fig


def last_hour(now: datetime) -> tuple[datetime, datetime]:
    """The report form's default range: the last hour to the next whole minute, each end with its own date
    (at 00:30 the hour began yesterday; at 23:59:30 it ends tomorrow)."""
    return ((now - timedelta(hours=1)).replace(second=0, microsecond=0),
            (now + timedelta(minutes=1)).replace(second=0, microsecond=0))


def report_form(feed, names: list[str]) -> None:
    """A camera and a time range -> the compliance report (HTML) to download."""
    with st.form("cam_report"):
        camera = st.selectbox("Camera", names, key="cam_report_camera")
        t0, t1 = last_hour(datetime.now())
        c1, c2 = st.columns(2)
        start_d = c1.date_input("From", t0.date(), key="cam_report_d0")
        start_t = c1.time_input("at", t0.time(), key="cam_report_t0")
        end_d = c2.date_input("To", t1.date(), key="cam_report_d1")
        end_t = c2.time_input("at ", t1.time(), key="cam_report_t1")
        made = st.form_submit_button("Make report")
    if not made:
        return
    start = datetime.combine(start_d, start_t).timestamp()
    end = datetime.combine(end_d, end_t).timestamp()
    if end <= start:
        st.error("The range ends before it starts.")
        return
    try:
        states = feed.states(camera=camera, since=start, until=end)
        people = feed.people(camera=camera, since=start, until=end) if isinstance(feed, ServeFeed) else []
        events = feed.events(camera=camera, since=start, until=end, limit=1000)["events"]
    except FeedError as e:
        st.error(str(e))
        return
    html = camera_report(camera, start, end, states, people, events, event_thumbs(feed, events))
    name = f"{camera}-{datetime.fromtimestamp(start):%Y%m%d-%H%M}.html"
    st.session_state["cam_report_html"] = (name, html)


def model_form(feed) -> None:
    """Swap the server's model (POST /v1/model) while its cameras run."""
    with st.form("cam_model"):
        ckpt = st.text_input("Checkpoint on the server", placeholder="checkpoints/net1.pt (empty: keep it)",
                             key="cam_model_ckpt")
        point = st.text_input("Operating point", placeholder="street or crops (empty: its default)",
                              key="cam_model_point")
        go_ = st.form_submit_button("Load while running")
    if go_:
        try:
            with st.spinner("loading beside the current model..."):
                got = feed.swap(ckpt.strip() or None, point.strip() or None)
            st.success(f"now {got['model']}: the next frames and events use it")
        except FeedError as e:
            st.error(str(e))
    try:  # after the form: what it says includes a swap just made
        st.caption(f"serving {feed.ready().get('model', '?')}")
    except FeedError as e:
        st.caption(str(e))


def since(span: str) -> float:
    return time.time() - SPANS[span]
