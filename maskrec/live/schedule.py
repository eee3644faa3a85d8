"""Detect on one frame in k, carry the people between: the one schedule of the live stream
(``channel.LiveBuffer``) and of a video run (``video.follow.Follower``).

    schedule = Schedule(every=2)
    if schedule.due(cut):              # the first frame, a scene cut, or k frames since the last detection
        res = rec.recognize(rgb); schedule.detected(); ...tracker.update(...)
    else:
        res, seen = carried(tracker, t, rgb.shape, threshold); schedule.carried()

The detector is most of a frame's cost, so ``every=k`` runs detector and classifier on one frame in
k; on the frames between, each confirmed track is drawn at the box its velocity predicts, with its
running label (``Tracker.carry``), and adds no evidence to its vote (docs/guide.md, Video: what each
k costs).
"""
from __future__ import annotations

from maskrec import faces as F
from maskrec.faces import MARGIN
from maskrec.live.recognize import Face, FrameResult, Timings
from maskrec.live.track import Seen, Tracker


class Schedule:
    """Which frames go through the detector: the first, one after a cut, and one in ``every``."""

    def __init__(self, every: int):
        if every < 1:
            raise ValueError(f"detect every {every} frames: it must be 1 or more")
        self.every = int(every)
        self._since: int | None = None  # frames since the last detection frame (None: none yet)

    def due(self, cut: bool = False) -> bool:
        return cut or self._since is None or self._since + 1 >= self.every

    def detected(self) -> None:
        self._since = 0

    def carried(self) -> None:
        self._since = (self._since or 0) + 1


def carried(tracker: Tracker, t: float, shape, threshold: float, margin: float = MARGIN,
            tentative: bool = False) -> tuple[FrameResult, list[Seen]]:
    """A frame not run through the detector: each confirmed track (``tentative``: and each face not
    yet confirmed) at the box it predicts for ``t`` (``Tracker.carry``, clipped to the frame; a box
    predicted off the frame is left out), with its running label, as a FrameResult with no detect or
    classify time and one Seen per face."""
    h, w = shape[:2]
    faces, seen = [], []
    for s in tracker.carry(t, threshold, tentative):
        x0, y0, x1, y1, score = s.box
        box = F.Box(int(max(0, round(x0))), int(max(0, round(y0))), int(min(w, round(x1))), int(min(h, round(y1))),
                    float(score))
        if box.x1 - box.x0 < 2 or box.y1 - box.y0 < 2:  # predicted off the frame
            continue
        faces.append(Face(box, F.crop_box(box, shape, margin), s.label, s.p_mask))
        seen.append(s._replace(box=tuple(box)))
    return FrameResult(tuple(faces), Timings(0.0, 0.0), (h, w)), seen
