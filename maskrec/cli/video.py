"""``video IN --out OUT``: follow every face through a video file; one line per person (track),
then a summary. The annotated video goes to --out, the compliance report to --report (one of
them at least). Ctrl-C or SIGTERM stops at the next frame: what was processed is still printed
and written (exit 130)."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from maskrec import faces
from maskrec.config import DEFAULT_CHECKPOINT
from maskrec.live.recognize import Recognizer
from maskrec.video import PictureError, process, settings_of, write_report
from maskrec.video.follow import DETECT_EVERY
from maskrec.cli.common import UserError, check_file_name, progress_bar, stop_on_signals

SHIPPED_CHECKPOINT = DEFAULT_CHECKPOINT


def add_arguments(s):
    s.add_argument("input", metavar="IN", help="video file (mp4, webm, mov, avi, mkv)")
    s.add_argument("--out", metavar="OUT", help="annotated video to write: .mp4 (H.264) or .webm (VP9); "
                   "may be left out when --report is given")
    s.add_argument("--json", action="store_true",
                   help='one JSON object per track ({"track", "first_s", "last_s", "frames", "label", "p_mask", '
                        '"agree"}), then {"summary": {...}}')
    s.add_argument("--checkpoint", default=str(SHIPPED_CHECKPOINT),
                   help=f"classifier checkpoint (default: the default recogniser, checkpoints/{SHIPPED_CHECKPOINT.name})")
    s.add_argument("--detector", default=faces.LIVE_DEFAULT, choices=list(faces.DETECTORS),
                   help=f"face detector (default {faces.LIVE_DEFAULT}, the live one: fast enough for every frame)")
    point = s.add_mutually_exclusive_group()
    point.add_argument("--operating-point", metavar="NAME", help="the checkpoint's operating point (threshold and "
                       "unsure band) to label at (default: its default, street where it has one)")
    point.add_argument("--threshold", type=float, help="a plain P(mask) decision threshold instead (no unsure band)")
    s.add_argument("--detect-every", type=int, default=DETECT_EVERY, metavar="K",
                   help=f"run the detector on one frame in K, the tracker carrying the boxes between "
                        f"(default {DETECT_EVERY}; 1: every frame)")
    s.add_argument("--no-cuts", action="store_true",
                   help="do not end the tracks at scene cuts (for a single shot with sudden light changes)")
    s.add_argument("--report", metavar="OUT.html", help="also write the compliance report: one self-contained HTML "
                   "file (summary, charts, people with thumbnails, settings), also for a stopped run")


def run(a):
    if a.detect_every < 1:
        raise UserError(f"--detect-every {a.detect_every}: it must be 1 or more")
    why = faces.available()[a.detector]
    if why:
        raise UserError(f"detector {a.detector} cannot run here: {why}")
    if not a.out and not a.report:
        raise UserError("video writes an annotated video (--out OUT.mp4), a report (--report OUT.html) or both: "
                        "give at least one")
    if a.out:
        check_file_name("--out", a.out)
    _check_report(a.report)
    rec = Recognizer.load(a.checkpoint, detector=a.detector).at(a.operating_point)
    bar = progress_bar("video")
    with stop_on_signals() as stop:
        try:
            res = process(a.input, rec, a.out or None, threshold=a.threshold, should_stop=stop.is_set,
                          detect_every=a.detect_every, cuts=not a.no_cuts,
                          progress=lambda p: bar(p.frames, max(p.total, p.frames + 1)))
        except PictureError as e:  # the CLI's word for a photo
            raise UserError(f"{e}: recognise a photo with `python -m maskrec predict {shlex.quote(a.input)}`") from None
        finally:
            bar(1, 1)
    for w in res.summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    s = res.summary
    if a.json:
        for t in res.tracks:
            print(json.dumps(t.as_json()))
        print(json.dumps({"summary": {**s, "operating_point": _point(a, rec)}}), flush=True)
    else:
        for t in res.tracks:
            print(f"track {t.track:>3}  {t.first_s:6.1f}-{t.last_s:6.1f} s  {t.frames:>5} frames  {t.label:<8} "
                  f"P(mask) {t.p_mask:.2f}, {t.agree:.0%} of its frames agree")
        print(f"{s['people']} people: {s['mask']} with a mask, {s['no_mask']} without, {s['unsure']} unsure; "
              f"{s['frames']} frames, {s['seconds']:.1f} s of video at {s['fps']:.1f} frames/s; "
              f"operating point {_point(a, rec)}"
              + ("; stopped early" if s["status"] == "stopped" else "") + (f"; wrote {res.out}" if res.out else ""))
        if s.get("note"):
            print(f"note: {s['note']}")
    if a.report:  # a stopped run's too: what was processed
        _write_report(a, rec, res)
    return 130 if s["status"] == "stopped" else 0


def _point(a, rec) -> str:
    """The operating point the run labelled at, in words."""
    return f"custom threshold {a.threshold:g}" if a.threshold is not None else rec.op.name


def _check_report(path: str | None) -> None:
    """Before the run, not after the whole video: a report that cannot be written."""
    if not path:
        return
    check_file_name("--report", path)
    if Path(path).is_dir():
        raise UserError(f"--report {path} is a folder: give a file name, e.g. {Path(path) / 'report.html'}")
    if not Path(path).absolute().parent.is_dir():
        raise UserError(f"--report {path}: the folder {Path(path).absolute().parent} does not exist")


def _write_report(a, rec, res) -> None:
    name = Path(a.input).name
    try:
        write_report(a.report, res, settings_of(rec, a.threshold, name), f"Mask compliance: {name}")
    except OSError as e:
        raise UserError(f"--report {a.report}: cannot write it: {e.strerror or e}") from e
    print(f"wrote the report to {a.report}", file=sys.stderr)
