"""A camera's compliance report for a time range: the video report (``maskrec.video.report``) made
from what the events writer recorded, so a camera's afternoon reads like a video run.

    html = camera_report("door", start, end, states, people, events, thumbs={track: data_url})

``states``: the camera's state records (``states.jsonl``: every few seconds, people now with and
without a mask, frames processed so far) make the per-moment charts, the frames and the speed;
``people`` (``people.jsonl``: each person once they left, with their vote) the track table and the
totals; ``events`` the count of events said in the notes; ``thumbs`` the faces of the tracks that
raised one (``event_thumbs`` fetches them from a server). Times are epoch seconds; the report's
seconds count from ``start``. People still in view at
``end`` are not in the table yet (they are recorded when they leave): the report says so.
"""
from __future__ import annotations

from datetime import datetime

from maskrec.cameras.remote import FeedError
from maskrec.data.image import jpeg_data_url
from maskrec.live.track import UNSURE_LABEL, TrackRow
from maskrec.video.report import render_report
from maskrec.video.result import VideoResult


def _in(rows: list[dict], camera: str, start: float, end: float, key: str = "t") -> list[dict]:
    return [r for r in rows if r.get("camera") == camera and start <= r.get(key, 0) < end]


def processed(states: list[dict]) -> int:
    """Frames processed over a camera's state records (time order): each record carries the camera's count
    since it started, so the rises add up; a count that fell is a restart, and counts from 0 again."""
    counts = [s["frames"] for s in states if isinstance(s.get("frames"), int)]
    return sum(b - a if b >= a else b for a, b in zip(counts, counts[1:]))


def camera_result(camera: str, start: float, end: float, states: list[dict], people: list[dict],
                  events: list[dict] = (), thumbs: dict | None = None) -> VideoResult:
    """The ``VideoResult`` of ``camera`` between ``start`` and ``end`` (see the module docstring)."""
    st = sorted(_in(states, camera, start, end), key=lambda r: r["t"])
    pp = sorted(_in(people, camera, start, end, "last"), key=lambda r: r["first"])
    ev = _in(events, camera, start, end)
    tracks = tuple(TrackRow(p["track"], p["first"] - start, p["last"] - start, p["frames"], p["label"], p["p_mask"],
                            p.get("agree", 1.0), False) for p in pp)
    timeline = tuple((int(round(s["t"] - start)), s["masked"], s["bare"]) for s in st)
    count = {k: sum(p["label"] == k for p in pp) for k in ("mask", "no_mask", UNSURE_LABEL)}
    models = sorted({r["model"] for r in [*st, *pp] if r.get("model")})
    warnings = [f"{len(ev)} event{'s' * (len(ev) != 1)} raised in this time (GET /v1/events)"] if ev else []
    if st and st[-1].get("people"):
        warnings.append(f"{st[-1]['people']} people were still in view at the end: they are counted once they leave")
    if len(models) > 1:
        warnings.append(f"the model changed during this time: {', '.join(models)}")
    frames = processed(st)
    span = st[-1]["t"] - st[0]["t"] if len(st) > 1 else 0.0
    summary = {"people": len(pp), **count, "frames": frames, "seconds": round(end - start, 3),
               "fps": round(frames / span, 1) if span > 0 else 0.0,
               "status": "live", "warnings": warnings,
               "started_at": datetime.fromtimestamp(start).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")}
    if not pp:
        summary["note"] = "nobody left the camera's view in this time" if st else "no record for this camera in this time"
    return VideoResult(tracks, timeline, summary, dict(thumbs or {}), None)


def camera_report(camera: str, start: float, end: float, states: list[dict], people: list[dict],
                  events: list[dict] = (), thumbs: dict | None = None, title: str | None = None) -> str:
    """The compliance report of ``camera`` between ``start`` and ``end``, one self-contained HTML page."""
    res = camera_result(camera, start, end, states, people, events, thumbs)
    models = sorted({r["model"] for r in [*states, *people] if r.get("camera") == camera and r.get("model")})
    settings = {"source": f"camera {camera}", "model (checkpoint@operating point)": ", ".join(models) or "–"}
    fmt = "%Y-%m-%d %H:%M"
    title = title or (f"Camera {camera}, {datetime.fromtimestamp(start).strftime(fmt)} to "
                      f"{datetime.fromtimestamp(end).strftime(fmt)}")
    return render_report(res, settings, title)


def event_thumbs(feed, events: list[dict], most: int = 200) -> dict[int, str]:
    """{track: data URL} of the face each track's first event kept (its thumbnail), for the report's track
    table; from a feed that has pictures (a server's; a broker's has none), at most ``most`` fetched."""
    if not hasattr(feed, "picture"):
        return {}
    out: dict[int, str] = {}
    for e in sorted(events, key=lambda e: e.get("t", 0)):
        track = e.get("track")
        if track is None or track in out or len(out) >= most:
            continue
        try:
            jpeg = feed.picture(e["id"], "thumbnail")
        except FeedError:
            break  # the server went away: the report is made without the rest
        if jpeg:
            out[track] = jpeg_data_url(jpeg)
    return out
