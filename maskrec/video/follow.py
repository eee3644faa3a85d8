"""One frame of a video run: scene cuts, detection on every k-th frame, tracking.

    follow = Follower(rec.recognize, tracker, threshold, every=2, cuts=Cuts(fps))
    res, seen = follow.frame(t, rgb)    # a FrameResult and one track.Seen per face, in the same order

**Detection every k-th frame.** The detector is most of a frame's cost (RetinaFace at 640 px: 10-25
ms a frame on 2 cores, against ~3 ms to classify the frame's faces and ~2 ms to track them), so
``every=k`` runs detector and classifier on one frame in k; on the frames between, each confirmed
track is drawn at the box its velocity predicts, with its running label (``Tracker.carry``), and
adds no evidence to its vote. A cut, or the first frame, is always detected. ``min_hits`` of the
tracker counts detection frames, so at k = 2 a face needs 10 frames to become a person rather than
5. What it costs in count and labels is measured (docs/guide.md, Video).

**Scene cuts** end every track (``Tracker.cut``): a pan cut together from several shots otherwise
hands a coasting track to whoever stands at the same spot of the next shot. ``Cuts`` asks
PySceneDetect's ``ContentDetector`` (the mean change of hue, saturation and lightness between two
frames over a threshold, 27 by default, and at least ``min_scene_s`` between cuts) frame by frame,
on a 160 px copy of the frame: the change is a mean over pixels, so a small copy gives nearly the
same score at a fraction of the cost. Its ``SUPPRESS`` filter says a cut on the frame it happens
(the default ``MERGE`` filter reports it frames later, after the tracks would have taken the new
faces).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from maskrec.faces import MARGIN
from maskrec.live.recognize import FrameResult
from maskrec.live.schedule import Schedule, carried
from maskrec.live.track import Seen, Tracker

DETECT_EVERY = 2      # detector on one frame in this many (docs/guide.md, Video: what each k costs)
CUT_THRESHOLD = 27.0  # ContentDetector's default
CUT_SIDE = 160        # px, the longer side of the copy the cut detector reads


class Cuts:
    """``cuts(rgb) -> bool``: is this frame the first of a new shot? Frames must come in order."""

    def __init__(self, fps: float, threshold: float = CUT_THRESHOLD, min_scene_s: float = 0.5):
        # deferred: PySceneDetect pulls OpenCV in, and only a video run needs it
        import cv2
        from scenedetect import FrameTimecode
        from scenedetect.detector import FlashFilter
        from scenedetect.detectors import ContentDetector
        self._fps = float(fps) if fps and fps > 0 else 30.0
        self._tc = FrameTimecode
        self._det = ContentDetector(threshold=threshold, min_scene_len=max(1, round(min_scene_s * self._fps)),
                                    filter_mode=FlashFilter.Mode.SUPPRESS)
        self._n = 0
        self._cv2 = cv2  # once here, not an import statement per frame

    def __call__(self, rgb: np.ndarray) -> bool:
        h, w = rgb.shape[:2]
        f = CUT_SIDE / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        small = self._cv2.resize(rgb, size, interpolation=self._cv2.INTER_AREA) if f < 1 else rgb
        n, self._n = self._n, self._n + 1
        # ContentDetector reads OpenCV's BGR order
        cuts = self._det.process_frame(self._tc(n, self._fps), np.ascontiguousarray(small[..., ::-1]))
        return n > 0 and any(c.frame_num == n for c in cuts)


class Follower:
    """Cuts, the detection schedule and the tracker, one frame at a time.

    ``recognize(rgb, threshold) -> FrameResult`` is the detector and classifier (a Recognizer's
    ``recognize``; the bench replays stored results through the same loop). ``cuts``: a
    ``Cuts`` or any callable on the frame (None: no cut detection)."""

    def __init__(self, recognize: Callable[[np.ndarray, float], FrameResult], tracker: Tracker,
                 threshold: float, every: int = DETECT_EVERY, cuts: Callable[[np.ndarray], bool] | None = None,
                 margin: float = MARGIN):
        self.schedule = Schedule(every)  # raises on every < 1
        self.recognize, self.tracker, self.threshold = recognize, tracker, float(threshold)
        self.every, self.cuts, self.margin = self.schedule.every, cuts, margin
        self.n_cuts = 0

    def frame(self, t: float, rgb: np.ndarray) -> tuple[FrameResult, list[Seen], bool]:
        """The frame at ``t`` s: (its faces, their tracking, whether it went through the detector)."""
        cut = bool(self.cuts(rgb)) if self.cuts is not None else False
        if cut:
            self.tracker.cut()
            self.n_cuts += 1
        if self.schedule.due(cut):
            res = self.recognize(rgb, self.threshold)
            seen = self.tracker.update(t, [f.box for f in res.faces], [f.p_mask for f in res.faces], self.threshold)
            self.schedule.detected()
            return res, seen, True
        self.schedule.carried()
        return (*carried(self.tracker, t, rgb.shape, self.threshold, self.margin), False)
