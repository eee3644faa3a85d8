"""ByteTrack from Roboflow's ``trackers`` package behind ``maskrec.live.track.Tracker``'s interface, to
compare it with ours on the same stored detections (``evaluation.replay``).

    bt = ByteTracker(rec.threshold, rec.predictor.classes, fps=30.0)
    frames, tracks = replay(recording, bt)

``supervision`` removed its ``sv.ByteTrack`` in 0.31 in favour of ``trackers.ByteTrackTracker``
(a Kalman filter on the box, two association passes: high-score detections first, then the low
ones against the tracks left). The tracking is theirs; each track's label vote is ours
(``track.Vote``), so the comparison is of the trackers only. ``carry`` (frames between two
detections) gives the boxes of the last detection frame: the package has no prediction call
without an update, so the bench compares the trackers on every frame.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from maskrec.live.track import Seen, TrackRow, Vote, count_people


class ByteTracker:
    def __init__(self, threshold: float = 0.5, classes: Sequence[str] = ("no_mask", "mask"), fps: float = 30.0,
                 activation: float = 0.8, min_frames: int = 5, lost_s: float = 1.0, high: float = 0.6,
                 match_iou: float = 0.1):
        import supervision as sv  # deferred: only the bench compares trackers
        from trackers import ByteTrackTracker
        self._sv = sv
        self.threshold, self.classes = float(threshold), tuple(classes)
        self._make = lambda: ByteTrackTracker(lost_track_buffer=max(1, round(lost_s * fps)), frame_rate=fps,
                                              track_activation_threshold=activation,
                                              minimum_consecutive_frames=min_frames,
                                              minimum_iou_threshold=match_iou, high_conf_det_threshold=high)
        self._bt = self._make()
        self._id_base = 0       # ids of earlier shots (after a cut the package starts its ids again)
        self._tracks: dict[int, dict] = {}   # our id -> first, last, hits, vote
        self._last: list[Seen] = []

    def update(self, t: float, boxes: Sequence, p_mask: Sequence[float], threshold: float | None = None) -> list[Seen]:
        thr = self.threshold if threshold is None else float(threshold)
        n = len(boxes)
        xyxy = np.array([tuple(b[:4]) for b in boxes], np.float32).reshape(-1, 4)
        conf = np.array([b[4] if len(b) > 4 else 1.0 for b in boxes], np.float32)
        dets = self._sv.Detections(xyxy=xyxy, confidence=conf, data={"i": np.arange(n)})
        out = self._bt.update(dets, timestamp=t)
        ids = dict(zip(out.data["i"].tolist(), out.tracker_id.tolist())) if len(out) else {}
        seen = []
        for c, b in enumerate(boxes):
            p = float(p_mask[c])
            tid = ids.get(c, -1)
            if tid < 0:
                seen.append(Seen(0, tuple(b), p, self.classes[int(p >= thr)], p))
                continue
            tid += 1 + self._id_base  # the package's ids start at 0, and again at 0 after a reset
            tr = self._tracks.setdefault(tid, {"first": t, "last": t, "hits": 0, "vote": Vote()})
            tr["last"], tr["hits"] = t, tr["hits"] + 1
            tr["vote"].add(p, thr)
            seen.append(Seen(tid, tuple(b), p, tr["vote"].running(self.classes), tr["vote"].p_mask(thr)))
        self._last = [s for s in seen if s.track]
        return seen

    def carry(self, t: float, threshold: float | None = None) -> list[Seen]:
        return [s._replace(carried=True) for s in self._last]

    def cut(self) -> None:
        self._id_base = max(self._tracks, default=0)
        self._bt = self._make()
        self._last = []

    def tracks(self) -> list[TrackRow]:
        return [TrackRow(k, v["first"], v["last"], v["hits"], v["vote"].label(self.classes),
                         v["vote"].p_mask(self.threshold), v["vote"].agree, False) for k, v in sorted(self._tracks.items())]

    def counts(self) -> dict:
        return count_people(self.tracks(), self.classes)
