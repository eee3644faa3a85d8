"""Follow faces across frames, give each a track id, and vote each track's label over its frames.

    tracker = tracker_for(rec)                           # or Tracker(threshold, classes, ...)
    for t, res in frames:                                # t: seconds (a frame's own timestamp)
        seen = tracker.update(t, [f.box for f in res.faces], [f.p_mask for f in res.faces])
        for s in seen:                                   # one per detection, in the same order
            print(s.track, s.label, s.p_mask)            # track 0: not yet confirmed
    for tr in tracker.tracks():                          # every confirmed track: its vote
        print(tr.track, tr.first_s, tr.last_s, tr.frames, tr.label, tr.p_mask)

**Matching.** Each track predicts its box at the frame's time from a constant velocity (so a
variable frame rate or a dropped frame moves it the right distance), then detections and
predictions are paired by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on
1 - IoU (``torchvision.ops.box_iou`` through ``faces.iou_matrix``), pairs under ``match_iou``
refused. A new face is *tentative* until it is seen in ``min_hits`` frames in a row (a detector's
false alarm of a few frames never becomes a person), then it gets the next id; only a detection
scoring ``new_score`` or more starts one, weaker ones only extend a track. A track not seen for
``max_age_s`` seconds ends; until then it coasts on its velocity and can be picked up again.

Why not ByteTrack from ``supervision``: it would add matplotlib, pydeprecate and more to the
install (and requirements.txt) for a Kalman filter; it was not tried. Its one idea that mattered
here, a higher score to start a track than to extend one, is ``new_score``. This matcher is ~100
lines on scipy and torchvision, measured on the Ken-Burns clips (docs/guide.md, Video): no ID switch on
the held-out clips, so a Kalman filter has nothing left to win there.

**Vote** (``maskrec.live.vote``). A frame's evidence is its P(mask) in log-odds relative to the decision threshold,
clipped to +-``CLIP`` so that no frame outweighs a few others. The track's label is the sign of
the mean of its frames' evidence, and ``p_mask`` maps that mean back to the probability scale of
one frame; ``agree`` is the share of its frames whose own label is the vote. Under ``AGREE`` the
frames disagree too much (closer than 3:2) and the track is "unsure". (A margin on the mean
instead made weak but consistent tracks unsure: the net gives P(mask) 0.6-0.75 to some faces frame
after frame; on the tuning clips 4 of 141 people, each 62-94% of frames right.) While a track
runs, the label drawn on it comes from a sticky two-state filter (a hidden mask/no-mask state
that switches with a small probability per frame): one odd frame cannot flip it, ~5 confident
frames in a row can (someone takes the mask off).

**Re-identification** (``looks`` given, as the live stream does): a face lost for a moment (turned
away, walked behind someone) comes back as a new track, at another place. When a new track is
confirmed it is compared with each person lost in the last ``reid_s`` seconds (last seen before the
new one started, so never two faces of one frame) by ``look``: hue/saturation histograms of the
face crop's two halves, ~0.1 ms. The most alike, at ``REID_SIM`` or more and ``REID_MARGIN`` above
the next (sizes within 2x, votes not on opposite sides), gets its id back instead of a new person
being counted. Colour is a weak cue, so the cut is a compromise, measured two ways:
``evaluation.reid`` (dev scenes as webcam frames, JPEG-degraded, everyone else of the photo lost at
once): 98% of returns re-identified, none as someone else, and 8-10% of strangers merged with
someone of their photo; a real WebRTC loop of three dev scenes in Chromium (its fake camera, one
minute): 48 of 70 returns re-identified, none as someone else (at 0.93: 35 of 70; codec blur lowers
the likeness of a face's first frames). A person away for longer than ``reid_s`` counts again, and
one missed counts twice, so the count is people *followed* since the start, not a head count.
``video`` runs do not re-identify: their tracking is the one measured on the clips (docs/guide.md, Video).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple, Sequence

import numpy as np

from maskrec import faces as F
from maskrec.live.vote import UNSURE_LABEL, Vote

MIN_HITS = 5      # frames in a row a face needs to become a person (docs/guide.md, Video: the start rule)
# Detector score a face needs to start a track; weaker detections only extend one (ByteTrack's
# idea). For RetinaFace, measured on the tuning clips (docs/guide.md, Video): starting at its 0.5 cut
# over-counted people by 21% (false alarms lasting a few frames), at 0.8 by 1%. Other detectors
# start at their own cut (0.0 here): their scores are on other scales.
START_SCORE = {"retinaface": 0.8, "retinaface-fast": 0.8}
REID_S = 5.0      # a person lost for up to this long can be re-identified by their look
REID_SIM = 0.90   # Bhattacharyya coefficient of two looks needed to be one person (module docstring)
REID_MARGIN = 0.03  # ... and by this much above the next most alike: two close candidates are no answer
LOOK_BINS = (12, 8)  # hue x saturation bins of ``look``, in each half of the face


def look(rgb: np.ndarray) -> np.ndarray:
    """A face crop's appearance for re-identification: (192,) float, the square root of its
    normalised hue/saturation histograms of the upper and the lower half (hair and eyes; mouth,
    mask or beard), so that the dot product of two is their Bhattacharyya coefficient (1: the same
    colours in the same halves). Hue and saturation shrug off a brightness change; halves, not a
    finer grid, shrug off a head turned the other way."""
    import cv2  # deferred: only a live stream that re-identifies pays its import here
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2HSV)
    half = hsv.shape[0] // 2
    h = np.concatenate([cv2.calcHist([np.ascontiguousarray(part)], [0, 1], None, list(LOOK_BINS), [0, 180, 0, 256])
                        .ravel() for part in (hsv[:half], hsv[half:])]).astype(np.float64)
    return np.sqrt(h / max(h.sum(), 1.0))


class Seen(NamedTuple):
    """One detection of one frame after tracking (cross-thread safe: a plain value)."""
    track: int        # track id; 0 while the face is tentative (seen in fewer than min_hits frames)
    box: tuple        # the detection's (x0, y0, x1, y1, ...) as given
    p_frame: float    # this frame's own P(mask)
    label: str        # the track's running label (this frame's own label while tentative)
    p_mask: float     # the track's vote so far (this frame's P(mask) while tentative)
    carried: bool = False  # a frame without detection: the box is the track's prediction, p_frame its last


class TrackRow(NamedTuple):
    """A confirmed track's summary: the CLI's JSON line and the page's table row."""
    track: int
    first_s: float
    last_s: float
    frames: int       # frames in which the face was detected
    label: str        # the vote: mask / no_mask / unsure
    p_mask: float
    agree: float      # share of its frames whose own label is the vote
    active: bool      # still followed (not ended by max_age_s)

    def as_json(self) -> dict:
        return {"track": self.track, "first_s": round(self.first_s, 2), "last_s": round(self.last_s, 2),
                "frames": self.frames, "label": self.label, "p_mask": round(self.p_mask, 4),
                "agree": round(self.agree, 3)}


class _Track:
    __slots__ = ("id", "box", "vel", "t", "first_t", "hits", "vote", "p", "score", "look")

    def __init__(self, box: np.ndarray, t: float):
        self.id = 0                     # given on confirmation
        self.box = box                  # (4,) float x0, y0, x1, y1 at time t
        self.p = 0.0                    # the last detection's own P(mask) and score (for carried frames)
        self.score = 1.0
        self.vel = np.zeros(4)          # px / s of each edge
        self.t = self.first_t = t
        self.hits = 1
        self.vote = Vote()
        self.look: np.ndarray | None = None  # sum of its frames' looks (``look``), when given

    def add_look(self, v: np.ndarray | None) -> None:
        if v is not None:
            self.look = v.copy() if self.look is None else self.look + v

    def mean_look(self) -> np.ndarray | None:
        return None if self.look is None else self.look / max(float(np.linalg.norm(self.look)), 1e-12)

    def predict(self, t: float) -> np.ndarray:
        return self.box + self.vel * (t - self.t)


class Tracker:
    """IoU + constant-velocity matcher with per-track votes (see the module docstring).

    threshold: the decision threshold P(mask) is compared with (the checkpoint's); classes:
    (no-mask name, mask name); band: the operating point's unsure band ``[lo, hi)`` of P(mask): a
    frame inside it is labelled unsure and is no vote. Times are seconds and must not go backwards. new_score: the
    detection score (a box's 5th value) needed to start a track (``START_SCORE``). reid_s: how long
    a lost person can be re-identified by their look (only when ``update`` is given ``looks``).
    """

    def __init__(self, threshold: float = 0.5, classes: Sequence[str] = ("no_mask", "mask"),
                 match_iou: float = 0.3, min_hits: int = MIN_HITS, max_age_s: float = 1.0,
                 new_score: float = 0.0, smooth: float = 0.5, band: tuple[float, float] | None = None,
                 reid_s: float = REID_S):
        self.threshold, self.classes = float(threshold), tuple(classes)
        self.band = band
        self.match_iou, self.min_hits, self.max_age_s = match_iou, min_hits, max_age_s
        self.new_score, self.reid_s = new_score, reid_s
        self.smooth = smooth  # weight of the newest velocity measurement (an EMA: box jitter averages out)
        self._live: list[_Track] = []
        self._ended: list[_Track] = []
        self._next = 1
        self._last_t: float | None = None   # time of the last update (a detection frame)

    def update(self, t: float, boxes: Sequence, p_mask: Sequence[float],
               threshold: float | None = None, looks: Sequence[np.ndarray] | None = None) -> list[Seen]:
        """One frame at time ``t``: its detections (x0, y0, x1, y1, ...) and their P(mask); ``looks``:
        each detection's ``look``, to re-identify a person lost for a moment (none: no re-identification).
        Returns one ``Seen`` per detection, in order."""
        thr = self.threshold if threshold is None else float(threshold)
        dets = np.array([tuple(b[:4]) for b in boxes], np.float64).reshape(-1, 4)
        live = self._live
        pairs: list[tuple[int, int]] = []
        if len(live) and len(dets):
            from scipy.optimize import linear_sum_assignment
            pred = [tr.predict(t) for tr in live]
            iou = F.iou_matrix(pred, dets)                       # (tracks, detections)
            # confirmed tracks win a contested detection over tentative ones
            bonus = np.array([0.01 if tr.id else 0.0 for tr in live])[:, None]
            rows, cols = linear_sum_assignment(-(iou + bonus))
            pairs = [(r, c) for r, c in zip(rows, cols) if iou[r, c] >= self.match_iou]
        det_track: dict[int, _Track] = {}
        for r, c in pairs:
            tr = live[r]
            dt = t - tr.t
            if dt > 0:
                v = (dets[c] - tr.box) / dt
                tr.vel = v if tr.hits == 1 else self.smooth * v + (1 - self.smooth) * tr.vel
            tr.box, tr.t = dets[c], t
            tr.hits += 1
            tr.add_look(looks[c] if looks is not None else None)
            det_track[c] = tr
        matched = {r for r, _ in pairs}
        keep = []
        for i, tr in enumerate(live):
            if i in matched:
                keep.append(tr)
            elif tr.id and t - tr.t <= self.max_age_s:
                keep.append(tr)               # coasting: may be picked up again
            elif tr.id:
                self._ended.append(tr)
            # a tentative track that missed a frame is dropped: one-frame false alarms die here
        for c in range(len(dets)):
            if c not in det_track and (len(boxes[c]) < 5 or boxes[c][4] >= self.new_score):
                tr = _Track(dets[c], t)
                tr.add_look(looks[c] if looks is not None else None)
                keep.append(tr)
                det_track[c] = tr
        self._live, self._last_t = keep, t
        for tr in list(keep):  # in the order they were followed: ids as before re-identification
            if not tr.id and tr.hits >= self.min_hits:
                self._confirm(tr)
        out = []
        for c, b in enumerate(boxes):
            tr, p = det_track.get(c), float(p_mask[c])
            if tr is None:  # too weak to start a track: shown with its own label only
                out.append(Seen(0, tuple(b), p, self._own(p, thr), p))
                continue
            if not self._unsure(p):  # an unsure frame is no vote
                tr.vote.add(p, thr)
            tr.p, tr.score = p, float(b[4]) if len(b) > 4 else 1.0
            if tr.id:
                out.append(Seen(tr.id, tuple(b), p, tr.vote.running(self.classes), tr.vote.p_mask(thr)))
            else:
                out.append(Seen(0, tuple(b), p, self._own(p, thr), p))
        return out

    def _confirm(self, tr: _Track) -> None:
        """A tentative track becomes a person: a lost one it is re-identified as (its id, first time,
        frames and vote carry on), else a new one."""
        old = self._lost_as(tr)
        if old is None:
            tr.id, self._next = self._next, self._next + 1
            return
        if old in self._ended:
            self._ended.remove(old)
        else:  # still coasting
            self._live.remove(old)
        tr.id, tr.first_t, tr.hits = old.id, old.first_t, tr.hits + old.hits
        v, w = tr.vote, old.vote
        v.n, v.n_mask, v.total = v.n + w.n, v.n_mask + w.n_mask, v.total + w.total
        tr.add_look(old.look)

    def _lost_as(self, tr: _Track) -> _Track | None:
        """The person lost in the last ``reid_s`` seconds that ``tr`` is, by look (module docstring),
        or None. Only someone last seen before ``tr`` started: two faces seen at once are two people."""
        me = tr.mean_look()
        if me is None or self.reid_s <= 0:
            return None
        side = float(np.sqrt(max(1e-9, (tr.box[2] - tr.box[0]) * (tr.box[3] - tr.box[1]))))
        scored = []
        for old in self._ended + [o for o in self._live if o.id]:
            them = old.mean_look()
            if them is None or not 0 < tr.first_t - old.t <= self.reid_s:
                continue
            other = float(np.sqrt(max(1e-9, (old.box[2] - old.box[0]) * (old.box[3] - old.box[1]))))
            if not 0.5 <= side / other <= 2.0:
                continue
            a, b = old.vote.label(self.classes), tr.vote.label(self.classes)
            if UNSURE_LABEL not in (a, b) and old.vote.n and tr.vote.n and a != b:
                continue  # one wears a mask, the other not: no mask is put on out of sight that fast
            scored.append((float(me @ them), old))
        scored.sort(key=lambda x: -x[0])
        if not scored or scored[0][0] < REID_SIM:
            return None
        if len(scored) > 1 and scored[1][0] > scored[0][0] - REID_MARGIN:
            return None  # two lost people look alike: no way to tell which
        return scored[0][1]

    def _unsure(self, p: float) -> bool:
        return self.band is not None and self.band[0] <= p < self.band[1]

    def _own(self, p: float, thr: float) -> str:
        """One frame's own label: unsure inside the band, else by the threshold."""
        return UNSURE_LABEL if self._unsure(p) else self.classes[int(p >= thr)]

    def carry(self, t: float, threshold: float | None = None, tentative: bool = False) -> list[Seen]:
        """A frame at ``t`` that was not run through the detector (``video`` detects every k-th
        frame): each confirmed track matched at the last detection frame, at its box predicted
        for ``t`` (x0, y0, x1, y1, last score; not clipped to the frame). Adds no evidence to any
        vote and changes no track: the next ``update`` matches against the same tracks.
        ``tentative``: also the faces of that frame not yet confirmed (track 0, their own label), as
        ``update`` returned them, so a live view draws the same faces on every frame."""
        thr = self.threshold if threshold is None else float(threshold)
        out = []
        for tr in self._live:
            if tr.t != self._last_t or not (tr.id or tentative):
                continue
            box = (*tr.predict(t), tr.score)
            if tr.id:
                out.append(Seen(tr.id, box, tr.p, tr.vote.running(self.classes), tr.vote.p_mask(thr), True))
            else:
                out.append(Seen(0, box, tr.p, self._own(tr.p, thr), tr.p, True))
        return out

    def cut(self) -> None:
        """A scene cut: nobody of the next shot is anybody of the last one, so every confirmed track
        ends where it was last seen and tentative ones are dropped. Without it a track coasting
        over the cut picks up whoever stands at the same spot of the new shot (two people counted
        as one, with one vote)."""
        for tr in self._live:
            tr.look = None  # and nobody of the last shot is re-identified in the next
        self._ended += [tr for tr in self._live if tr.id]
        self._live = []

    def forget_ended(self, keep: int) -> None:
        """Keep only the ``keep`` tracks that ended last (a camera follows people for weeks: its
        ended tracks would grow without end; ``tracks`` and ``counts`` then cover those only)."""
        if len(self._ended) > keep:
            del self._ended[:len(self._ended) - keep]

    def tracks(self) -> list[TrackRow]:
        """Every confirmed track, ended or still live, by id."""
        rows = [self._row(tr, False) for tr in self._ended]
        rows += [self._row(tr, True) for tr in self._live if tr.id]
        return sorted(rows, key=lambda r: r.track)

    def counts(self) -> dict:
        """Unique people so far: {"people", <mask name>, <no-mask name>, "unsure"} by each vote."""
        return count_people(self.tracks(), self.classes)

    def _row(self, tr: _Track, active: bool) -> TrackRow:
        return TrackRow(tr.id, tr.first_t, tr.t, tr.hits, tr.vote.label(self.classes),
                        tr.vote.p_mask(self.threshold), tr.vote.agree, active)


def count_people(rows: Sequence[TrackRow], classes: Sequence[str]) -> dict:
    """{"people", <mask name>, <no-mask name>, "unsure"}: the tracks' rows counted by their votes."""
    out = {"people": 0, classes[1]: 0, classes[0]: 0, UNSURE_LABEL: 0}
    for r in rows:
        out["people"] += 1
        out[r.label] += 1
    return out


def min_hits_for(every: int) -> int:
    """``min_hits`` when the detector runs on one frame in ``every``: a face still becomes a person
    after about ``MIN_HITS`` frames, and min_hits counts detection frames, so it is that over
    ``every`` (on the tuning pans, 3 hits at every 2nd frame counted 143 of 142 people, 5 hits 141)."""
    return max(2, math.ceil(MIN_HITS / every))


def tracker_for(rec, threshold: float | None = None, every: int = 1) -> Tracker:
    """A Tracker for a ``recognize.Recognizer``: its operating point (threshold and unsure band; a
    ``threshold`` given instead: that cut, no band), class names and detector's start score.
    ``every``: the run detects one frame in this many (``min_hits_for``)."""
    op = getattr(rec, "op", None)
    band = op.band if op is not None and threshold is None else None
    return Tracker(rec.threshold if threshold is None else threshold, rec.predictor.classes,
                   min_hits=min_hits_for(every), new_score=START_SCORE.get(getattr(rec.detector, "name", ""), 0.0),
                   band=band)


class Timeline:
    """Per-second counts of distinct people by their running label: (second, with mask, without).

    ``add(second, seen)`` once per frame with that frame's ``Seen`` list; a person counts once in
    a second whatever the frame rate. ``keep`` seconds: the live chart keeps the last minute only.
    """

    def __init__(self, covered: str = "mask", keep: int | None = None):
        self.covered, self.keep = covered, keep
        self._sec: OrderedDict[int, tuple[set, set]] = OrderedDict()

    def add(self, second: int, seen: Sequence[Seen]) -> None:
        bucket = self._sec.get(second)
        if bucket is None:
            bucket = self._sec[second] = (set(), set())
            if self.keep is not None:
                while self._sec and next(iter(self._sec)) <= second - self.keep:
                    self._sec.popitem(last=False)
        for s in seen:
            if s.track:  # a label that changed within the second counts as the newest one
                if s.label == UNSURE_LABEL:  # unsure: neither with nor without
                    bucket[0].discard(s.track)
                    bucket[1].discard(s.track)
                    continue
                into, other = bucket if s.label == self.covered else bucket[::-1]
                other.discard(s.track)
                into.add(s.track)

    def rows(self, since: int | None = None) -> list[tuple[int, int, int]]:
        return [(k, len(m), len(n)) for k, (m, n) in self._sec.items() if since is None or k >= since]
