"""Run a clip through the detector once, then replay the stored frames through any tracking setup.

    rec_ = record("pan.mp4", rec)                        # every frame detected and classified, and its cut flag
    frames, tracks = replay(rec_, tracker_for(rec))      # maskrec.video.follow's loop, every=1, cuts on
    frames, tracks = replay(rec_, tracker_for(rec), every=3, cuts=False)
    frames, tracks = replay(rec_, ByteTracker(...))      # evaluation.trackers: the same loop, another tracker

Detection is most of a run's time, and the tracker's settings do not change what the detector
sees, so comparing trackers, detection intervals and cut handling on stored results takes
milliseconds a setup instead of a run each. The replay goes through ``follow.Follower``, the loop
``maskrec.video.process`` runs, so what it scores is what a user's run does (a test checks that
a replay and a real run give the same tracks). What a replay cannot give is the time: the bench
times real runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from maskrec.live.recognize import FrameResult
from maskrec.live.track import Seen, TrackRow
from maskrec.video import codec
from maskrec.video.follow import Cuts, Follower


class Recording(NamedTuple):
    times: list[float]
    results: list[FrameResult]      # every frame through rec.recognize
    cuts: list[bool]                # every frame through follow.Cuts
    shape: tuple[int, int]          # (H, W) of the processed frames
    threshold: float
    margin: float


def record(src: str | Path, rec, threshold: float | None = None, max_side: int = codec.PROCESS_SIDE) -> Recording:
    """Decode ``src`` as ``video.process`` does and keep each frame's detections, P(mask) and cut flag."""
    thr = rec.threshold if threshold is None else float(threshold)
    times, results, flags = [], [], []
    with codec.Decoding(src, max_side) as video:
        cuts, size = Cuts(video.info.fps), video.size
        for t, rgb in video:
            times.append(t)
            flags.append(cuts(rgb))
            results.append(rec.recognize(rgb, thr))
    return Recording(times, results, flags, (size[1], size[0]), thr, rec.margin)


def replay(r: Recording, tracker, every: int = 1, cuts: bool = True) -> tuple[list[list[Seen]], list[TrackRow]]:
    """The stored frames through ``Follower`` with ``tracker``: each frame's Seen list and the tracks."""
    k = [0]
    follow = Follower(lambda rgb, thr: r.results[k[0]], tracker, r.threshold, every,
                      (lambda rgb: r.cuts[k[0]]) if cuts else None, r.margin)
    blank = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (*r.shape, 3))  # the loop reads only the shape
    frames = []
    for i, t in enumerate(r.times):
        k[0] = i
        frames.append(follow.frame(t, blank)[1])
    return frames, tracker.tracks()
