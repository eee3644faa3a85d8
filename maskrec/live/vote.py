"""One track's evidence: every frame's P(mask) turned into the final vote over the whole track
and the running (sticky) label drawn on each frame (the rules: ``maskrec.live.track``'s docstring).
"""
from __future__ import annotations

import math
from typing import Sequence

CLIP = 4.0        # max |log-odds| one frame adds: P(mask) 0.018-0.982
AGREE = 0.6       # a vote that fewer of the track's frames agree with is "unsure"
SWITCH = 0.005    # running label: chance per frame that the true state changed
TEMPER = 0.3      # running label: consecutive frames of one face are far from independent
UNSURE_LABEL = "unsure"


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


class Vote:
    """One track's evidence: the final vote over every frame, and the running (sticky) label."""

    __slots__ = ("n", "n_mask", "total", "state")

    def __init__(self):
        self.n = 0           # frames voted
        self.n_mask = 0      # of which labelled mask on their own
        self.total = 0.0     # sum of clipped log-odds (relative to the threshold)
        self.state = 0.0     # running filter: log-odds that the face wears a mask now

    def add(self, p_mask: float, threshold: float = 0.5) -> None:
        e = max(-CLIP, min(CLIP, _logit(p_mask) - _logit(threshold)))
        self.n += 1
        self.n_mask += e >= 0
        self.total += e
        q = _sigmoid(self.state)  # the state may have switched since the last frame
        q = q * (1 - SWITCH) + (1 - q) * SWITCH
        self.state = _logit(q) + TEMPER * e

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def p_mask(self, threshold: float = 0.5) -> float:
        """The vote on one frame's probability scale: sigmoid(mean evidence + logit(threshold))."""
        return _sigmoid(self.mean + _logit(threshold))

    @property
    def agree(self) -> float:
        """Share of the frames whose own label is the vote's mask/no-mask side."""
        if not self.n:
            return 0.0
        k = self.n_mask / self.n
        return k if self.mean >= 0 else 1 - k

    def label(self, classes: Sequence[str]) -> str:
        """classes[1] (mask) / classes[0] (no mask) / "unsure", from every frame."""
        if self.agree < AGREE:
            return UNSURE_LABEL
        return classes[1] if self.mean >= 0 else classes[0]

    def running(self, classes: Sequence[str]) -> str:
        if not self.n:  # every frame so far inside the unsure band: no evidence either way
            return UNSURE_LABEL
        return classes[1] if self.state >= 0 else classes[0]
