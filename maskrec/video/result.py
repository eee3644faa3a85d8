"""What a video run leaves: the tracks, the per-second timeline, the summary and each person's
thumbnail, as a ``VideoResult``; and ``result.json``, the same on disk.

    res = make_result(tracker, timeline, info, size, frames=n, last_t=t, elapsed_s=..., stopped=False,
                      warnings=[], thumbs=thumbs, out=None)
    res = session_result(tracker, timeline, start=t0, end=t1, frames=n, size=(w, h), thumbs=crops)
                                         # the same for a live stream so far (no file; epoch times)
    save(folder, res); load(folder)      # result.json; load is None when there is none (or it is damaged)
    res.csv()                            # the track table, no thumbnails
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from maskrec.core.atomic import atomic_write_text
from maskrec.data import data_url
from maskrec.live.track import UNSURE_LABEL, Timeline, Tracker, TrackRow
from maskrec.video.codec import VideoInfo

RESULT = "result.json"
THUMB = 64  # px, the side of a track's thumbnail


@dataclass(frozen=True)
class VideoResult:
    tracks: tuple[TrackRow, ...]
    timeline: tuple[tuple[int, int, int], ...]   # (second, with mask, without), every second
    summary: dict
    thumbs: dict = field(default_factory=dict)   # track id -> data:image/jpeg URL
    out: str | None = None                       # the annotated video, if one was written

    def as_json(self) -> dict:
        return {"tracks": [{**t.as_json(), "thumb": self.thumbs.get(t.track, "")} for t in self.tracks],
                "timeline": [list(r) for r in self.timeline], "summary": self.summary, "out": self.out}

    @classmethod
    def from_json(cls, d: dict) -> "VideoResult":
        tracks = tuple(TrackRow(t["track"], t["first_s"], t["last_s"], t["frames"], t["label"], t["p_mask"],
                                t.get("agree", 1.0), False) for t in d["tracks"])
        return cls(tracks, tuple(tuple(r) for r in d["timeline"]), d["summary"],
                   {t["track"]: t["thumb"] for t in d["tracks"] if t.get("thumb")}, d.get("out"))

    def csv(self) -> str:
        """The track table as CSV (no thumbnails)."""
        lines = ["track,first_s,last_s,frames,label,p_mask,agree"]
        lines += [f"{t.track},{t.first_s:.2f},{t.last_s:.2f},{t.frames},{t.label},{t.p_mask:.4f},{t.agree:.3f}"
                  for t in self.tracks]
        return "\n".join(lines) + "\n"


class Thumbs:
    """Each track's largest view of its face so far, squashed to THUMB px (one per person)."""

    def __init__(self):
        self._best: dict[int, tuple[int, np.ndarray]] = {}   # track -> (area in px, (THUMB, THUMB, 3) uint8)

    def offer(self, track: int, rgb: np.ndarray, crop) -> None:
        x0, y0, x1, y1 = crop
        area = (x1 - x0) * (y1 - y0)
        if area > self._best.get(track, (0, None))[0]:
            import cv2  # deferred: OpenCV is heavy and only a frame with a new best face needs it
            self._best[track] = (area, cv2.resize(rgb[y0:y1, x0:x1], (THUMB, THUMB), interpolation=cv2.INTER_AREA))

    def urls(self) -> dict[int, str]:
        return {k: data_url(v[1]) for k, v in self._best.items()}


def make_result(tracker: Tracker, timeline: Timeline, info: VideoInfo, size: tuple[int, int], *, frames: int,
                last_t: float, elapsed_s: float, stopped: bool, warnings: list[str], thumbs: Thumbs,
                out: str | Path | None, settings: dict | None = None) -> VideoResult:
    """The result of a run that processed ``frames`` frames, the last at ``last_t`` s, in
    ``elapsed_s`` s of wall time; ``out``: the annotated video written, or None."""
    classes = tracker.classes
    rows = tracker.tracks()
    counts = tracker.counts()
    seconds = last_t + (1 / info.fps if info.fps else 0.0)
    per_sec = {k: (m, nm) for k, m, nm in timeline.rows()}
    summary = {"people": counts["people"], "mask": counts[classes[1]], "no_mask": counts[classes[0]],
               UNSURE_LABEL: counts[UNSURE_LABEL], "frames": frames, "seconds": round(seconds, 3),
               "fps": round(frames / max(elapsed_s, 1e-9), 1), "status": "stopped" if stopped else "done",
               "width": info.width, "height": info.height, "processed_at": list(size),
               "source_fps": round(info.fps, 3), "warnings": warnings, **(settings or {})}
    if not rows:
        summary["note"] = _no_person(summary, tracker.min_hits)
    return VideoResult(tuple(rows), tuple((s, *per_sec.get(s, (0, 0))) for s in range(int(last_t) + 1)),
                       summary, thumbs.urls(), None if out is None else str(out))


def _no_person(summary: dict, min_hits: int) -> str:
    """Why a run counted nobody: no face at all, or faces on too few frames to follow anyone (a short
    clip of a crowd: a face becomes a person only once seen on ``min_hits`` detection frames in a row)."""
    seen = summary.get("frames_with_faces", 0)
    if not seen:
        return "no face was found"
    every = summary.get("detect_every", 1)
    need = (min_hits - 1) * every + 1
    how = f" (seen on {min_hits} detection frames, the detector running on one frame in {every})" if every > 1 else ""
    return (f"faces were found on {seen} frame{'s' * (seen != 1)} (up to {summary['most_faces_in_a_frame']} "
            f"in one), but on too few frames to follow a person: a person needs {need} frames in a row{how}, "
            f"and {summary['frames']} were processed")


def session_result(tracker: Tracker, timeline: Timeline, *, start: float, end: float, frames: int,
                   size: tuple[int, int], thumbs: dict[int, np.ndarray] | None = None,
                   settings: dict | None = None) -> VideoResult:
    """A live stream's result so far, from its Tracker and Timeline (``channel.LiveBuffer.session``):
    the same summary keys as ``make_result``'s, times as seconds since ``start`` (the first frame's
    wall-clock time; ``end``: the last one's), status "live" and ``started_at``. ``thumbs``: track
    id -> its face crop (RGB uint8), or None when the stream kept none. ``settings``: how the stream
    went about it, into the summary as ``make_result``'s (``detect_every``)."""
    classes = tracker.classes
    counts = tracker.counts()
    rows = [r._replace(first_s=r.first_s - start, last_s=r.last_s - start) for r in tracker.tracks()]
    s0, s1 = int(start), int(end)
    per_sec = {k: (m, nm) for k, m, nm in timeline.rows(s0)}
    first = min(per_sec, default=s0)  # after s0 only when the timeline let go of the oldest seconds
    warnings = [f"the per-second counts cover the last {s1 - first + 1:,} s of the session only"] if first > s0 else []
    seconds = max(end - start, 0.0)
    summary = {"people": counts["people"], "mask": counts[classes[1]], "no_mask": counts[classes[0]],
               UNSURE_LABEL: counts[UNSURE_LABEL], "frames": frames, "seconds": round(seconds, 3),
               "fps": round(frames / seconds, 1) if seconds > 0 else 0.0, "status": "live",
               "width": size[0], "height": size[1], "processed_at": list(size), "source_fps": 0.0,
               "warnings": warnings,
               "started_at": datetime.fromtimestamp(start).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
               **(settings or {})}
    if not rows:  # why nobody: no face, or faces too briefly to follow (settings: the session's counts)
        summary["note"] = _no_person(summary, tracker.min_hits)
    return VideoResult(tuple(rows), tuple((k - s0, *per_sec.get(k, (0, 0))) for k in range(first, s1 + 1)),
                       summary, {k: data_url(v) for k, v in (thumbs or {}).items()}, None)


def save(folder: Path, result: VideoResult) -> None:
    atomic_write_text(Path(folder) / RESULT, json.dumps(result.as_json()))


def load(folder: Path) -> VideoResult | None:
    p = Path(folder) / RESULT
    try:
        return VideoResult.from_json(json.loads(p.read_text()))
    except (OSError, ValueError, KeyError):
        return None
