"""Video clips with a known truth, and the scorer of a tracking run on them.

    rgb, truths = cartoon_scene(3)                        # or a dev scene: faces.read_rgb, faces.load_voc
    truth = write_clip("pan.mp4", ken_burns(rgb, truths, (640, 480), seconds=4.0), 30.0)
    frames = []
    res = video.process("pan.mp4", rec, on_frame=lambda i, t, seen: frames.append(seen))
    m = clip_metrics(frames, truth, res.tracks, rec.threshold)   # count error, ID switches, accuracies
    m = evaluate_scene(rgb, truths, rec, work)            # the four lines above in one
    s = summarize([m, ...])                               # added up over clips (the bench's rows)

A clip is a slow pan and zoom (a "Ken Burns" move) over an annotated still photo, so every frame's
true faces are known. Detections are paired with true faces by ``faces.matched_pairs``, the one
matching rule of ``faces.match`` and ``sceneeval``. Used by ``bench`` and the tests; the app never
scores itself.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from maskrec import faces
from maskrec.data.synth import render
from maskrec.live.track import UNSURE_LABEL, Seen, TrackRow
from maskrec.video import Writer, output_suffix, process

class ClipFace(NamedTuple):
    """One annotated face in one frame of a generated clip."""
    person: int          # index of the face in the scene's annotations: the true track
    box: tuple           # (x0, y0, x1, y1) in the clip's pixels, clipped to the frame
    label: str           # the annotation's label (with_mask / without_mask / mask_weared_incorrect)


def ken_burns(rgb: np.ndarray, truths: Sequence, size: tuple[int, int] = (640, 480), seconds: float = 4.0,
              fps: float = 30.0, seed: int = 0, zoom: tuple[float, float] = (1.0, 1.4),
              times: Sequence[float] | None = None) -> Iterator[tuple[float, np.ndarray, list[ClipFace]]]:
    """A slow pan and zoom over a still photo with VOC ``truths``: yields (t, frame, [ClipFace]).

    The camera starts or ends (seeded) on the whole photo letterboxed into ``size`` and moves to a
    view ``zoom`` times closer at a seeded spot, with an ease-in-out; a face counts as in the frame
    while at least half its box is. ``times``: frame times (s) for a variable frame rate.
    """
    import cv2  # deferred: OpenCV is heavy, and only making a clip needs it here
    rng = np.random.default_rng(seed)
    W, H = size
    ih, iw = rgb.shape[:2]
    full = max(iw, ih * W / H)                      # view width that shows the whole photo
    z = list(zoom) if rng.random() < 0.5 else list(zoom)[::-1]
    centres = []
    for zz in z:                                     # view centres that keep the view on the photo
        slack = (full - full / zz) / 2
        centres.append((iw / 2 + rng.uniform(-1, 1) * slack, ih / 2 + rng.uniform(-1, 1) * slack * H / W))
    ts = list(times) if times is not None else [i / fps for i in range(max(1, round(seconds * fps)))]
    span = max(ts[-1], 1e-9)
    boxes = np.array([tuple(b[:4]) for b in truths], np.float64).reshape(-1, 4)
    for t in ts:
        a = min(1.0, t / span)
        a = a * a * (3 - 2 * a)                      # smoothstep: the camera eases in and out
        zz = z[0] + (z[1] - z[0]) * a
        cx = centres[0][0] + (centres[1][0] - centres[0][0]) * a
        cy = centres[0][1] + (centres[1][1] - centres[0][1]) * a
        s = W / (full / zz)                          # output px per photo px
        m = np.array([[s, 0, W / 2 - s * cx], [0, s, H / 2 - s * cy]])
        frame = cv2.warpAffine(rgb, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        visible = []
        for k, b in enumerate(boxes):
            x0, y0, x1, y1 = b[0] * s + m[0, 2], b[1] * s + m[1, 2], b[2] * s + m[0, 2], b[3] * s + m[1, 2]
            cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
            inside = max(0, cx1 - cx0) * max(0, cy1 - cy0)
            if inside >= 0.5 * (x1 - x0) * (y1 - y0):
                visible.append(ClipFace(k, (cx0, cy0, cx1, cy1), truths[k][4] if len(truths[k]) > 4 else ""))
        yield t, frame, visible


def scene_pan(scenes: Sequence[tuple[np.ndarray, Sequence]], size: tuple[int, int] = (640, 480),
               seconds: float = 4.0, fps: float = 30.0, seed: int = 0
               ) -> Iterator[tuple[float, np.ndarray, list[ClipFace]]]:
    """One clip over several annotated photos: a ``ken_burns`` move over each in turn, joined by
    hard cuts (the way a pan over several places is cut together). Person ids are made distinct
    per photo (photo k's face p is ``k * 1000 + p``), so a track carried over a cut onto
    somebody else's face shows as a merge. Times run on across the cuts."""
    t0, step = 0.0, 1 / fps
    for k, (rgb, truths) in enumerate(scenes):
        last = t0
        for t, frame, visible in ken_burns(rgb, truths, size, seconds, fps, seed + k):
            last = t0 + t
            yield last, frame, [f._replace(person=k * 1000 + f.person) for f in visible]
        t0 = last + step


def pan_segments(n_scenes: int, seconds: float = 4.0, fps: float = 30.0) -> list[tuple[int, int]]:
    """The frames of each photo in a ``scene_pan`` clip: [(first, end), ...], end exclusive."""
    n = max(1, round(seconds * fps))
    return [(k * n, (k + 1) * n) for k in range(n_scenes)]


def pan_metrics(frames: Sequence[Sequence[Seen]], truth: Sequence[Sequence[ClipFace]], tracks: Sequence[TrackRow],
                times: Sequence[float], segments: Sequence[tuple[int, int]], threshold: float,
                covered: str = "mask", min_face: int = 20) -> list[dict]:
    """``clip_metrics`` for each photo of a ``scene_pan`` clip, as if each were a clip of its own:
    its frames, its true people, and the tracks that start in it. A track carried over a cut into
    the next photo counts in the photo it started in, and the people it took over are missing from
    the next one's count, so merges show as under-counts (as they would to a user)."""
    out = []
    for a, b in segments:
        t0, t1 = times[a], times[b] if b < len(times) else float("inf")
        mine = [r for r in tracks if t0 <= r.first_s < t1]
        m = clip_metrics(frames[a:b], truth[a:b], mine, threshold, covered, min_face)
        out.append(m)
    return out


def write_clip(path: str | Path, frames: Iterator[tuple[float, np.ndarray, list]], fps: float = 30.0) -> list[list[ClipFace]]:
    """Encode ``ken_burns`` frames to ``path`` (.mp4 / .webm), with their times; returns the truth
    per frame."""
    writer, truth = None, []
    for t, rgb, visible in frames:
        if writer is None:
            writer = Writer(Path(path), (rgb.shape[1], rgb.shape[0]), fps)
        writer.put(t, rgb)
        truth.append(visible)
    if writer is not None:
        writer.close()
    return truth


def cartoon_scene(n: int = 3, size: tuple[int, int] = (400, 300), face: int = 80, seed: int = 0,
                  indices: Sequence[int] | None = None) -> tuple[np.ndarray, list[faces.Truth]]:
    """A still 'photo' of ``n`` demo faces (``synth.render``, tight face crops) side by side on a
    grey-green ground, with their VOC-style truths: a scene for clips on a fresh clone, where
    the dev photos are absent. ``indices``: which demo images (default 0..n-1)."""
    w, h = size
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = np.linspace((70, 90, 80), (150, 160, 140), h).astype(np.uint8)[:, None, :]
    truths = []
    idx = list(indices) if indices is not None else list(range(n))
    gap = (w - n * face) / (n + 1)
    for k, i in enumerate(idx[:n]):
        img, label = render(i, seed=seed)
        x0, y0 = round(gap + k * (face + gap)), round((h - face) / 2 + (k % 2 - 0.5) * face * 0.4)
        rgb[y0:y0 + face, x0:x0 + face] = np.asarray(img.convert("RGB").resize((face, face)))
        truths.append(faces.Truth(x0, y0, x0 + face, y0 + face, "with_mask" if label else "without_mask"))
    return rgb, truths


def clip_metrics(frames: Sequence[Sequence[Seen]], truth: Sequence[Sequence[ClipFace]],
                 tracks: Sequence[TrackRow], threshold: float, covered: str = "mask",
                 min_face: int = 20, iou: float = 0.4) -> dict:
    """Score a run on a clip with known truth (``ken_burns``).

    Per frame, detections are paired with true faces by ``faces.matched_pairs`` (greedy, best
    detection score first, IoU >= ``iou``: the rule of ``faces.match`` and ``sceneeval``).
    A true person *counts* when their face's median shorter side over the frames they are in is
    >= ``min_face`` px (smaller faces are neither required nor held against the count, as in
    ``faces.match``). Returns: ``true_people``; ``counted`` (confirmed tracks, less those mostly
    matched to faces that do not count); ``count_error`` |counted - true| / true; ``id_switches``
    (a true person's matched track id changing, MOT-style) and ``switches_per_track``;
    ``frame_accuracy`` (each frame's own label on matched faces of counting people) and
    ``voted_accuracy`` (each matched counting person: the vote of the track that matched them
    most; unsure counts as wrong); ``unsure``; ``found`` (counting people matched at least once).
    """
    sides: dict[int, list[float]] = {}
    labels: dict[int, str] = {}
    for here in truth:
        for f in here:
            sides.setdefault(f.person, []).append(min(f.box[2] - f.box[0], f.box[3] - f.box[1]))
            labels[f.person] = f.label
    counts_ = {p for p, s in sides.items() if np.median(s) >= min_face}
    votes = {r.track: r.label for r in tracks}
    track_hits: dict[int, dict[int, int]] = {}       # track -> person -> frames matched
    person_seq: dict[int, list[int]] = {}            # person -> matched track ids over frames
    person_frames: dict[int, list[int]] = {}         # person -> each matched frame's own label right?
    person_labels: dict[int, list[tuple[bool, str]]] = {}  # person -> (own label mask?, shown label)
    right = total = shown = by_vote = 0
    for seen, here in zip(frames, truth):
        if not seen or not here:
            continue
        for r, c in faces.matched_pairs([s.box for s in seen], [f.box for f in here], iou):
            s, f = seen[r], here[c]
            # a carried frame (no detection: video detects every k-th frame) has no label of its own
            if f.person in counts_ and f.label in faces.COVERED and not s.carried:
                truth_mask = bool(faces.COVERED[f.label])
                ok = int((s.p_frame >= threshold) == truth_mask)
                right += ok
                total += 1
                person_frames.setdefault(f.person, []).append(ok)
                shown += int((s.label == covered) == truth_mask)
                v = votes.get(s.track) if s.track else None
                by_vote += ok if v is None else int(v != UNSURE_LABEL and (v == covered) == truth_mask)
            if s.track:
                track_hits.setdefault(s.track, {}).setdefault(f.person, 0)
                track_hits[s.track][f.person] += 1
                person_seq.setdefault(f.person, []).append(s.track)
                if not s.carried:
                    person_labels.setdefault(f.person, []).append((s.p_frame >= threshold, s.label))
    # a track mostly on a face that does not count is not held against the count
    counted = sum(1 for r in tracks
                  if not track_hits.get(r.track) or max(track_hits[r.track], key=track_hits[r.track].get) in counts_)
    switches = 0
    voted_right = unsure = 0
    def flips(seq):
        return sum(a != b for a, b in zip(seq, seq[1:]))
    raw_flips = sum(flips([a for a, _ in person_labels.get(p, [])]) for p in counts_)
    shown_flips = sum(flips([b for _, b in person_labels.get(p, [])]) for p in counts_)
    per_person = [float(np.mean(person_frames[p])) for p in counts_ if person_seq.get(p) and p in person_frames]
    found = [p for p in counts_ if person_seq.get(p)]
    for p in found:
        seq = person_seq[p]
        switches += sum(1 for a, b in zip(seq, seq[1:]) if a != b)
        best = max(set(seq), key=seq.count)
        v = votes.get(best, UNSURE_LABEL)
        unsure += v == UNSURE_LABEL
        if labels[p] in faces.COVERED and v != UNSURE_LABEL:
            voted_right += int((v == covered) == bool(faces.COVERED[labels[p]]))
    n_true = len(counts_)
    return {"true_people": n_true, "counted": counted, "found": len(found),
            "count_error": abs(counted - n_true) / n_true if n_true else float(counted > 0),
            "id_switches": switches, "switches_per_track": switches / len(found) if found else 0.0,
            "frame_accuracy": right / total if total else float("nan"), "frame_faces": total,
            "shown_accuracy": shown / total if total else float("nan"),
            "vote_on_frames_accuracy": by_vote / total if total else float("nan"),
            "voted_accuracy": voted_right / len(found) if found else float("nan"), "voted_tracks": len(found),
            "frame_accuracy_per_track": float(np.mean(per_person)) if per_person else float("nan"),
            "unsure": unsure, "raw_flips": raw_flips, "shown_flips": shown_flips}


def evaluate_scene(rgb: np.ndarray, truths: Sequence, rec, work: Path, size=(640, 480), seconds: float = 4.0,
                   fps: float = 30.0, seed: int = 0, min_face: int = 20) -> dict:
    """Make a Ken-Burns clip of one annotated photo, process it like a user's file, score it."""
    clip = Path(work) / f"clip-{seed}{output_suffix()}"
    truth = write_clip(clip, ken_burns(rgb, truths, size, seconds, fps, seed), fps)
    frames: list[list[Seen]] = []
    res = process(clip, rec, on_frame=lambda i, t, seen: frames.append(seen))
    clip.unlink(missing_ok=True)
    m = clip_metrics(frames[:len(truth)], truth, res.tracks, rec.threshold, rec.predictor.classes[1], min_face)
    m["fps"] = res.summary["fps"]
    return m


def summarize(ms: Sequence[dict]) -> dict:
    """Clip metrics added up over clips: people-weighted count error and switches, face- and
    track-weighted accuracies."""
    def tot(k):
        return sum(m[k] for m in ms)
    true, found = tot("true_people"), tot("found")
    frame_faces = tot("frame_faces")
    return {"clips": len(ms), "true_people": true, "counted": tot("counted"), "found": found,
            "frame_faces": frame_faces,
            "count_error": sum(abs(m["counted"] - m["true_people"]) for m in ms) / true if true else math.nan,
            "count_error_total": abs(tot("counted") - true) / true if true else math.nan,
            "switches_per_track": tot("id_switches") / found if found else math.nan,
            **{k: sum(m[k] * m["frame_faces"] for m in ms if m["frame_faces"]) / frame_faces if frame_faces else math.nan
               for k in ("frame_accuracy", "shown_accuracy", "vote_on_frames_accuracy")},
            **{k: sum(m[k] * m["voted_tracks"] for m in ms if m["voted_tracks"]) / found if found else math.nan
               for k in ("voted_accuracy", "frame_accuracy_per_track")},
            "unsure": tot("unsure"),
            "raw_flips_per_track": tot("raw_flips") / found if found else math.nan,
            "shown_flips_per_track": tot("shown_flips") / found if found else math.nan}
