"""The compliance report: one self-contained HTML file of a video run (or of a live session so far)
that a site manager can forward.

    settings = settings_of(rec, threshold, source="door.mp4")    # what was used, in words
    html = render_report(res, settings, title="Door camera, Monday")
    write_report("door.html", res, settings, "Door camera, Monday")  # atomic
    html = session_report(buffer.session(), settings_of(rec, thr, "live camera"), "Door, live")  # a live stream so far

What is in it: the summary (people, with a mask, without, unsure, seconds, masked share), people per
second with and without a mask (``plots.compliance_chart``, the page's own chart), the masked share
per second, the track table with each person's thumbnail, the settings used, and the warnings.

**No request off the machine.** plotly.js is inlined once (Plotly's own ``to_html``), thumbnails are
the ``data:`` URLs ``VideoResult.thumbs`` already holds (anything else is dropped), fonts are the
reader's system fonts, and a Content-Security-Policy in the file forbids any fetch, so a forwarded
report opens the same offline, behind a firewall, or years later (``tests/test_report_browser.py``).

**Its numbers are the JSON summary's**: read from ``res.summary``, ``res.tracks`` and ``res.timeline``
(the values ``result.json`` and ``video --json`` hold), never recounted; each sits in an element with
a ``data-key`` (summary) or ``data-track`` (track row) attribute and its raw value in ``data-value``,
so a test or a script reads them back. Every string that came from a user (file names, the title,
settings, warnings, class names) is escaped.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from html import escape
from pathlib import Path

import plotly.graph_objects as go

from maskrec.core.atomic import atomic_write_text
from maskrec.core.plots import COLORS, TOP_LEGEND, compliance_chart
from maskrec.live.channel import LiveSession
from maskrec.live.track import UNSURE_LABEL
from maskrec.video.result import VideoResult, session_result

SETTINGS = "settings.json"  # beside a page run's result.json: what the run was started with
# a thumbnail is shown only as an inline JPEG/PNG/WebP; a result.json edited to hold an http:// or
# javascript: URL would otherwise make the report fetch or run something
DATA_IMAGE = re.compile(r"data:image/(?:jpeg|png|webp);base64,[A-Za-z0-9+/=]+")
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:")  # plotly.js compiles some code at run time: unsafe-eval
PLOT_CONFIG = {"displaylogo": False, "responsive": True}  # the logo is a link to plotly's site
SETTING_WORDS = {"source": "Source", "checkpoint": "Checkpoint", "net": "Network",
                 "threshold": "P(mask) threshold", "operating_point": "Operating point",
                 "unsure_band": "Unsure band (P(mask))", "detector": "Face detector", "tracker": "Tracker",
                 "process": "Processing"}
SUMMARY_WORDS = {"detect_every": "Detector run on one frame in", "scene_cuts": "Scene cuts (each ends every track)",
                 "frames_with_faces": "Frames the detector found faces on",
                 "most_faces_in_a_frame": "Most faces found in one frame"}
SUMMARY_SHOWN = {"people", "mask", "no_mask", UNSURE_LABEL, "seconds", "frames", "fps", "status", "width",
                 "height", "processed_at", "source_fps", "warnings", "note", "started_at"}


def settings_of(rec, threshold: float | None = None, source: str = "", **extra) -> dict:
    """What a run used, for the report: a ``recognize.Recognizer``'s checkpoint, network and
    detector, the threshold (default the recognizer's), the source's name, and ``extra``
    (a ``tracker`` dict, say: ``tracker_settings``)."""
    path = rec.predictor.path
    op = getattr(rec, "op", None)
    band = op.band if op is not None and threshold is None else None
    return {"source": source, "checkpoint": str(path) if path else "", "net": rec.predictor.net,
            "operating_point": op.name if op is not None and threshold is None else "custom threshold",
            "threshold": float(rec.threshold if threshold is None else threshold),
            "unsure_band": f"{band[0]:.3f}-{band[1]:.3f}" if band else "none",
            "detector": getattr(rec.detector, "name", type(rec.detector).__name__), **extra}


def tracker_settings(tracker) -> dict:
    """A tracker's public scalar settings (``match_iou``, ``min_hits``, ``max_age_s``...), read off the
    object so that a setting added to the tracker shows up without a change here. Not its threshold:
    the run's own (``settings_of``) is the one each frame was judged by."""
    return {k: v for k, v in vars(tracker).items()
            if not k.startswith("_") and k != "threshold" and isinstance(v, (bool, int, float, str))}


def session_report(session: LiveSession, settings: dict, title: str) -> str:
    """The report of a live stream so far (``channel.LiveBuffer.session()``), with its tracker's settings."""
    res = session_result(session.tracker, session.timeline, start=session.start, end=session.end,
                         frames=session.frames, size=session.size, thumbs=session.thumbs,
                         settings={"detect_every": session.every, "frames_with_faces": session.with_faces,
                                   "most_faces_in_a_frame": session.most_faces})
    return render_report(res, {**settings, "tracker": tracker_settings(session.tracker)}, title)


def save_settings(folder: Path, settings: dict) -> None:
    atomic_write_text(Path(folder) / SETTINGS, json.dumps(settings))


def load_settings(folder: Path) -> dict:
    """{} when the run kept none (a folder from before reports) or the file is damaged."""
    try:
        d = json.loads((Path(folder) / SETTINGS).read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def write_report(path: str | Path, result: VideoResult, settings: dict, title: str) -> None:
    atomic_write_text(Path(path), render_report(result, settings, title))


def _e(v) -> str:
    return escape(str(v), quote=True)


def _num(v) -> str:
    """A raw number for a data-value attribute: as json.dumps writes it (what result.json holds)."""
    return _e(json.dumps(v))


def _share(m: int, n: int) -> float | None:
    return m / (m + n) if m + n else None


def _share_chart(timeline, x_title: str) -> go.Figure:
    """The share of the people in each second who wore a mask (by their running label); a gap
    where nobody was seen."""
    fig = go.Figure(go.Scatter(x=[r[0] for r in timeline], y=[_share(r[1], r[2]) for r in timeline],
                               mode="lines+markers", name="masked share", connectgaps=False,
                               line=dict(color=COLORS[1]), marker=dict(size=4)))
    fig.update_layout(height=260, margin=dict(l=50, r=10, t=30, b=40), legend=TOP_LEGEND,
                      xaxis_title=x_title, yaxis_title="with a mask")
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    if timeline:  # the same seconds as the bars above, edge to edge; a short one ticked at each second
        fig.update_xaxes(range=[timeline[0][0] - 0.5, timeline[-1][0] + 0.5], dtick=1 if len(timeline) <= 20 else None)
    return fig


def _charts(result: VideoResult, live: bool) -> str:
    x_title = "second of the session" if live else "second of the video"
    people = compliance_chart(result.timeline, height=300)
    people.update_layout(xaxis_title=x_title)
    figs = [("People per second, with and without a mask", people),
            ("Masked share per second", _share_chart(result.timeline, x_title))]
    # plotly.js (~4.6 MB) goes into the first chart only; the second uses the same Plotly object
    return "\n".join(f'<section class="chart"><h2>{_e(h)}</h2>'
                     + fig.to_html(full_html=False, include_plotlyjs=i == 0, config=PLOT_CONFIG) + "</section>"
                     for i, (h, fig) in enumerate(figs))


def _tiles(s: dict) -> str:
    people, mask = s.get("people", 0), s.get("mask", 0)
    share = round(mask / people, 4) if people else None
    tiles = [("people", "People", people, f"{people:,}"), ("mask", "With a mask", mask, f"{mask:,}"),
             ("no_mask", "Without a mask", s.get("no_mask", 0), f"{s.get('no_mask', 0):,}"),
             (UNSURE_LABEL, "Unsure", s.get(UNSURE_LABEL, 0), f"{s.get(UNSURE_LABEL, 0):,}"),
             ("seconds", "Seconds of video" if "started_at" not in s else "Seconds of session",
              s.get("seconds", 0), f"{s.get('seconds', 0):,.1f} s"),
             ("masked_share", "Masked share (with a mask / people)", share,
              "–" if share is None else f"{share:.0%}")]
    return "".join(f'<div class="tile"><div class="label">{_e(label)}</div>'
                   f'<div class="value" data-key="{_e(key)}" data-value="{_num(raw)}">{_e(shown)}</div></div>'
                   for key, label, raw, shown in tiles)


def _thumb(url: str) -> str:
    if url and DATA_IMAGE.fullmatch(url):
        return f'<img src="{_e(url)}" alt="" width="48" height="48">'
    return '<span class="none">–</span>'


def _tracks(result: VideoResult) -> str:
    if not result.tracks:
        return '<p class="none">Nobody was followed long enough to count as a person.</p>'
    seen = ('<th title="Frames in which the detector found this face; the detector runs on every K-th frame '
            '(--detect-every K), so about 1/K of the frames between first and last">Frames seen</th>')
    head = "".join(seen if h == "Frames seen" else f"<th>{h}</th>" for h in (
        "Face", "Id", "First s", "Last s", "Frames seen", "Label", "P(mask)", "Frames agree"))
    rows = []
    for t in result.tracks:
        j = t.as_json()  # the values result.json and the CLI's --json hold
        cells = [("track", j["track"]), ("first_s", f"{j['first_s']:.2f}"), ("last_s", f"{j['last_s']:.2f}"),
                 ("frames", f"{j['frames']:,}"), ("label", j["label"].replace("_", " ")),
                 ("p_mask", f"{j['p_mask']:.2f}"), ("agree", f"{j['agree']:.0%}")]
        kind = {"mask": "mask", "no_mask": "no-mask", UNSURE_LABEL: "unsure"}.get(j["label"], "")
        rows.append(f'<tr data-track="{_num(j["track"])}" data-label="{_e(j["label"])}" '
                    f'data-frames="{_num(j["frames"])}" class="{kind}">'
                    f'<td>{_thumb(result.thumbs.get(t.track, ""))}</td>'
                    + "".join(f'<td data-key="{k}" data-value="{_num(j[k])}">{_e(v)}</td>' for k, v in cells)
                    + "</tr>")
    return f'<table class="tracks"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _value(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{_e(k)} {_value(x)}" for k, x in v.items()) or "–"
    if isinstance(v, float):
        return _e(f"{v:.4f}".rstrip("0").rstrip("."))
    if isinstance(v, (list, tuple)):
        return " × ".join(_value(x) for x in v)
    return _e(v) if v not in ("", None) else "–"


def _settings(settings: dict, s: dict, made: str, live: bool) -> str:
    rows = []
    for k, v in settings.items():
        if k == "checkpoint" and v:
            v = f"{Path(str(v)).name} ({v})"
        rows.append((SETTING_WORDS.get(k, k), _value(v)))
    if "processed_at" in s:
        src = f" (source {s['width']} × {s['height']} px)" if "width" in s and not live else ""
        rows.append(("Frame size" if live else "Processing size", _value(s["processed_at"]) + " px" + _e(src)))
    # how the run went about it (process's settings), and whatever a newer run adds
    rows += [(SUMMARY_WORDS.get(k, k), "off" if v is None else _value(v))
             for k, v in s.items() if k not in SUMMARY_SHOWN]
    if s.get("source_fps"):
        rows.append(("Source frame rate", _e(f"{s['source_fps']} frames/s")))
    rows += [("Frames processed", _e(f"{s.get('frames', 0):,}")),
             ("Frames recognised per second" if live else "Processing speed", _e(f"{s.get('fps', 0)} frames/s")),
             ("Status", _e(s.get("status", ""))),
             ("Report made", _e(made))]
    if not settings:
        rows.insert(0, ("Settings", "not recorded for this run"))
    return '<table class="settings">' + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _notes(result: VideoResult, live: bool) -> str:
    s = result.summary
    notes = []
    if s.get("status") == "stopped":
        notes.append(f"Stopped after {s.get('seconds', 0):.1f} s of video: the figures cover that part only.")
    notes += [str(w) for w in s.get("warnings", [])]
    if s.get("note"):
        notes.append(str(s["note"]))
    if result.tracks and not result.thumbs:
        notes.append("No thumbnails were kept for this " + ("live session." if live else "run."))
    return "".join(f'<div class="warning">{_e(n)}</div>' for n in notes)


def render_report(result: VideoResult, settings: dict, title: str) -> str:
    """The whole report as one HTML document (see the module docstring)."""
    s = result.summary
    live = "started_at" in s
    made = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    what = (f"Live session started {s['started_at']}" if live else
            f"Video {settings.get('source') or 'file'}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{STYLE}</style></head>
<body><main>
<header><h1>{_e(title)}</h1><p class="sub">{_e(what)} · report made {_e(made)} by MaskRec</p></header>
{_notes(result, live)}
<section><div class="tiles">{_tiles(s)}</div>
<p class="how">A person is a face followed across frames; each gets one label voted over all their frames,
"unsure" when their frames disagree too much. The charts count the people seen in each second by the label
they had then.</p></section>
{_charts(result, live)}
<section><h2>People ({len(result.tracks):,})</h2>{_tracks(result)}</section>
<section><h2>Settings used</h2>{_settings(settings, s, made, live)}</section>
</main></body></html>
"""


STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --mask: #2ca02c; --bare: #d62728; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
.sub, .how, .none { color: var(--muted); } .how { font-size: 13px; max-width: 760px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin-top: 16px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.tile .label { color: var(--muted); font-size: 13px; } .tile .value { font-size: 26px; font-weight: 600; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: middle; }
table.tracks td:not(:first-child):not(:nth-child(6)) { font-variant-numeric: tabular-nums; }
table.tracks img { display: block; border-radius: 4px; image-rendering: auto; }
tr.mask td:nth-child(6) { color: var(--mask); font-weight: 600; }
tr.no-mask td:nth-child(6) { color: var(--bare); font-weight: 600; }
tr.unsure td:nth-child(6) { color: var(--muted); font-style: italic; }
table.settings th { width: 220px; color: var(--muted); font-weight: normal; }
td { overflow-wrap: anywhere; }
@media print { .chart, tr { break-inside: avoid; } main { padding: 0; } }
"""
