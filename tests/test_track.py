"""maskrec.live.track: the tracker on synthetic moving boxes, the vote, the per-second timeline, and
evaluation.clips.clip_metrics (count error, ID switches) on tracks with a known truth. No model, no video."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation.clips import ClipFace, clip_metrics
from maskrec import faces as F
from maskrec.live import track as T


def box(cx, cy, side=40, score=0.95):
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, score)


def run(tracker, frames):
    """frames: [(t, [(box, p_mask), ...])] -> [[Seen]]"""
    return [tracker.update(t, [b for b, _ in dets], [p for _, p in dets]) for t, dets in frames]


def ids_of(seen_frames, k):
    """Track ids given to the k-th detection of each frame (0 while tentative)."""
    return [seen[k].track for seen in seen_frames if len(seen) > k]


def test_two_faces_that_cross_keep_their_ids():
    # A walks right, B walks left along the same line: they overlap fully half-way
    frames = [(i / 30, [(box(60 + 6 * i, 100), 0.9), (box(300 - 6 * i, 104), 0.1)]) for i in range(41)]
    seen = run(T.Tracker(), frames)
    a, b = ids_of(seen, 0), ids_of(seen, 1)
    assert a[:4] == [0] * 4 and b[:4] == [0] * 4       # tentative until seen in min_hits (5) frames
    assert set(a[4:]) == {1} and set(b[4:]) == {2}    # one id each, before and after crossing
    tr = T.Tracker()
    run(tr, frames)
    rows = tr.tracks()
    assert [(r.track, r.label, r.frames) for r in rows] == [(1, "mask", 41), (2, "no_mask", 41)]
    assert rows[0].first_s == 0 and rows[0].last_s == pytest.approx(40 / 30)


def test_a_face_missed_for_a_while_keeps_its_id_and_a_long_absence_starts_a_new_one():
    tr = T.Tracker(max_age_s=1.0)
    moving = lambda i: [(box(50 + 3 * i, 120), 0.8)]  # noqa: E731 - 90 px/s to the right
    frames = [(i / 30, moving(i)) for i in range(20)]
    frames += [(i / 30, []) for i in range(20, 40)]            # 0.67 s unseen: coasts on its velocity
    frames += [(i / 30, moving(i)) for i in range(40, 60)]
    frames += [(i / 30, []) for i in range(60, 120)]           # 2 s unseen: the track ends
    frames += [(i / 30, moving(i)) for i in range(120, 140)]
    seen = run(tr, frames)
    ids = [s[0].track for s in seen if s]
    assert set(ids[4:40]) == {1}                              # the same person after the gap
    assert ids[40:44] == [0] * 4 and set(ids[44:]) == {2}     # back after 2 s: a new person
    assert [r.active for r in tr.tracks()] == [False, True]


def test_a_variable_frame_rate_is_followed_by_time_not_by_frame_count():
    # 300 px/s; after 6 frames at 30 fps, frames 10-500 ms apart: matching on the last box alone would
    # lose the 60 px face at every gap of 0.2 s or more (it moves 60-150 px)
    rng = np.random.default_rng(0)
    gaps = np.r_[0, [1 / 30] * 5, rng.choice([0.01, 0.033, 0.1, 0.2], 30), 0.5, rng.choice([0.033, 0.1], 10)]
    seen = run(T.Tracker(), [(t, [(box(40 + 300 * t, 150, side=60), 0.9)]) for t in np.cumsum(gaps)])
    assert set(s[0].track for s in seen[4:]) == {1}


def test_one_frame_false_alarms_and_weak_boxes_never_become_people():
    tr = T.Tracker(new_score=0.8)
    frames = []
    for i in range(60):
        dets = [(box(100, 100), 0.9)]
        if i % 7 == 3:
            dets.append((box(250 + i, 50), 0.2))                 # a false alarm now and then
        dets.append((box(200, 200, score=0.6), 0.5))              # steady but weak: never starts a track
        frames.append((i / 30, dets))
    seen = run(tr, frames)
    assert [r.track for r in tr.tracks()] == [1]
    assert all(s.track == 0 for frame in seen for s in frame[1:])
    # a weak box does extend a track that a strong one started
    tr = T.Tracker(new_score=0.8)
    run(tr, [(i / 30, [(box(100 + i, 100, score=0.95 if i < 6 else 0.6), 0.9)]) for i in range(30)])
    assert [(r.track, r.frames) for r in tr.tracks()] == [(1, 30)]


def test_the_vote_ignores_one_odd_frame_but_follows_real_change():
    v = T.Vote()
    shown = []
    for i in range(30):
        v.add(0.02 if i == 15 else 0.95)        # one confident odd frame
        shown.append(v.running(("no_mask", "mask")))
    assert shown == ["mask"] * 30
    assert v.label(("no_mask", "mask")) == "mask" and v.agree == pytest.approx(29 / 30)
    assert v.p_mask() > 0.9
    # the mask comes off for good: the shown label follows within a few frames, not at once
    for i in range(30):
        v.add(0.05)
        shown.append(v.running(("no_mask", "mask")))
    first = shown.index("no_mask", 30) - 30
    assert 2 <= first <= 8 and shown[30 + first:] == ["no_mask"] * (30 - first)


def test_the_vote_is_unsure_when_its_frames_disagree_and_respects_the_threshold():
    v = T.Vote()
    for p in [0.9, 0.1] * 10:
        v.add(p)
    assert v.label(("no_mask", "mask")) == T.UNSURE_LABEL
    # weak but consistent frames still decide (the net gives some faces 0.6-0.7 frame after frame)
    w = T.Vote()
    for _ in range(20):
        w.add(0.65)
    assert w.label(("no_mask", "mask")) == "mask" and w.agree == 1.0
    # the same frames against a threshold of 0.7 vote the other way
    x = T.Vote()
    for _ in range(20):
        x.add(0.65, threshold=0.7)
    assert x.label(("no_mask", "mask")) == "no_mask" and x.p_mask(0.7) == pytest.approx(0.65, abs=1e-6)


def test_counts_and_the_timeline_count_each_person_once_per_second():
    tr = T.Tracker()
    tl = T.Timeline("mask")
    for i in range(90):  # 3 s at 30 fps; B takes the mask off at 1.5 s
        t = i / 30
        seen = tr.update(t, [box(50, 50), box(200, 50)], [0.9, 0.9 if t < 1.5 else 0.05])
        tl.add(int(t), seen)
    assert tl.rows() == [(0, 2, 0), (1, 1, 1), (2, 1, 1)]    # B's change counts once, as the newest label
    c = tr.counts()
    assert c["people"] == 2 and c["mask"] + c["no_mask"] + c["unsure"] == 2
    live = T.Timeline("mask", keep=60)
    for s in range(100):
        live.add(1000 + s, [])
    assert [r[0] for r in live.rows()] == list(range(1040, 1100))


def test_clip_metrics_count_switches_and_accuracy_against_a_known_truth():
    truth, frames = [], []
    for i in range(40):
        faces = [ClipFace(0, box(50 + i, 60)[:4], "with_mask"), ClipFace(1, box(200, 60)[:4], "without_mask"),
                 ClipFace(2, box(300, 200, side=8)[:4], "without_mask")]   # too small to count
        truth.append(faces)
        # person 0 is followed as track 1, then (a switch) as track 3; person 1 as track 2; a false alarm 4;
        # the small face is found as track 5, which is not held against the count
        frames.append([T.Seen(1 if i < 20 else 3, box(50 + i, 60), 0.9 if i % 10 else 0.3, "mask", 0.9),
                       T.Seen(2, box(200, 60), 0.2, "no_mask", 0.2),
                       T.Seen(4, box(400, 300), 0.5, "mask", 0.5),
                       T.Seen(5, box(300, 200, side=8), 0.5, "mask", 0.5)])
    rows = [T.TrackRow(k, 0, 1, 20, lab, 0.5, 1.0, False)
            for k, lab in ((1, "mask"), (2, "no_mask"), (3, "mask"), (4, "mask"), (5, "mask"))]
    m = clip_metrics(frames, truth, rows, threshold=0.5, min_face=20)
    assert m["true_people"] == 2 and m["found"] == 2
    assert m["counted"] == 4 and m["count_error"] == 1.0          # tracks 1, 2, 3 and the false alarm 4
    assert m["id_switches"] == 1 and m["switches_per_track"] == 0.5
    assert m["frame_accuracy"] == pytest.approx(76 / 80)          # person 0 wrong in 4 of its 40 frames
    assert m["voted_accuracy"] == 1.0 and m["unsure"] == 0
    assert m["raw_flips"] == 7 and m["shown_flips"] == 0          # wrong at frames 0, 10, 20, 30


def test_clip_metrics_pairs_boxes_by_the_one_rule_of_faces_match():
    # two overlapping true faces A [0, 100] and B [40, 140]; the confident detection d1 lies nearer B
    # (IoU 0.69 vs 0.64 with A), the weak d2 sits on B (0.90) and misses A (0.38 < 0.4). Greedy, best
    # score first (faces.matched_pairs): d1 takes B and A is never found; the Hungarian algorithm
    # (the rule clip_metrics had before) would have given d1 to A and d2 to B.
    a, b = ClipFace(0, (0, 0, 100, 100), "with_mask"), ClipFace(1, (40, 0, 140, 100), "without_mask")
    d1, d2 = (22, 0, 122, 100, 0.9), (45, 0, 145, 100, 0.6)
    assert F.matched_pairs([d1, d2], [a.box, b.box]) == [(0, 1)]
    frames = [[T.Seen(1, d1, 0.2, "no_mask", 0.2), T.Seen(2, d2, 0.2, "no_mask", 0.2)] for _ in range(10)]
    rows = [T.TrackRow(1, 0, 1, 10, "no_mask", 0.2, 1.0, False), T.TrackRow(2, 0, 1, 10, "no_mask", 0.2, 1.0, False)]
    m = clip_metrics(frames, [[a, b]] * 10, rows, threshold=0.5, min_face=20)
    assert m["true_people"] == 2 and m["found"] == 1 and m["frame_faces"] == 10
    assert m["voted_accuracy"] == 1.0 and m["frame_accuracy"] == 1.0   # B, bare, called no_mask


def test_a_cut_ends_every_track_and_the_same_spot_after_it_is_a_new_person():
    tr = T.Tracker(min_hits=3)
    run(tr, [(i / 30, [(box(100, 100), 0.9)]) for i in range(6)])
    tr.cut()
    after = run(tr, [(0.2 + i / 30, [(box(100, 100), 0.1)]) for i in range(6)])
    assert [r.track for r in tr.tracks()] == [1, 2] and ids_of(after, 0)[-1] == 2
    first, second = tr.tracks()
    assert not first.active and first.label == "mask" and second.label == "no_mask"
    # without the cut the same boxes are one person, whose vote mixes both
    one = T.Tracker(min_hits=3)
    run(one, [(i / 30, [(box(100, 100), 0.9)]) for i in range(6)] +
        [(0.2 + i / 30, [(box(100, 100), 0.1)]) for i in range(6)])
    assert len(one.tracks()) == 1


def test_carry_predicts_the_confirmed_tracks_of_the_last_detection_frame_and_adds_no_evidence():
    tr = T.Tracker(min_hits=3)
    # A moves 3 px a frame to the right; B is tentative (seen once, at the last frame)
    run(tr, [(i / 30, [(box(100 + 3 * i, 100), 0.9)]) for i in range(5)])
    tr.update(5 / 30, [box(115, 100), box(300, 300)], [0.9, 0.2])
    before = tr.tracks()
    carried = tr.carry(7 / 30)
    assert len(carried) == 1 and carried[0].carried and carried[0].track == 1
    assert carried[0].box[:4] == pytest.approx(box(121, 100)[:4], abs=0.5)   # two frames on at 3 px a frame
    assert carried[0].p_frame == pytest.approx(0.9) and tr.tracks() == before  # no frame added to any vote
    # the live view asks for the tentative faces too: B, with no id and its own label, where it was
    both = tr.carry(7 / 30, tentative=True)
    assert [s.track for s in both] == [1, 0] and all(s.carried for s in both)
    assert both[1].label == "no_mask" and both[1].p_mask == pytest.approx(0.2)
    assert both[1].box[:4] == pytest.approx(box(300, 300)[:4]) and tr.tracks() == before
    # a track that missed the last detection frame (coasting) is not drawn on carried frames
    tr.update(8 / 30, [], [])
    assert tr.carry(9 / 30) == [] and [r.track for r in tr.tracks()] == [1]


def test_bytetrack_behind_our_interface_follows_two_faces_and_a_cut_starts_new_ids():
    from evaluation.trackers import ByteTracker
    bt = ByteTracker(0.5, fps=30.0, min_frames=3)
    frames = [(i / 30, [(box(60 + 2 * i, 100), 0.9), (box(300 - 2 * i, 200), 0.1)]) for i in range(10)]
    seen = run(bt, frames)
    assert sorted({s.track for s in seen[-1]}) == [1, 2] and all(s.track for s in seen[-1])
    bt.cut()
    after = run(bt, [(0.4 + i / 30, [(box(100, 100), 0.9)]) for i in range(5)])
    assert after[-1][0].track == 3
    assert bt.counts() == {"people": 3, "mask": 2, "no_mask": 1, "unsure": 0}
    assert [r.track for r in bt.tracks()] == [1, 2, 3]
