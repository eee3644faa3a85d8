"""What a camera hands its listeners after each frame it processed (on the camera's thread:
a listener must return quickly and never raise; heavy work goes to a queue of its own)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from maskrec.live.recognize import FrameResult
from maskrec.live.track import Seen, Tracker


class CameraFrame(NamedTuple):
    camera: str              # the camera's name in the file
    t: float                 # capture time, epoch seconds (the lag is now - t)
    rgb: np.ndarray          # the frame as decoded (H, W, 3) uint8; do not modify
    result: FrameResult      # its faces (detected, or carried between detections)
    seen: list[Seen]         # one per face of result: track id, running label, P(mask) so far
    tracker: Tracker         # the camera's tracker (read under the camera's own thread only)
    model: str               # the checkpoint and operating point that labelled it, e.g. "net2.pt@street"
    frames: int = 0          # frames this camera processed since it started, this one included
